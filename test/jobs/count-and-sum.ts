// Shared by test jobs: a running count and sum per key, emitted as [key, count, sum] on every record.
import { KeyedProcessFunction, ValueStateDescriptor } from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

export class CountAndSum extends KeyedProcessFunction<number, number, [number, number, number]> {
  private count!: ValueState<number>;
  private sum!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
    this.sum = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('sum'));
  }
  override processElement(
    n: number,
    ctx: KeyedProcessFunction.Context<number>,
    out: Collector<[number, number, number]>,
  ): void {
    const c = (this.count.value() ?? 0) + 1;
    const s = (this.sum.value() ?? 0) + n;
    this.count.update(c);
    this.sum.update(s);
    out.collect([ctx.getCurrentKey(), c, s]);
  }
}
