// Keyed running count and sum over a rate-limited bounded sequence: args <records> <output dir>.
import { StreamExecutionEnvironment, DataGeneratorSource, KeyedProcessFunction, ValueStateDescriptor, FileSink, getJobArgs } from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

class CountAndSum extends KeyedProcessFunction<number, number, [number, number, number]> {
  private count!: ValueState<number>;
  private sum!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
    this.sum = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('sum'));
  }
  override processElement(n: number, ctx: KeyedProcessFunction.Context<number>, out: Collector<[number, number, number]>): void {
    const c = (this.count.value() ?? 0) + 1;
    const s = (this.sum.value() ?? 0) + n;
    this.count.update(c);
    this.sum.update(s);
    out.collect([ctx.getCurrentKey(), c, s]);
  }
}

const [records, output] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.fromSource(new DataGeneratorSource<number>((i) => i, Number(records), 15_000), 'Sequence').uid('sequence')
  .keyBy((n) => n % 97)
  .process(new CountAndSum()).uid('count-and-sum')
  .sinkTo(new FileSink<[number, number, number]>({ path: output!, format: 'json' })).uid('sink');
await env.execute('savepoint-count');
