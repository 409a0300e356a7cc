// Every two-input pattern over two deterministic, rate-limited inputs (two-input-data.ts), every
// result through a FileSink: args <records> <records/s> <output dir> [heap|rocksdb].
// Outputs (one directory each): comap, co (keyed co-process with event-time timers), ij and
// late (interval join and its late left records), join, cogroup, bc (broadcast and keyed
// broadcast state).
import {
  BroadcastProcessFunction,
  DataGeneratorSource,
  FileSink,
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
  MapStateDescriptor,
  OutputTag,
  ProcessJoinFunction,
  RestartStrategies,
  StreamExecutionEnvironment,
  TumblingEventTimeWindows,
  ValueStateDescriptor,
  WatermarkStrategy,
  getJobArgs,
} from '@weir/api';
import type { Collector, MapState, StateBackendType, ValueState, WatermarkGenerator } from '@weir/api';
import {
  LOWER,
  RULE_COUNT,
  UPPER,
  WINDOW,
  endOf,
  left,
  periodEnd,
  right,
  rule,
  rulesFingerprint,
  watermarkFor,
  type Left,
  type Right,
} from './two-input-data.js';

const [records, rate, output, backend, parallelism, patterns] = getJobArgs();
const wanted = (name: string): boolean => !patterns || patterns.split(',').includes(name);
const n = Number(records);
const env = StreamExecutionEnvironment.getExecutionEnvironment();
env.setParallelism(Number(parallelism ?? 2));
env.enableCheckpointing(300);
if (backend) env.setStateBackend(backend as StateBackendType);
env.setRestartStrategy(RestartStrategies.fixedDelayRestart(10, 100));

/** Punctuated: the watermark depends only on the records seen, never on the clock. */
class SecondsWatermarks<T extends { ts: number }> implements WatermarkGenerator<T> {
  private maxTs = -Infinity;
  private last = -Infinity;
  onEvent(_e: T, ts: number, out: { emitWatermark(w: { timestamp: number }): void }): void {
    this.maxTs = Math.max(this.maxTs, ts);
    const wm = watermarkFor(this.maxTs);
    if (wm > this.last) {
      this.last = wm;
      out.emitWatermark({ timestamp: wm });
    }
  }
  onPeriodicEmit(): void {}
}
function strategy<T extends { ts: number }>(): WatermarkStrategy<T> {
  return WatermarkStrategy.forGenerator<T>(() => new SecondsWatermarks<T>()).withTimestampAssigner(
    (e) => e.ts,
  );
}
const sink = (dir: string): FileSink<unknown[]> =>
  new FileSink<unknown[]>({ path: `${output}/${dir}`, format: 'json' });

const lefts = env
  .fromSource(new DataGeneratorSource<Left>(left(n), n, Number(rate)), strategy<Left>(), 'Left')
  .setParallelism(1)
  .uid('left');
const rights = env
  .fromSource(new DataGeneratorSource<Right>(right, n, Number(rate)), strategy<Right>(), 'Right')
  .setParallelism(1)
  .uid('right');
const onTime = lefts.filter((l) => !l.late).uid('on-time');

// co-map
if (wanted('comap'))
  lefts
    .connect(rights)
    .map<unknown[]>({ map1: (l) => ['L', l.i], map2: (r) => ['R', r.j] })
    .uid('comap')
    .sinkTo(sink('comap'))
    .uid('comap-sink');

// keyed co-process: counts per key and period of both sides, reported by an event-time timer
class PeriodCounts extends KeyedCoProcessFunction<number, Left, Right, unknown[]> {
  private counts!: MapState<number, [number, number]>;
  override open(): void {
    this.counts = this.getRuntimeContext().getMapState(
      new MapStateDescriptor<number, [number, number]>('counts'),
    );
  }
  private add(ts: number, side: 0 | 1, ctx: KeyedCoProcessFunction.Context<number>): void {
    const end = periodEnd(ts);
    const c = this.counts.get(end) ?? [0, 0];
    c[side]++;
    this.counts.put(end, c);
    ctx.timerService().registerEventTimeTimer(end);
  }
  processElement1(l: Left, ctx: KeyedCoProcessFunction.Context<number>): void {
    this.add(ctx.timestamp()!, 0, ctx);
  }
  processElement2(r: Right, ctx: KeyedCoProcessFunction.Context<number>): void {
    this.add(ctx.timestamp()!, 1, ctx);
  }
  override onTimer(
    t: number,
    ctx: KeyedCoProcessFunction.OnTimerContext<number>,
    out: Collector<unknown[]>,
  ): void {
    const c = this.counts.get(t)!;
    this.counts.remove(t);
    out.collect(['co', ctx.getCurrentKey(), t, c[0], c[1]]);
  }
}
if (wanted('co'))
  onTime
    .connect(rights)
    .keyBy(
      (l) => l.key,
      (r) => r.key,
    )
    .process(new PeriodCounts())
    .uid('co-process')
    .sinkTo(sink('co'))
    .uid('co-sink');

