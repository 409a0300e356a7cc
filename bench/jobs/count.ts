// Shared by benchmark jobs: counts the records of each key in keyed state, emits nothing.
import { KeyedProcessFunction, ValueStateDescriptor } from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

export class Count extends KeyedProcessFunction<number, number, number> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(
    _n: number,
    _ctx: KeyedProcessFunction.Context<number>,
    _out: Collector<number>,
  ): void {
    this.count.update((this.count.value() ?? 0) + 1);
  }
}
