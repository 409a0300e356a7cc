// Running count and sum per key (i % keys) over a rate-limited sequence, every update written
// through FileSink, with RocksDB state and checkpoints that are full or incremental. Args:
// <records> <records/s> <output dir> <full|incremental> <checkpoint storage> [interval ms] [retained] [keys]
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  FileSink,
  RestartStrategies,
  getJobArgs,
} from '@weir/api';
import { CountAndSum } from './count-and-sum.js';

const [records, rate, output, mode, storage, interval, retained, keys] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setStateBackend('rocksdb', { incremental: mode === 'incremental' });
env.enableCheckpointing(Number(interval || 200));
env
  .getCheckpointConfig()
  .setNumRetainedCheckpoints(Number(retained || 2))
  .setCheckpointStorage(storage!)
  .setExternalizedCheckpointRetention('RETAIN_ON_CANCELLATION');
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 100));
const k = Number(keys || 5000);
env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), Number(rate)), 'Sequence')
  .uid('sequence')
  .keyBy((n) => n % k)
  .process(new CountAndSum())
  .uid('count-and-sum')
  .sinkTo(new FileSink<[number, number, number]>({ path: output!, format: 'json' }))
  .uid('sink');
await env.execute('incremental-count');
