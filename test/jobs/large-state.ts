// Large keyed state: <keys> distinct keys, each with a 100-byte value in RocksDB, checkpointed
// incrementally every <interval ms>. Args: <keys> <interval ms> [checkpoint storage]
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  KeyedProcessFunction,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

const PAD = 'v'.repeat(88);

class Remember extends KeyedProcessFunction<number, number, number> {
  private value!: ValueState<string>;
  override open(): void {
    this.value = this.getRuntimeContext().getState(new ValueStateDescriptor<string>('value'));
  }
  override processElement(
    n: number,
    _ctx: KeyedProcessFunction.Context<number>,
    out: Collector<number>,
  ): void {
    this.value.update(PAD + String(n).padStart(12, '0')); // 100 bytes
    if (n % 1_000_000 === 0) out.collect(n);
  }
}

const [keys, interval, storage] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(1);
env.setStateBackend('rocksdb', { incremental: true });
env.enableCheckpointing(Number(interval || 10_000));
if (storage) env.getCheckpointConfig().setCheckpointStorage(storage);
env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(keys)), 'Keys')
  .uid('keys')
  .keyBy((n) => n)
  .process(new Remember())
  .uid('remember')
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('large-state');
