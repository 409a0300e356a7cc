// Two independent pipelines in one job (two pipelined regions), each a running count and sum per
// key (i % 100) over a rate-limited sequence written through its own FileSink:
// args <records> <records/s> <output dir A> <output dir B> [parallelism, default 1]; an empty
// output dir B: pipeline A alone.
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  FileSink,
  RestartStrategies,
  getJobArgs,
} from '@weir/api';
import { CountAndSum } from './count-and-sum.js';

const [records, rate, outA, outB, parallelism] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(parallelism ?? 1));
env.enableCheckpointing(300);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(5, 100));
for (const [name, out] of [
  ['a', outA],
  ['b', outB],
] as const) {
  if (!out) continue;
  env
    .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), Number(rate)), `Sequence ${name}`)
    .uid(`sequence-${name}`)
    .keyBy((n) => n % 100)
    .process(new CountAndSum())
    .name(`Count ${name}`)
    .uid(`count-${name}`)
    .sinkTo(new FileSink<[number, number, number]>({ path: out!, format: 'json' }))
    .name(`Sink ${name}`)
    .uid(`sink-${name}`);
}
await env.execute('two-pipelines');
