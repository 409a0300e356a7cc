// Benchmark: keyed word count with a hash shuffle. Args: <lines> [checkpoint interval ms] [heap|rocksdb].
import {
  StreamExecutionEnvironment,
  DataGeneratorSource,
  KeyedProcessFunction,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, StateBackendType, ValueState } from '@weir/api';
import { line } from '../words.js';

class CountWords extends KeyedProcessFunction<string, string, [string, number]> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(
    w: string,
    _ctx: KeyedProcessFunction.Context<string>,
    out: Collector<[string, number]>,
  ): void {
    const c = (this.count.value() ?? 0) + 1;
    this.count.update(c);
    out.collect([w, c]);
  }
}

const lines = Number(getJobArgs()[0] ?? 2_000_000);
const checkpointInterval = Number(getJobArgs()[1] ?? 0);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
if (checkpointInterval > 0) env.enableCheckpointing(checkpointInterval);
if (getJobArgs()[2]) env.setStateBackend(getJobArgs()[2] as StateBackendType);
env
  .fromSource(new DataGeneratorSource<string>(line, lines), 'Lines')
  .flatMap((l: string, out: Collector<string>) => {
    for (const w of l.split(' ')) out.collect(w);
  })
  .keyBy((w) => w)
  .process(new CountWords())
  .sinkTo({ createWriter: () => ({ write: () => {} }) })
  .name('Discard');
await env.execute('bench-wordcount');
