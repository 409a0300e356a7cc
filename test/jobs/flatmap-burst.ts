// A flatMap that emits a million records (about 220 MB) for each of a few inputs, keyed to a
// counter on both TaskManagers. Args: <inputs> <records per input> <output dir>.
import {
  DataGeneratorSource,
  FileSink,
  KeyedProcessFunction,
  StreamExecutionEnvironment,
  ValueStateDescriptor,
  getJobArgs,
} from '@weir/api';
import type { Collector, ValueState } from '@weir/api';

interface Rec {
  input: number;
  j: number;
  pad: string;
}

class Count extends KeyedProcessFunction<number, Rec, [number, number, number]> {
  private count!: ValueState<[number, number]>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<[number, number]>('count'));
  }
  override processElement(
    r: Rec,
    ctx: KeyedProcessFunction.Context<number>,
    out: Collector<[number, number, number]>,
  ): void {
    if (r.pad.length !== 200) throw new Error(`record ${r.input}/${r.j} arrived changed`);
    const [c, s] = this.count.value() ?? [0, 0];
    this.count.update([c + 1, s + r.j]);
    if ((c + 1) % 100_000 === 0) out.collect([ctx.getCurrentKey(), c + 1, s + r.j]);
  }
}

const [inputs, perInput, output] = getJobArgs();
const n = Number(perInput);
const pad = 'x'.repeat(200);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env
  .fromSource(new DataGeneratorSource((i) => i, Number(inputs), 1), 'Inputs')
  .setParallelism(1)
  .flatMap((input: number, out: Collector<Rec>) => {
    for (let j = 0; j < n; j++) out.collect({ input, j, pad });
  })
  .setParallelism(1)
  .keyBy((r) => r.j % 2)
  .process(new Count())
  .setParallelism(2)
  .sinkTo(new FileSink<[number, number, number]>({ path: output!, format: 'json' }))
  .setParallelism(2);
await env.execute('flatmap-burst');
