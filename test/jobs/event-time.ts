// Event-time windows and timers over a deterministic, rate-limited input (event-time-data.ts),
// every result through a FileSink: args <records> <records/s> <output dir> [heap|rocksdb]
// [parallelism of the keyed operators, default 2].
// Outputs: <dir>/windows (tumbling, sliding, session), <dir>/timers (a KeyedProcessFunction's
// event-time timers), <dir>/late (late records of the tumbling window and of the process
// function, by side output), <dir>/pt (one processing-time timer per key).
import {
  DataGeneratorSource,
  EventTimeSessionWindows,
  FileSink,
  KeyedProcessFunction,
  OutputTag,
  ProcessWindowFunction,
  RestartStrategies,
  SlidingEventTimeWindows,
  StreamExecutionEnvironment,
  TumblingEventTimeWindows,
  ValueStateDescriptor,
  WatermarkStrategy,
  getJobArgs,
} from '@weir/api';
import type {
  AggregateFunction,
  Collector,
  StateBackendType,
  TimeWindow,
  ValueState,
  WatermarkGenerator,
} from '@weir/api';
import {
  WATERMARK_EVERY,
  event,
  timerFor,
  watermarkFor,
  SESSION_GAP,
  SLIDING_SIZE,
  SLIDING_SLIDE,
  TUMBLING,
  type Event,
} from './event-time-data.js';

const [records, rate, output, backend, parallelism] = getJobArgs();
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(parallelism || 2));
env.enableCheckpointing(300);
if (backend) env.setStateBackend(backend as StateBackendType);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 100));

/** Punctuated: the watermark depends only on the records seen, never on the clock. */
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
// one source subtask: each consumer subtask reads one channel, so records and watermarks meet in one order
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
  constructor(private readonly kind: string) {
    super();
  }
  process(
    key: number,
    ctx: ProcessWindowFunction.Context<TimeWindow>,
    counts: Iterable<number>,
    out: Collector<unknown[]>,
  ): void {
    for (const c of counts) out.collect([this.kind, key, ctx.window().getStart(), ctx.window().getEnd(), c]);
  }
}
const lateTag = new OutputTag<Event>('late');
const windowsOut = new FileSink<unknown[]>({ path: `${output}/windows`, format: 'json' });
const lateOut = new FileSink<unknown[]>({ path: `${output}/late`, format: 'json' });

const tumbling = events
  .keyBy((e) => e.key)
  .window(TumblingEventTimeWindows.of(TUMBLING))
  .sideOutputLateData(lateTag)
  .aggregate(count, new Labeled('tumbling'))
  .uid('tumbling');
const sliding = events
  .keyBy((e) => e.key)
  .window(SlidingEventTimeWindows.of(SLIDING_SIZE, SLIDING_SLIDE))
  .aggregate(count, new Labeled('sliding'))
  .uid('sliding');
const session = events
  .filter((e) => !e.late)
  .uid('on-time')
  .keyBy((e) => e.key)
  .window(EventTimeSessionWindows.withGap(SESSION_GAP))
  .aggregate(count, new Labeled('session'))
  .uid('session');
tumbling.union(sliding, session).sinkTo(windowsOut).uid('windows-sink');

const lateProcessTag = new OutputTag<unknown[]>('late-process');
const ptTag = new OutputTag<unknown[]>('pt');

/** Counts on-time records per key; an event-time timer per period reports the count; late records go aside. */
class CountWithTimers extends KeyedProcessFunction<number, Event, unknown[]> {
  private count!: ValueState<number>;
  private ptDone!: ValueState<boolean>;
  override open(): void {
    this.count = this.getRuntimeContext().getState(new ValueStateDescriptor<number>('count'));
    this.ptDone = this.getRuntimeContext().getState(new ValueStateDescriptor<boolean>('pt-registered'));
  }
  processElement(e: Event, ctx: KeyedProcessFunction.Context<number>, _out: Collector<unknown[]>): void {
    const ts = ctx.timestamp()!;
    if (ts <= ctx.timerService().currentWatermark()) {
      ctx.output(lateProcessTag, ['late-process', e.key, ts]);
      return;
    }
    this.count.update((this.count.value() ?? 0) + 1);
    ctx.timerService().registerEventTimeTimer(timerFor(ts));
    if (!this.ptDone.value()) {
      this.ptDone.update(true);
      ctx.timerService().registerProcessingTimeTimer(ctx.timerService().currentProcessingTime() + 20);
    }
  }
  override onTimer(
    t: number,
    ctx: KeyedProcessFunction.OnTimerContext<number>,
    out: Collector<unknown[]>,
  ): void {
    if (ctx.timeDomain() === 'PROCESSING_TIME') ctx.output(ptTag, ['pt', ctx.getCurrentKey()]);
    else out.collect(['timer', ctx.getCurrentKey(), t, this.count.value() ?? 0]);
  }
}
const timers = events
  .keyBy((e) => e.key)
  .process(new CountWithTimers())
  .uid('timers');
timers.sinkTo(new FileSink<unknown[]>({ path: `${output}/timers`, format: 'json' })).uid('timers-sink');
tumbling
  .getSideOutput(lateTag)
  .map((e): unknown[] => ['late', e.key, e.ts])
  .uid('late-map')
  .union(timers.getSideOutput(lateProcessTag))
  .sinkTo(lateOut)
  .uid('late-sink');
timers
  .getSideOutput(ptTag)
  .sinkTo(new FileSink<unknown[]>({ path: `${output}/pt`, format: 'json' }))
  .uid('pt-sink');
await env.execute('event-time');
