import type { Collector, KeySelector } from './functions.js';
import { MapStateDescriptor } from './state.js';
import type { OperatorKind, Transformation } from './transformation.js';
import type { StreamExecutionEnvironment } from './environment.js';
import type { DataStream, KeyedStream, SingleOutputStreamOperator } from './datastream.js';
import { OutputTag } from './eventtime/output-tag.js';
import {
  BroadcastProcessFunction,
  KeyedBroadcastProcessFunction,
  KeyedCoProcessFunction,
  type CoProcessFunction,
  type ProcessJoinFunction,
  type CoFlatMapFunction,
  type CoGroupFunction,
  type CoMapFunction,
  type JoinFunction,
} from './eventtime/two-input-functions.js';
import { ProcessWindowFunction } from './windowing/process-window-function.js';
import type { WindowAssigner } from './windowing/assigners.js';
import type { Trigger } from './windowing/triggers.js';
import type { Evictor } from './windowing/evictors.js';
import type { Window } from './windowing/windows.js';

/** What a co-function operator calls per input: `process` (a CoProcessFunction), `map` or `flatMap`. */
export type CoFunctionKind = 'process' | 'map' | 'flatMap';

function hasMethods(fn: unknown, ...methods: string[]): boolean {
  return (
    typeof fn === 'object' &&
    fn !== null &&
    methods.every((m) => typeof (fn as Record<string, unknown>)[m] === 'function')
  );
}

/** Wraps a new transformation as a stream (given by datastream.ts, so the modules stay apart). */
export type OperatorWrapper = (t: Transformation) => SingleOutputStreamOperator<unknown>;

/** A KeyedStream (structurally: it has a key selector). */
function isKeyed(s: unknown): s is KeyedStream<unknown, unknown> {
  return typeof (s as { keySelector?: unknown }).keySelector === 'function';
}

function addTwoInput<R>(
  env: StreamExecutionEnvironment,
  wrap: OperatorWrapper,
  kind: OperatorKind,
  name: string,
  first: Transformation,
  second: Transformation,
  extra: Partial<Transformation>,
): SingleOutputStreamOperator<R> {
  const t = env.addTransformation({ kind, name, inputs: [first, second], ...extra });
  return wrap(t) as SingleOutputStreamOperator<R>;
}

/**
 * Two streams of possibly different types processed by one operator (Flink's
 * ConnectedStreams): `.map`/`.flatMap` with one function per input, `.process` with a
 * CoProcessFunction, or after `.keyBy(k1, k2)` (or when both inputs were keyed already) a
 * KeyedCoProcessFunction with keyed state and timers shared by both inputs.
 */
export class ConnectedStreams<IN1, IN2> {
  constructor(
    private readonly env: StreamExecutionEnvironment,
    readonly first: DataStream<IN1>,
    readonly second: DataStream<IN2>,
    private readonly wrap: OperatorWrapper,
  ) {}

  private get keyed(): boolean {
    return isKeyed(this.first) && isKeyed(this.second);
  }

  /** Partitions both inputs by key, so records of equal keys meet in one subtask. */
  keyBy<K>(key1: KeySelector<IN1, K>, key2: KeySelector<IN2, K>): ConnectedStreams<IN1, IN2> {
    if (typeof key1 !== 'function' || typeof key2 !== 'function')
      throw new Error('ConnectedStreams.keyBy() needs two key selector functions, one per input');
    return new ConnectedStreams(
      this.env,
      this.first.keyBy(key1) as unknown as DataStream<IN1>,
      this.second.keyBy(key2) as unknown as DataStream<IN2>,
      this.wrap,
    );
  }

  map<R>(fn: CoMapFunction<IN1, IN2, R>): SingleOutputStreamOperator<R> {
    if (!hasMethods(fn, 'map1', 'map2'))
      throw new Error('ConnectedStreams.map() needs a CoMapFunction: an object with map1(v) and map2(v)');
    return this.add<R>('Co-Map', fn, 'map');
  }

  flatMap<R>(fn: CoFlatMapFunction<IN1, IN2, R>): SingleOutputStreamOperator<R> {
    if (!hasMethods(fn, 'flatMap1', 'flatMap2'))
      throw new Error(
        'ConnectedStreams.flatMap() needs a CoFlatMapFunction: an object with flatMap1(v, out) and flatMap2(v, out)',
      );
    return this.add<R>('Co-Flat Map', fn, 'flatMap');
  }

