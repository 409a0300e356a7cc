// Running count and sum per key (i % 1000) over a rate-limited sequence, every update written
// through FileSink: args <records> <records/s> <output dir> [mode] [checkpoint storage] [interval ms] [heap|rocksdb].
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  FileSink,
  RestartStrategies,
  getJobArgs,
} from '@weir/api';
import type { CheckpointingMode, StateBackendType } from '@weir/api';
import { CountAndSum } from './count-and-sum.js';

const [records, rate, output, mode, storage, interval, backend] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(Number(interval || 500), (mode || 'EXACTLY_ONCE') as CheckpointingMode);
env.getCheckpointConfig().setNumRetainedCheckpoints(2);
if (storage) env.getCheckpointConfig().setCheckpointStorage(storage);
if (backend) env.setStateBackend(backend as StateBackendType);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 100));
env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), Number(rate)), 'Sequence')
  .uid('sequence')
  .keyBy((n) => n % 1000)
  .process(new CountAndSum())
  .uid('count-and-sum')
  .sinkTo(new FileSink<[number, number, number]>({ path: output!, format: 'json' }))
  .uid('sink');
await env.execute('exactly-once');
