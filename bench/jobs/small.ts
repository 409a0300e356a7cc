// Benchmark: a small job (1,000 records through a keyed shuffle, 4 tasks at parallelism 2),
// whose time is mostly deployment: bench/job-start.ts.
import { StreamExecutionEnvironment } from '@weir/api';

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env
  .fromSequence(1, 1000)
  .map((n: number) => n + 1)
  .keyBy((n: number) => n % 10)
  .map((n: number) => n)
  .sinkTo({ createWriter: () => ({ write: () => {} }) })
  .name('Discard');
await env.execute('bench-small');
