// Every update of a running count and sum per key (i % <keys>) over a rate-limited sequence,
// through FileSink, with checkpoints every 300 ms; the parallelism is the run's (-p):
// args <records> <records/s> <keys> <output dir> [second output dir].
import { StreamExecutionEnvironment, DataGeneratorSource, FileSink, getJobArgs } from '@weir/api';
import { CountAndSum } from './count-and-sum.js';

const [records, rate, keys, output, second] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.enableCheckpointing(300);
const updates = env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), Number(rate)), 'Sequence')
  .uid('sequence')
  .keyBy((n) => n % Number(keys))
  .process(new CountAndSum())
  .uid('count-and-sum');
updates.sinkTo(new FileSink<[number, number, number]>({ path: output!, format: 'json' })).uid('sink');
if (second)
  updates.sinkTo(new FileSink<[number, number, number]>({ path: second, format: 'json' })).uid('sink-2');
await env.execute('keyed-updates');
