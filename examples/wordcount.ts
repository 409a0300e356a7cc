/**
 * Word count: split lines into words, key by word, keep a running count per word in keyed
 * state, and write every update to part files under out/wordcount.
 *
 *   npx weir run examples/wordcount.ts --local
 *
 * Optional arguments make it longer and paced, to watch checkpoints and recovery on a cluster:
 *
 *   npx weir run examples/wordcount.ts --jobmanager localhost:6123 -- 200000 2000   # lines, lines/s
 */
import {
  StreamExecutionEnvironment,
  KeyedProcessFunction,
  type ValueState,
  ValueStateDescriptor,
  FileSink,
  type Collector,
  DataGeneratorSource,
  getJobArgs,
  type DataStream,
} from '@weir/api';
import { corpus } from './corpus.js';

class CountWords extends KeyedProcessFunction<string, [string, number], [string, number]> {
  private count!: ValueState<number>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
  }
  override processElement(
    v: [string, number],
    ctx: KeyedProcessFunction.Context<string>,
    out: Collector<[string, number]>,
  ): void {
    const c = (this.count.value() ?? 0) + v[1];
    this.count.update(c);
    out.collect([v[0], c]);
  }
}

const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
const [lines, linesPerSecond] = getJobArgs().map(Number);
let text: DataStream<string>;
if (lines) {
  // the same deterministic text, generated at a steady pace (a checkpointed source position)
  const all = corpus(lines);
  text = env
    .fromSource(new DataGeneratorSource<string>((i) => all[i]!, lines, linesPerSecond || undefined), 'Corpus')
    .uid('corpus');
} else {
  text = env.fromElements(...corpus());
}
text
  .flatMap((line: string, out: Collector<[string, number]>) => {
    for (const w of line.split(/\s+/)) out.collect([w, 1]);
  })
  .keyBy((t) => t[0])
  .process(new CountWords())
  .sinkTo(new FileSink<[string, number]>({ path: 'out/wordcount' }));
await env.execute('word-count');
