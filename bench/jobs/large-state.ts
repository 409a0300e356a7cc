// Benchmark: a job holding <keys> keys of state, checkpointed every <interval> ms; runs until canceled.
// Args: <keys> <interval ms> [checkpoint storage] [heap|rocksdb] [restart delay ms (default: the cluster's strategy)].
import { StreamExecutionEnvironment, DataGeneratorSource, RestartStrategies, getJobArgs } from '@weir/api';
import type { StateBackendType } from '@weir/api';
import { Count } from './count.js';

const keys = Number(getJobArgs()[0] ?? 1_000_000);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(Number(getJobArgs()[1] ?? 3000));
if (getJobArgs()[2]) env.getCheckpointConfig().setCheckpointStorage(getJobArgs()[2]!);
if (getJobArgs()[3]) env.setStateBackend(getJobArgs()[3] as StateBackendType);
if (getJobArgs()[4]) env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, Number(getJobArgs()[4])));
env
  .fromSource(new DataGeneratorSource<number>((i) => i % keys, undefined, 500_000), 'Keys')
  .keyBy((n) => n)
  .process(new Count())
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('bench-large-state');