  process<R>(
    fn: CoProcessFunction<IN1, IN2, R> | KeyedCoProcessFunction<unknown, IN1, IN2, R>,
  ): SingleOutputStreamOperator<R> {
    if (!hasMethods(fn, 'processElement1', 'processElement2'))
      throw new Error(
        'ConnectedStreams.process() needs a CoProcessFunction or KeyedCoProcessFunction (processElement1 and processElement2)',
      );
    if (fn instanceof KeyedCoProcessFunction && !this.keyed)
      throw new Error(
        `'Co-Process' got a KeyedCoProcessFunction (${fn.constructor.name}) on streams that are not keyed: call connect(...).keyBy(key1, key2) first`,
      );
    if (!this.keyed && typeof (fn as { onTimer?: unknown }).onTimer === 'function')
      throw new Error(
        `'Co-Process' got a function with onTimer (${fn.constructor.name}); timers need keyed inputs: connect(...).keyBy(key1, key2).process(...)`,
      );
    return this.add<R>(this.keyed ? 'KeyedCoProcess' : 'Co-Process', fn, 'process');
  }

  private add<R>(name: string, fn: unknown, coFunction: CoFunctionKind): SingleOutputStreamOperator<R> {
    const keyed = this.keyed;
    const extra: Partial<Transformation> = { fn, coFunction };
    if (keyed) {
      extra.keySelector = (this.first as unknown as KeyedStream<IN1, unknown>).keySelector as KeySelector<
        unknown,
        unknown
      >;
      extra.keySelector2 = (this.second as unknown as KeyedStream<IN2, unknown>).keySelector as KeySelector<
        unknown,
        unknown
      >;
    }
    return addTwoInput<R>(
      this.env,
      this.wrap,
      keyed ? 'keyedCoProcess' : 'coProcess',
      name,
      this.first.transformation,
      this.second.transformation,
      extra,
    );
  }
}

/**
 * A stream sent to every subtask of the operator it is connected to, with the broadcast
 * states (map state) that operator keeps (Flink's BroadcastStream).
 */
export class BroadcastStream<T> {
  declare readonly __type?: T;
  constructor(
    /** @internal */ readonly stream: DataStream<T>,
    readonly descriptors: MapStateDescriptor<unknown, unknown>[],
  ) {
    if (descriptors.length === 0)
      throw new Error(
        'A BroadcastStream needs at least one MapStateDescriptor: stream.broadcast(new MapStateDescriptor("rules"))',
      );
    const names = new Set<string>();
    for (const d of descriptors) {
      if (!(d instanceof MapStateDescriptor))
        throw new Error(
          `broadcast() takes MapStateDescriptors (the broadcast state), got ${String((d as object)?.constructor?.name ?? d)}`,
        );
      if (names.has(d.name)) throw new Error(`broadcast() got two MapStateDescriptors named '${d.name}'`);
      names.add(d.name);
    }
  }
}

/** A (keyed or non-keyed) stream connected with a BroadcastStream (Flink's BroadcastConnectedStream). */
export class BroadcastConnectedStream<IN1, IN2> {
  constructor(
    private readonly env: StreamExecutionEnvironment,
    readonly first: DataStream<IN1>,
    readonly broadcast: BroadcastStream<IN2>,
    private readonly wrap: OperatorWrapper,
  ) {}

  process<R>(
    fn: BroadcastProcessFunction<IN1, IN2, R> | KeyedBroadcastProcessFunction<unknown, IN1, IN2, R>,
  ): SingleOutputStreamOperator<R> {
    const keyed = isKeyed(this.first);
    if (!hasMethods(fn, 'processElement', 'processBroadcastElement'))
      throw new Error(
        'process() on a broadcast-connected stream needs a BroadcastProcessFunction or KeyedBroadcastProcessFunction (processElement and processBroadcastElement)',
      );
    if (keyed && fn instanceof BroadcastProcessFunction)
      throw new Error(
        `'KeyedBroadcastProcess' got a BroadcastProcessFunction (${fn.constructor.name}) on a keyed stream: use a KeyedBroadcastProcessFunction`,
      );
    if (!keyed && fn instanceof KeyedBroadcastProcessFunction)
      throw new Error(
        `'BroadcastProcess' got a KeyedBroadcastProcessFunction (${fn.constructor.name}) on a stream that is not keyed: call keyBy(...) before connect(broadcastStream)`,
      );
    const extra: Partial<Transformation> = {
      fn,
      broadcastStateNames: this.broadcast.descriptors.map((d) => d.name),
    };
    if (keyed)
      extra.keySelector = (this.first as unknown as KeyedStream<IN1, unknown>).keySelector as KeySelector<
        unknown,
        unknown
      >;
    return addTwoInput<R>(
      this.env,
      this.wrap,
      keyed ? 'keyedBroadcastProcess' : 'broadcastProcess',
      keyed ? 'KeyedBroadcastProcess' : 'BroadcastProcess',
      this.first.transformation,
      this.broadcast.stream.broadcast().transformation,
      extra,
    );
  }
}

