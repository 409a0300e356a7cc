// Benchmark: a job holding <keys> keys of state, checkpointed every <interval> ms; runs until canceled.
// Args: <keys> <interval ms> [checkpoint storage] [heap|rocksdb] [restart delay ms (default: the cluster's strategy)].
import { StreamExecutionEnvironment, DataGeneratorSource, KeyedProcessFunction, RestartStrategies, ValueStateDescriptor, getJobArgs } from '@weir/api';
import type { Collector, StateBackendType, ValueState } from '@weir/api';

class Count extends KeyedProcessFunction<number, number, number> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(_n: number, _ctx: KeyedProcessFunction.Context<number>, _out: Collector<number>): void {
    this.count.update((this.count.value() ?? 0) + 1);
  }
}

const keys = Number(getJobArgs()[0] ?? 1_000_000);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(Number(getJobArgs()[1] ?? 3000));
if (getJobArgs()[2]) env.getCheckpointConfig().setCheckpointStorage(getJobArgs()[2]!);
if (getJobArgs()[3]) env.setStateBackend(getJobArgs()[3] as StateBackendType);
if (getJobArgs()[4]) env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, Number(getJobArgs()[4])));
env.fromSource(new DataGeneratorSource<number>((i) => i % keys, undefined, 500_000), 'Keys')
  .keyBy((n) => n)
  .process(new Count())
  .sinkTo({ createWriter: () => ({ write: () => {} }) });
await env.execute('bench-large-state');
