// Backpressure: a fast sequence source into a keyed operator that burns <micros> of CPU per
// record (a busy loop, as an expensive model call would), then a discarding sink; p=2,
// checkpoints every second. Args: [micros per record, default 1000] [checkpoint interval ms, default 1000].
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  KeyedProcessFunction,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

const micros = Number(getJobArgs()[0] ?? 1000);
const interval = Number(getJobArgs()[1] ?? 1000);

class Expensive extends KeyedProcessFunction<number, number, number> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(
    n: number,
    _ctx: KeyedProcessFunction.Context<number>,
    out: Collector<number>,
  ): void {
    const until = performance.now() + micros / 1000;
    while (performance.now() < until);
    this.count.update((this.count.value() ?? 0) + 1);
    out.collect(n);
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(interval);
env
  .fromSource(new DataGeneratorSource<number>((i) => i, undefined), 'Sequence')
  .keyBy((n) => n % 64)
  .process(new Expensive())
  .name('Expensive')
  .sinkTo({ createWriter: () => ({ write: () => {} }) })
  .name('Discard');
await env.execute('slow-keyed');
