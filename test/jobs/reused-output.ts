// A map and a flatMap that reuse one output object and change it after emitting, across a
// rebalance: the output must hold every value as it was when emitted. Args: <n> <output dir>.
import { DataGeneratorSource, FileSink, StreamExecutionEnvironment, getJobArgs } from '@weir/api';
import type { Collector } from '@weir/api';

const [n, output] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
const reused = { n: 0, copy: 0 };
const reused2 = { n: 0, copy: 0 };
env
  .fromSource(new DataGeneratorSource((i) => i, Number(n)), 'Numbers')
  .map((i: number) => {
    reused.n = i;
    reused.copy = 0;
    return reused;
  })
  .rebalance()
  .flatMap((r: { n: number }, out: Collector<{ n: number; copy: number }>) => {
    for (let c = 0; c < 2; c++) {
      reused2.n = r.n;
      reused2.copy = c;
      out.collect(reused2);
      reused2.n = -1;
    }
  })
  .rebalance()
  .map((r) => `${r.n}:${r.copy}`)
  .sinkTo(new FileSink<string>({ path: output!, format: 'lines' }));
await env.execute('reused-output');
