// Keyed running count, sum (ValueState) and per-parity counts (MapState) over a rate-limited
// bounded sequence: args <records> <output dir> [heap|rocksdb] (default: the cluster's backend)
// [records/s, default 15,000].
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  KeyedProcessFunction,
  MapStateDescriptor,
  ValueStateDescriptor,
  FileSink,
  getJobArgs,
} from '@weir/api';
import type { Collector, MapState, StateBackendType, ValueState } from '@weir/api';

class CountAndSum extends KeyedProcessFunction<number, number, [number, number, number, number]> {
  private count!: ValueState<number>;
  private sum!: ValueState<number>;
  private parity!: MapState<string, number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count', 0));
    this.sum = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('sum'));
    this.parity = this.getRuntimeContext().getMapState(new MapStateDescriptor<string, number>('parity'));
  }
  override processElement(
    n: number,
    ctx: KeyedProcessFunction.Context<number>,
    out: Collector<[number, number, number, number]>,
  ): void {
    const c = this.count.value()! + 1;
    const s = (this.sum.value() ?? 0) + n;
    const p = n % 2 === 0 ? 'even' : 'odd';
    this.count.update(c);
    this.sum.update(s);
    this.parity.put(p, (this.parity.get(p) ?? 0) + 1);
    out.collect([ctx.getCurrentKey(), c, s, this.parity.get('even') ?? 0]);
  }
}

const [records, output, backend, rate] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
if (backend) env.setStateBackend(backend as StateBackendType);
env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), Number(rate || 15_000)), 'Sequence')
  .uid('sequence')
  .keyBy((n) => n % 97)
  .process(new CountAndSum())
  .uid('count-and-sum')
  .sinkTo(new FileSink<[number, number, number, number]>({ path: output!, format: 'json' }))
  .uid('sink');
await env.execute('state-backend-count');
