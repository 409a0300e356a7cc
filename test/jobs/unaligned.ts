// A fast sequence into a keyed running count and sum that spends <work µs> of CPU per record
// (heavy backpressure), every update written through FileSink. Args: <records> <output dir>
// <work µs> <checkpoints: unaligned|aligned|timeout:<ms>, then ",retain" to keep checkpoints on
// cancel> [parallelism] [interval ms] [storage] [heap|rocksdb]
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  FileSink,
  KeyedProcessFunction,
  RestartStrategies,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, StateBackendType, ValueState } from '@weir/api';

const [records, output, workUs, modeArg, parallelism, interval, storage, backend] = getJobArgs();
const [mode, retain] = (modeArg ?? '').split(',');

class SlowCountAndSum extends KeyedProcessFunction<number, number, [number, number, number]> {
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
    // an expensive call per record (a model, a lookup): busy, so the task is CPU-bound
    const until = performance.now() + Number(workUs) / 1000;
    while (performance.now() < until);
    const c = (this.count.value() ?? 0) + 1;
    const s = (this.sum.value() ?? 0) + n;
    this.count.update(c);
    this.sum.update(s);
    out.collect([ctx.getCurrentKey(), c, s]);
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(parallelism || 2));
env.enableCheckpointing(Number(interval || 300));
const config = env.getCheckpointConfig();
config.setNumRetainedCheckpoints(2);
if (retain === 'retain') config.setExternalizedCheckpointRetention('RETAIN_ON_CANCELLATION');
if (mode === 'unaligned') config.enableUnalignedCheckpoints();
else if (mode?.startsWith('timeout:'))
  config.enableUnalignedCheckpoints().setAlignedCheckpointTimeout(Number(mode.slice(8)));
if (storage) config.setCheckpointStorage(storage);
if (backend) env.setStateBackend(backend as StateBackendType);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 100));
env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records)), 'Sequence')
  .uid('sequence')
  .keyBy((n) => n % 50)
  .process(new SlowCountAndSum())
  .uid('slow-count-and-sum')
  .sinkTo(new FileSink<[number, number, number]>({ path: output!, format: 'json' }))
  .uid('sink');
await env.execute('unaligned');