function requireBound(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(
      `intervalJoin().between(): the ${what} must be a finite number of milliseconds, got ${String(v)}`,
    );
  return v;
}

/** `left.keyBy(k).intervalJoin(right.keyBy(k))`: give the interval with `between`. */
export class IntervalJoin<L, R, K> {
  constructor(
    private readonly left: KeyedStream<L, K>,
    private readonly right: KeyedStream<R, K>,
    private readonly wrap: OperatorWrapper,
  ) {}

  /** Joins `l` with every `r` whose timestamp lies in [l.ts + lower, l.ts + upper]. */
  between(lowerBound: number, upperBound: number): IntervalJoined<L, R, K> {
    const lo = requireBound('lower bound', lowerBound);
    const hi = requireBound('upper bound', upperBound);
    if (lo > hi)
      throw new Error(
        `intervalJoin().between(${lo}, ${hi}): the lower bound must not be above the upper bound`,
      );
    return new IntervalJoined(this.left, this.right, lo, hi, this.wrap);
  }
}

/** An interval join with its bounds; `process` adds the join operator (Flink's IntervalJoined). */
export class IntervalJoined<L, R, K> {
  private lowerExclusive = false;
  private upperExclusive = false;
  private leftLate: OutputTag<L> | undefined;
  private rightLate: OutputTag<R> | undefined;

  constructor(
    private readonly left: KeyedStream<L, K>,
    private readonly right: KeyedStream<R, K>,
    private readonly lower: number,
    private readonly upper: number,
    private readonly wrap: OperatorWrapper,
  ) {}

  lowerBoundExclusive(): this {
    this.lowerExclusive = true;
    return this;
  }

  upperBoundExclusive(): this {
    this.upperExclusive = true;
    return this;
  }

  /** Left records behind the watermark go to `tag` instead of being dropped. */
  sideOutputLeftLateData(tag: OutputTag<L>): this {
    if (!(tag instanceof OutputTag)) throw new Error('sideOutputLeftLateData() needs an OutputTag');
    this.leftLate = tag;
    return this;
  }

  sideOutputRightLateData(tag: OutputTag<R>): this {
    if (!(tag instanceof OutputTag)) throw new Error('sideOutputRightLateData() needs an OutputTag');
    this.rightLate = tag;
    return this;
  }

  process<OUT>(fn: ProcessJoinFunction<L, R, OUT>): SingleOutputStreamOperator<OUT> {
    if (!hasMethods(fn, 'processElement'))
      throw new Error(
        'IntervalJoined.process() needs a ProcessJoinFunction (processElement(left, right, ctx, out))',
      );
    const lo = this.lowerExclusive ? this.lower + 1 : this.lower;
    const hi = this.upperExclusive ? this.upper - 1 : this.upper;
    if (lo > hi)
      throw new Error(
        `intervalJoin().between(${this.lower}, ${this.upper}) is empty with exclusive bounds; widen the interval`,
      );
    return addTwoInput<OUT>(
      this.left.getExecutionEnvironment(),
      this.wrap,
      'intervalJoin',
      'IntervalJoin',
      this.left.transformation,
      this.right.transformation,
      {
        fn,
        keySelector: this.left.keySelector as KeySelector<unknown, unknown>,
        keySelector2: this.right.keySelector as KeySelector<unknown, unknown>,
        intervalJoin: {
          lowerBound: this.lower,
          upperBound: this.upper,
          lowerBoundExclusive: this.lowerExclusive,
          upperBoundExclusive: this.upperExclusive,
          ...(this.leftLate ? { leftLateDataOutputTag: this.leftLate as OutputTag<unknown> } : {}),
          ...(this.rightLate ? { rightLateDataOutputTag: this.rightLate as OutputTag<unknown> } : {}),
        },
      },
    );
  }
}

/** A record of a window join or coGroup on its way into the window: which side it came from. */
type Tagged = { s: 0 | 1; v: unknown };

/** Calls a CoGroupFunction with both sides' elements of one key and window. */
class CoGroupWindowFunction extends ProcessWindowFunction<Tagged, unknown, unknown, Window> {
  constructor(private readonly fn: CoGroupFunction<unknown, unknown, unknown>) {
    super();
  }
  process(_key: unknown, _ctx: unknown, elements: Iterable<Tagged>, out: Collector<unknown>): void {
    const first: unknown[] = [];
    const second: unknown[] = [];
    for (const e of elements) (e.s === 0 ? first : second).push(e.v);
    this.fn(first, second, out);
  }
}

