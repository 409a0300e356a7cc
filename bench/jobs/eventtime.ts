// Benchmark: event time. Args: <lines> <window|count|count-watermarks>; lines * WORDS_PER_LINE
// records, record i has key i % 1000 and timestamp floor(i / 100) ms (ascending per source
// subtask), so a 1 s window holds about 100 records per key.
// window: tumbling 1 s event-time windows counting per key; count: a keyed count (no event
// time); count-watermarks: the same count with timestamps and watermarks every 200 ms.
import {
  DataGeneratorSource,
  StreamExecutionEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  getJobArgs,
} from '@weir/api';
import type { AggregateFunction } from '@weir/api';
import { WORDS_PER_LINE } from '../words.js';
import { Count } from './count.js';

const [lines, mode] = getJobArgs();
const n = Number(lines ?? 200_000) * WORDS_PER_LINE;
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
const source = new DataGeneratorSource<number>((i) => i, n);
const discard = { createWriter: () => ({ write: () => {} }) };
const strategy = WatermarkStrategy.forMonotonousTimestamps<number>().withTimestampAssigner((i) =>
  Math.floor(i / 100),
);
const count: AggregateFunction<number, number, number> = {
  createAccumulator: () => 0,
  add: (_v, acc) => acc + 1,
  getResult: (acc) => acc,
  merge: (a, b) => a + b,
};
if (mode === 'window') {
  env
    .fromSource(source, strategy, 'Numbers')
    .keyBy((i) => i % 1000)
    .window(TumblingEventTimeWindows.of(1000))
    .aggregate(count)
    .sinkTo(discard)
    .name('Discard');
} else {
  const numbers =
    mode === 'count-watermarks'
      ? env.fromSource(source, strategy, 'Numbers')
      : env.fromSource(source, 'Numbers');
  numbers
    .keyBy((i) => i % 1000)
    .process(new Count())
    .sinkTo(discard)
    .name('Discard');
}
await env.execute(`bench-eventtime-${mode}`);
