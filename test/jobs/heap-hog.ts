// A map that keeps every record's 8 MB array, so its slot's worker thread runs out of heap.
// args: [report file] — the job's first task writes its worker's JavaScript heap limit there.
import { writeFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { StreamExecutionEnvironment, DataGeneratorSource, RestartStrategies, getJobArgs } from '@weir/api';

const [report] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(1);
env.setRestartStrategy(RestartStrategies.noRestart());
const kept: number[][] = [];
env
  .fromSource(new DataGeneratorSource<number>((i) => i, undefined, 1_000_000), 'Numbers')
  .map((n) => {
    if (n === 0 && report) writeFileSync(report, String(getHeapStatistics().heap_size_limit));
    kept.push(new Array<number>(1_000_000).fill(n));
    return n;
  })
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('heap-hog');
