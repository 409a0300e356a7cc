// Window kinds beyond event-time.ts over the same deterministic input (event-time-data.ts),
// every result through a FileSink: args <records> <records/s> <output dir>.
// Outputs: <dir>/lateness (tumbling windows with allowed lateness: on-time and late firings),
// <dir>/late (what is later than the allowed lateness, by side output), <dir>/count (sliding
// count windows, size COUNT_SIZE every COUNT_SLIDE records per key), <dir>/evictor (tumbling
// windows keeping only their last EVICTOR_KEEP records).
import {
  CountEvictor,
  DataGeneratorSource,
  FileSink,
  OutputTag,
  ProcessWindowFunction,
  RestartStrategies,
  StreamExecutionEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  getJobArgs,
} from '@weir/api';
import type { AggregateFunction, Collector, GlobalWindow, TimeWindow, WatermarkGenerator } from '@weir/api';
import {
  ALLOWED_LATENESS,
  COUNT_SIZE,
  COUNT_SLIDE,
  EVICTOR_KEEP,
  TUMBLING,
  WATERMARK_EVERY,
  event,
  watermarkFor,
  type Event,
} from './event-time-data.js';

const [records, rate, output] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(2);
env.enableCheckpointing(300);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 100));

/** Punctuated, as in event-time.ts: the watermark depends only on the records seen. */
class SecondsWatermarks implements WatermarkGenerator<Event> {
  private maxTs = -Infinity;
  private last = -Infinity;
  onEvent(e: Event, ts: number, out: { emitWatermark(w: { timestamp: number }): void }): void {
    this.maxTs = Math.max(this.maxTs, ts);
    if (e.i % WATERMARK_EVERY !== WATERMARK_EVERY - 1) return;
    const wm = watermarkFor(this.maxTs);
    if (wm > this.last) {
      this.last = wm;
      out.emitWatermark({ timestamp: wm });
    }
  }
  onPeriodicEmit(): void {}
}

const strategy = WatermarkStrategy.forGenerator<Event>(() => new SecondsWatermarks()).withTimestampAssigner(
  (e) => e.ts,
);
const events = env
  .fromSource(new DataGeneratorSource<Event>(event, Number(records), Number(rate)), strategy, 'Events')
  .setParallelism(1)
  .uid('events');

const count: AggregateFunction<Event, number, number> = {
  createAccumulator: () => 0,
  add: (_e, acc) => acc + 1,
  getResult: (acc) => acc,
  merge: (a, b) => a + b,
};
class Labeled extends ProcessWindowFunction<number, unknown[], number, TimeWindow> {
  process(
    key: number,
    ctx: ProcessWindowFunction.Context<TimeWindow>,
    counts: Iterable<number>,
    out: Collector<unknown[]>,
  ): void {
    for (const c of counts) out.collect(['lateness', key, ctx.window().getStart(), c]);
  }
}
const lateTag = new OutputTag<Event>('late');
const lateness = events
  .keyBy((e) => e.key)
  .window(TumblingEventTimeWindows.of(TUMBLING))
  .allowedLateness(ALLOWED_LATENESS)
  .sideOutputLateData(lateTag)
  .aggregate(count, new Labeled())
  .uid('lateness');
lateness.sinkTo(new FileSink<unknown[]>({ path: `${output}/lateness`, format: 'json' })).uid('lateness-sink');
lateness
  .getSideOutput(lateTag)
  .map((e): unknown[] => ['late', e.key, e.ts])
  .uid('late-map')
  .sinkTo(new FileSink<unknown[]>({ path: `${output}/late`, format: 'json' }))
  .uid('late-sink');

/** The indices of a window's records, in the order the window holds them. */
class Indices<W extends TimeWindow | GlobalWindow> extends ProcessWindowFunction<
  Event,
  unknown[],
  number,
  W
> {
  constructor(private readonly kind: string) {
    super();
  }
  process(
    key: number,
    ctx: ProcessWindowFunction.Context<W>,
    elements: Iterable<Event>,
    out: Collector<unknown[]>,
  ): void {
    const w = ctx.window();
    const start = 'getStart' in w ? (w as TimeWindow).getStart() : null;
    out.collect([this.kind, key, start, [...elements].map((e) => e.i)]);
  }
}
// chained to the one source subtask, so each key's records reach its window in index order
const onTime = events
  .filter((e) => !e.late)
  .setParallelism(1)
  .uid('on-time');
onTime
  .keyBy((e) => e.key)
  .countWindow(COUNT_SIZE, COUNT_SLIDE)
  .process(new Indices<GlobalWindow>('count'))
  .uid('count')
  .sinkTo(new FileSink<unknown[]>({ path: `${output}/count`, format: 'json' }))
  .uid('count-sink');
onTime
  .keyBy((e) => e.key)
  .window(TumblingEventTimeWindows.of(TUMBLING))
  .evictor(CountEvictor.of(EVICTOR_KEEP))
  .process(new Indices<TimeWindow>('evictor'))
  .uid('evictor')
  .sinkTo(new FileSink<unknown[]>({ path: `${output}/evictor`, format: 'json' }))
  .uid('evictor-sink');
await env.execute('event-time-windows');
