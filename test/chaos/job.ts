// The chaos suite's job: a running count and sum per key (i % keys) over a rate-limited sequence,
// every update written through FileSink (two-phase commit), so the committed output can be
// checked exactly. Args: <records> <records/s> <output dir> <parallelism> <checkpoint interval ms>
// [heap | rocksdb | rocksdb-incremental] [max concurrent checkpoints].
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  FileSink,
  RestartStrategies,
  getJobArgs,
} from '@weir/api';
import { CountAndSum } from '../jobs/count-and-sum.js';

const KEYS = 1000; // the runner's check (test/chaos/check.ts) uses the same

const [records, rate, output, parallelism, interval, backend, concurrent] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(parallelism || 2));
env.enableCheckpointing(Number(interval || 500), 'EXACTLY_ONCE');
const cc = env.getCheckpointConfig();
cc.setNumRetainedCheckpoints(2);
cc.setCheckpointTimeout(10_000);
cc.setMaxConcurrentCheckpoints(Number(concurrent || 1));
if (backend === 'rocksdb') env.setStateBackend('rocksdb');
if (backend === 'rocksdb-incremental') env.setStateBackend('rocksdb', { incremental: true });
// faults come back to back: the job must never run out of restarts
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(1_000, 200));
env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), Number(rate)), 'Sequence')
  .uid('sequence')
  .keyBy((n) => n % KEYS)
  .process(new CountAndSum())
  .uid('count-and-sum')
  .sinkTo(new FileSink<[number, number, number]>({ path: output!, format: 'json' }))
  .uid('sink');
await env.execute('chaos-exactly-once');
