// Runs until canceled: a rate-limited generator through a shuffle into a discarding sink.
import { StreamExecutionEnvironment, DataGeneratorSource, getJobArgs } from '@weir/api';

const parallelism = Number(getJobArgs()[0] ?? 2);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(parallelism);
env
  .fromSource(new DataGeneratorSource<number>((i) => i, undefined, 2000), 'Generator')
  .keyBy((n) => n % 10)
  .reduce((a: number, b: number) => a + b)
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('unbounded');
