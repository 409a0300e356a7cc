// Backpressure for the unaligned bench: an unthrottled sequence into a keyed running count that
// spends <work µs> of CPU per record, parallelism 1 (one core busy, the other for the cluster).
// Args: <work µs> <aligned|unaligned|timeout:<ms>> [interval ms]
import {
  DiscardingSink,
  StreamExecutionEnvironment,
  KeyedProcessFunction,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

const [workUs, mode, interval] = getJobArgs();

class SlowCount extends KeyedProcessFunction<number, number, number> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(
    n: number,
    _ctx: KeyedProcessFunction.Context<number>,
    out: Collector<number>,
  ): void {
    const until = performance.now() + Number(workUs) / 1000;
    while (performance.now() < until);
    const c = (this.count.value() ?? 0) + 1;
    this.count.update(c);
    if (c % 1000 === 0) out.collect(n);
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(1);
env.enableCheckpointing(Number(interval || 1000));
if (mode === 'unaligned') env.getCheckpointConfig().enableUnalignedCheckpoints();
else if (mode?.startsWith('timeout:'))
  env
    .getCheckpointConfig()
    .enableUnalignedCheckpoints()
    .setAlignedCheckpointTimeout(Number(mode.slice(8)));
env
  .fromSequence(0, Number.MAX_SAFE_INTEGER - 1)
  .keyBy((n: number) => n % 100)
  .process(new SlowCount())
  .sinkTo(new DiscardingSink<number>());
await env.execute('backpressured');
