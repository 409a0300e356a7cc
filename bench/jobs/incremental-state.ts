// Benchmark: <keys> keys of RocksDB state (a count each), then <changed> keys updated between
// consecutive checkpoints: the source loads every key once, and afterwards emits one batch of
// changes after each checkpoint's barrier, so every checkpoint covers exactly one batch.
// Args: <keys> <changed per checkpoint> <full|incremental> <checkpoint storage> [interval ms]
import { StreamExecutionEnvironment, InputStatus, getJobArgs } from '@weir/api';
import type { ReaderOutput, Source, SourceReader } from '@weir/api';
import { Count } from './count.js';

const [keysArg, changedArg, mode, storage, interval] = getJobArgs();
const KEYS = Number(keysArg ?? 1_000_000);
const CHANGED = Number(changedArg ?? 10_000);

class LoadThenChange implements Source<number> {
  readonly boundedness = 'CONTINUOUS_UNBOUNDED' as const;
  createReader(ctx: { subtaskIndex: number; parallelism: number }): SourceReader<number> {
    const { subtaskIndex: me, parallelism: p } = ctx;
    let next = Math.floor((KEYS * me) / p);
    const end = Math.floor((KEYS * (me + 1)) / p);
    let budget = 0; // changes allowed until the next checkpoint
    let seed = 12345 + me;
    let wake: (() => void) | undefined;
    return {
      pollNext(out: ReaderOutput<number>): InputStatus {
        if (next < end) {
          for (let i = 0; i < 500 && next < end; i++) out.collect(next++);
          return InputStatus.MORE_AVAILABLE;
        }
        if (budget === 0) return InputStatus.NOTHING_AVAILABLE;
        for (let i = 0; i < 500 && budget > 0; i++, budget--) {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          out.collect(seed % KEYS);
        }
        return InputStatus.MORE_AVAILABLE;
      },
      isAvailable: () => new Promise<void>((resolve) => (wake = resolve)),
      snapshotState(): unknown[] {
        // the barrier follows: the next batch of changes belongs to the next checkpoint
        if (next >= end) budget = Math.floor(CHANGED / p);
        const w = wake;
        wake = undefined;
        setImmediate(() => w?.());
        return [];
      },
    };
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.setStateBackend('rocksdb', { incremental: mode === 'incremental' });
env.enableCheckpointing(Number(interval ?? 1000));
env
  .getCheckpointConfig()
  .setCheckpointStorage(storage!)
  .setExternalizedCheckpointRetention('RETAIN_ON_CANCELLATION');
env
  .fromSource(new LoadThenChange(), 'LoadThenChange')
  .keyBy((n) => n)
  .process(new Count())
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('bench-incremental-state');
