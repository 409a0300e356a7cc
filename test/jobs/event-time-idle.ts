// Idleness: args <records> <records/s> <output dir>. A source of parallelism 2 whose subtask 1
// has no records past its filter (record i comes from subtask i % 2; only even i pass), then
// timestamps (i * 10 ms) and watermarks with idleness of 300 ms, then 1 s tumbling windows
// counting all records into <dir>/windows. Without idleness the empty subtask would hold every
// window until the end of the input; with it windows fire while the source still runs.
import {
  DataGeneratorSource,
  FileSink,
  StreamExecutionEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  getJobArgs,
} from '@weir/api';
import type { AggregateFunction } from '@weir/api';

const [records, rate, output] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(200);
const count: AggregateFunction<number, number, number> = {
  createAccumulator: () => 0,
  add: (_i, acc) => acc + 1,
  getResult: (acc) => acc,
  merge: (a, b) => a + b,
};
env
  .fromSource(new DataGeneratorSource<number>((i) => i, Number(records), Number(rate)), 'Numbers')
  .filter((i) => i % 2 === 0)
  .assignTimestampsAndWatermarks(
    WatermarkStrategy.forMonotonousTimestamps<number>()
      .withTimestampAssigner((i) => i * 10)
      .withIdleness(300),
  )
  .keyBy(() => 0)
  .window(TumblingEventTimeWindows.of(1000))
  .aggregate(count)
  .map((c): unknown[] => ['window', c])
  .sinkTo(new FileSink<unknown[]>({ path: `${output}/windows`, format: 'json' }));
await env.execute('event-time-idle');
