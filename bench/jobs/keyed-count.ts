// Benchmark: running count and sum per key over <keys> keys drawn uniformly (a fixed hash of the
// record index), one state update per record, one output every 4th update of a key.
// Args: <records> <keys> [checkpoint interval ms, 0: none] [heap|rocksdb|rocksdb-incremental] [parallelism (default 2)].
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  KeyedProcessFunction,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, StateBackendType, ValueState } from '@weir/api';

class CountAndSum extends KeyedProcessFunction<number, [number, number], [number, number, number]> {
  private acc!: ValueState<[number, number]>;
  override open(): void {
    this.acc = this.getRuntimeContext().getState(new ValueStateDescriptor<[number, number]>('count-sum'));
  }
  override processElement(
    r: [number, number],
    _ctx: KeyedProcessFunction.Context<number>,
    out: Collector<[number, number, number]>,
  ): void {
    const a = this.acc.value() ?? [0, 0];
    a[0] += 1;
    a[1] += r[1];
    this.acc.update(a);
    if ((a[0] & 3) === 0) out.collect([r[0], a[0], a[1]]);
  }
}

const args = getJobArgs();
const records = Number(args[0] ?? 4_000_000);
const keys = Number(args[1] ?? 1_000_000);
const interval = Number(args[2] ?? 1000);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(args[4] ?? 2));
if (interval > 0) env.enableCheckpointing(interval);
if (args[3] === 'rocksdb-incremental') env.setStateBackend('rocksdb', { incremental: true });
else if (args[3]) env.setStateBackend(args[3] as StateBackendType);
env
  .fromSource(
    // uniform over the keys: a multiplicative hash of the index, so consecutive records hit unrelated keys
    new DataGeneratorSource<[number, number]>(
      (i) => [(Math.imul(i, 0x9e3779b1) >>> 0) % keys, i & 0xff],
      records,
    ),
    'Records',
  )
  .keyBy((r) => r[0])
  .process(new CountAndSum())
  .sinkTo({ createWriter: () => ({ write: () => {} }) })
  .name('Discard');
await env.execute('bench-keyed-count');
