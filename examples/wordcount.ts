/**
 * Word count: split lines into words, key by word, keep a running count per word in keyed
 * state, and write every update to part files under out/wordcount.
 *
 *   npx weir run examples/wordcount.ts --local
 */
import {
  StreamExecutionEnvironment, KeyedProcessFunction, ValueState, ValueStateDescriptor, FileSink, Collector,
} from '@weir/api';
import { corpus } from './corpus.js';

class CountWords extends KeyedProcessFunction<string, [string, number], [string, number]> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(v: [string, number], ctx: KeyedProcessFunction.Context<string>,
                          out: Collector<[string, number]>): void {
    const c = (this.count.value() ?? 0) + v[1];
    this.count.update(c);
    out.collect([v[0], c]);
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.fromElements(...corpus())
  .flatMap((line: string, out: Collector<[string, number]>) => {
    for (const w of line.split(/\s+/)) out.collect([w, 1]);
  })
  .keyBy((t) => t[0])
  .process(new CountWords())
  .sinkTo(new FileSink<[string, number]>({ path: 'out/wordcount' }));
await env.execute('word-count');
