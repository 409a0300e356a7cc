// A keyed count with checkpoints: args are <interval ms> <retained> <mode>.
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  KeyedProcessFunction,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, ValueState, CheckpointingMode } from '@weir/api';

class Count extends KeyedProcessFunction<number, number, number> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(
    _n: number,
    _ctx: KeyedProcessFunction.Context<number>,
    out: Collector<number>,
  ): void {
    const c = (this.count.value() ?? 0) + 1;
    this.count.update(c);
    out.collect(c);
  }
}

const [interval, retained, mode, storage, tolerable] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(Number(interval ?? 300), (mode ?? 'EXACTLY_ONCE') as CheckpointingMode);
env.getCheckpointConfig().setNumRetainedCheckpoints(Number(retained ?? 3));
if (storage) env.getCheckpointConfig().setCheckpointStorage(storage);
if (tolerable) env.getCheckpointConfig().setTolerableCheckpointFailureNumber(Number(tolerable));
env
  .fromSource(new DataGeneratorSource<number>((i) => i, undefined, 20_000), 'Generator')
  .uid('generator')
  .keyBy((n) => n % 100)
  .process(new Count())
  .uid('count')
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('checkpointed-count');
