// Keyed running count and sum over a rate-limited bounded sequence: args <records> <output dir>
// [records/s, default 15,000].
import { StreamExecutionEnvironment, DataGeneratorSource, FileSink, getJobArgs } from '@weir/api';
import { CountAndSum } from './count-and-sum.js';

const [records, output, rate] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), Number(rate || 15_000)), 'Sequence')
  .uid('sequence')
  .keyBy((n) => n % 97)
  .process(new CountAndSum())
  .uid('count-and-sum')
  .sinkTo(new FileSink<[number, number, number]>({ path: output!, format: 'json' }))
  .uid('sink');
await env.execute('savepoint-count');
