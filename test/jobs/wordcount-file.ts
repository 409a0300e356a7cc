// Word count over a text file: args are <input> <output dir>. Parallelism comes from -p.
import {
  StreamExecutionEnvironment,
  KeyedProcessFunction,
  ValueStateDescriptor,
  FileSink,
  getJobArgs,
} from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

class CountWords extends KeyedProcessFunction<string, [string, number], [string, number]> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(
    v: [string, number],
    _ctx: KeyedProcessFunction.Context<string>,
    out: Collector<[string, number]>,
  ): void {
    const c = (this.count.value() ?? 0) + v[1];
    this.count.update(c);
    out.collect([v[0], c]);
  }
}

const [input, output] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .readTextFile(input!)
  .flatMap((line: string, out: Collector<[string, number]>) => {
    for (const w of line.split(/\s+/)) if (w) out.collect([w, 1]);
  })
  .keyBy((t) => t[0])
  .process(new CountWords())
  .sinkTo(new FileSink<[string, number]>({ path: output!, format: 'json' }));
await env.execute('wordcount-file');
