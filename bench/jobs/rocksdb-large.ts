// Benchmark: <keys> keys, each with a value of about 100 bytes, in RocksDB on one subtask,
// checkpointed every <interval> ms; the source cycles over the keys and runs until canceled.
// Args: <keys> <interval ms> [full|incremental] [records per second, 0: as fast as it goes].
import {
  DataGeneratorSource,
  KeyedProcessFunction,
  StreamExecutionEnvironment,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

const keys = Number(getJobArgs()[0] ?? 5_000_000);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(1);
const interval = Number(getJobArgs()[1] ?? 10_000);
env.enableCheckpointing(interval);
// a full checkpoint of large state on a loaded machine takes minutes: let it finish
env
  .getCheckpointConfig()
  .setCheckpointTimeout(3_600_000)
  .setMinPauseBetweenCheckpoints(interval / 2);
const rate = Number(getJobArgs()[3] ?? 0);
env.setStateBackend('rocksdb', { incremental: getJobArgs()[2] === 'incremental' });

/** 100 bytes per key: a 92-character string (msgpack adds its header) and the count. */
const PAD = 'x'.repeat(88);

class Touch extends KeyedProcessFunction<number, number, number> {
  private value!: ValueState<[number, string]>;
  override open(): void {
    this.value = this.getRuntimeContext().getState(new ValueStateDescriptor<[number, string]>('v'));
  }
  override processElement(
    _n: number,
    _ctx: KeyedProcessFunction.Context<number>,
    _out: Collector<number>,
  ): void {
    const v = this.value.value();
    this.value.update([(v?.[0] ?? 0) + 1, PAD]);
  }
}

env
  .fromSource(
    new DataGeneratorSource<number>((i) => i % keys, undefined, rate > 0 ? rate : undefined),
    'Keys',
  )
  .keyBy((n) => n)
  .process(new Touch())
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('bench-rocksdb-large');