/**
 * `a.join(b)` / `a.coGroup(b)` (Flink's JoinedStreams and CoGroupedStreams): both sides are
 * tagged, unioned, keyed by their own key selector and windowed; the window function sees
 * the two sides of one key and window. `where`, `equalTo`, `window`, then `apply`.
 */
abstract class WindowedTwoStreams<L, R> {
  private keyL: KeySelector<L, unknown> | undefined;
  private keyR: KeySelector<R, unknown> | undefined;
  private assigner: WindowAssigner<unknown, Window> | undefined;
  private trig: Trigger<unknown, Window> | undefined;
  private evict: Evictor<unknown, Window> | undefined;
  private lateness = 0;

  constructor(
    private readonly left: DataStream<L>,
    private readonly right: DataStream<R>,
    private readonly join: boolean,
  ) {}

  protected requireFunction(fn: unknown): void {
    if (typeof fn !== 'function') throw new Error(`${this.what}.apply() needs a function`);
  }

  private get what(): string {
    return this.join ? 'join()' : 'coGroup()';
  }

  where<K>(key: KeySelector<L, K>): this {
    if (typeof key !== 'function') throw new Error(`${this.what}.where() needs a key selector function`);
    this.keyL = key;
    return this;
  }

  equalTo<K>(key: KeySelector<R, K>): this {
    if (!this.keyL) throw new Error(`${this.what}: call where(key) before equalTo(key)`);
    if (typeof key !== 'function') throw new Error(`${this.what}.equalTo() needs a key selector function`);
    this.keyR = key;
    return this;
  }

  window<W extends Window>(assigner: WindowAssigner<unknown, W>): this {
    if (!this.keyR) throw new Error(`${this.what}: call where(key).equalTo(key) before window(assigner)`);
    this.assigner = assigner as WindowAssigner<unknown, Window>;
    return this;
  }

  trigger<W extends Window>(trigger: Trigger<unknown, W>): this {
    this.trig = trigger as unknown as Trigger<unknown, Window>;
    return this;
  }

  evictor<W extends Window>(evictor: Evictor<unknown, W>): this {
    this.evict = evictor as unknown as Evictor<unknown, Window>;
    return this;
  }

  allowedLateness(ms: number): this {
    this.lateness = ms;
    return this;
  }

  /** Adds the tagged union, keyBy and window; `coGroup` sees both sides of one key and window. */
  protected build<OUT>(coGroup: CoGroupFunction<unknown, unknown, unknown>): SingleOutputStreamOperator<OUT> {
    if (!this.assigner) throw new Error(`${this.what}: call window(assigner) before apply(fn)`);
    const keyL = this.keyL!;
    const keyR = this.keyR!;
    const tagged = this.left
      .map((v): Tagged => ({ s: 0, v }))
      .name(`${this.join ? 'Join' : 'CoGroup'}: left`)
      .union(this.right.map((v): Tagged => ({ s: 1, v })).name(`${this.join ? 'Join' : 'CoGroup'}: right`));
    let windowed = tagged
      .keyBy((t) => (t.s === 0 ? keyL(t.v as L) : keyR(t.v as R)))
      .window(this.assigner)
      .allowedLateness(this.lateness);
    if (this.trig) windowed = windowed.trigger(this.trig);
    if (this.evict) windowed = windowed.evictor(this.evict);
    return windowed
      .process(new CoGroupWindowFunction(coGroup))
      .name(this.join ? 'Window Join' : 'Window CoGroup') as SingleOutputStreamOperator<OUT>;
  }
}

/** `a.join(b).where(ka).equalTo(kb).window(assigner).apply((l, r) => out)`: every pair of one key and window. */
export class JoinedStreams<L, R> extends WindowedTwoStreams<L, R> {
  constructor(left: DataStream<L>, right: DataStream<R>) {
    super(left, right, true);
  }

  apply<OUT>(fn: JoinFunction<L, R, OUT>): SingleOutputStreamOperator<OUT> {
    this.requireFunction(fn);
    const join = fn as JoinFunction<unknown, unknown, OUT>;
    return this.build<OUT>((first, second, out) => {
      for (const l of first) for (const r of second) out.collect(join(l, r));
    });
  }
}

/** `a.coGroup(b).where(ka).equalTo(kb).window(assigner).apply((ls, rs, out) => ...)`: once per key and window. */
export class CoGroupedStreams<L, R> extends WindowedTwoStreams<L, R> {
  constructor(left: DataStream<L>, right: DataStream<R>) {
    super(left, right, false);
  }

  apply<OUT>(fn: CoGroupFunction<L, R, OUT>): SingleOutputStreamOperator<OUT> {
    this.requireFunction(fn);
    return this.build<OUT>(fn as CoGroupFunction<unknown, unknown, unknown>);
  }
}
