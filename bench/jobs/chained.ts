// Benchmark: the same words through a chain with no shuffle (source -> flatMap -> filter -> sink).
import { StreamExecutionEnvironment, DataGeneratorSource, getJobArgs } from '@weir/api';
import type { Collector } from '@weir/api';
import { line } from '../words.js';

const lines = Number(getJobArgs()[0] ?? 2_000_000);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env
  .fromSource(new DataGeneratorSource<string>(line, lines), 'Lines')
  .flatMap((l: string, out: Collector<string>) => {
    for (const w of l.split(' ')) out.collect(w);
  })
  .filter((w: string) => w.length > 0)
  .sinkTo({ createWriter: () => ({ write: () => {} }) })
  .name('Discard');
await env.execute('bench-chained');