// interval join with late left records to a side output
const lateLeft = new OutputTag<Left>('late-left');
class Pairs extends ProcessJoinFunction<Left, Right, unknown[]> {
  processElement(l: Left, r: Right, ctx: ProcessJoinFunction.Context, out: Collector<unknown[]>): void {
    out.collect(['ij', l.i, r.j, ctx.getTimestamp()]);
  }
}
if (wanted('ij')) {
  const joined = lefts
    .keyBy((l) => l.key)
    .intervalJoin(rights.keyBy((r) => r.key))
    .between(LOWER, UPPER)
    .sideOutputLeftLateData(lateLeft)
    .process(new Pairs())
    .uid('interval-join');
  joined.sinkTo(sink('ij')).uid('ij-sink');
  joined
    .getSideOutput(lateLeft)
    .map((l): unknown[] => ['late-left', l.i])
    .uid('late-map')
    .sinkTo(sink('late'))
    .uid('late-sink');
}

// window join and coGroup
if (wanted('join'))
  onTime
    .join(rights)
    .where((l) => l.key)
    .equalTo((r) => r.key)
    .window(TumblingEventTimeWindows.of(WINDOW))
    .apply((l, r): unknown[] => ['join', l.i, r.j])
    .uid('window-join')
    .sinkTo(sink('join'))
    .uid('join-sink');
if (wanted('cogroup'))
  onTime
    .coGroup(rights)
    .where((l) => l.key)
    .equalTo((r) => r.key)
    .window(TumblingEventTimeWindows.of(WINDOW))
    .apply((ls: Iterable<Left>, rs: Iterable<Right>, out: Collector<unknown[]>) => {
      const li = [...ls].map((l) => l.i);
      const rj = [...rs].map((r) => r.j);
      out.collect([
        'cg',
        li.length ? Math.min(...li) : -1,
        rj.length ? Math.min(...rj) : -1,
        li.length,
        rj.length,
      ]);
    })
    .uid('window-cogroup')
    .sinkTo(sink('cogroup'))
    .uid('cogroup-sink');

// broadcast state: rules to every subtask of a non-keyed and a keyed operator
const rulesDesc = new MapStateDescriptor<string, number>('rules');
const rules = env
  .fromSource(
    new DataGeneratorSource<[string, number]>(rule, RULE_COUNT, Math.max(1, Number(rate) / 150)),
    'Rules',
  )
  .setParallelism(1)
  .uid('rules')
  .broadcast(rulesDesc);
class RuleEcho extends BroadcastProcessFunction<Left, [string, number], unknown[]> {
  processElement(l: Left, ctx: BroadcastProcessFunction.ReadOnlyContext): void {
    ctx.getBroadcastState(rulesDesc).get('a');
  }
  processBroadcastElement(
    rule: [string, number],
    ctx: BroadcastProcessFunction.Context,
    out: Collector<unknown[]>,
  ): void {
    ctx.getBroadcastState(rulesDesc).put(rule[0], rule[1]);
    out.collect(['rule', rule[0], rule[1]]);
  }
}
const sumDesc = new ValueStateDescriptor<number>('sum');
class SumWithRules extends KeyedBroadcastProcessFunction<number, Left, [string, number], unknown[]> {
  private sum!: ValueState<number>;
  override open(): void {
    this.sum = this.getRuntimeContext().getState(sumDesc);
  }
  processElement(l: Left, ctx: KeyedBroadcastProcessFunction.ReadOnlyContext<number>): void {
    this.sum.update((this.sum.value() ?? 0) + l.i);
    ctx.timerService().registerEventTimeTimer(endOf(n));
  }
  processBroadcastElement(rule: [string, number], ctx: KeyedBroadcastProcessFunction.Context): void {
    ctx.getBroadcastState(rulesDesc).put(rule[0], rule[1]);
  }
  override onTimer(
    _t: number,
    ctx: KeyedBroadcastProcessFunction.OnTimerContext<number>,
    out: Collector<unknown[]>,
  ): void {
    out.collect([
      'kb',
      ctx.getCurrentKey(),
      this.sum.value(),
      rulesFingerprint(ctx.getBroadcastState(rulesDesc).entries()),
    ]);
  }
}
if (wanted('bc'))
  onTime
    .connect(rules)
    .process(new RuleEcho())
    .uid('broadcast')
    .union(
      onTime
        .keyBy((l) => l.key)
        .connect(rules)
        .process(new SumWithRules())
        .uid('keyed-broadcast'),
    )
    .sinkTo(sink('bc'))
    .uid('bc-sink');
await env.execute('two-input');
