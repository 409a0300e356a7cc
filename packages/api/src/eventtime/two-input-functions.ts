import { AbstractRichFunction, type Collector } from '../functions.js';
import type { MapState, MapStateDescriptor, State, StateDescriptor } from '../state.js';
import type { TimestampedContext } from './contexts.js';
import type { OutputTag } from './output-tag.js';
import type { TimeDomain, TimerService } from './timer-service.js';

/** Maps the two inputs of connected streams to one output type. */
export interface CoMapFunction<IN1, IN2, OUT> {
  map1(value: IN1): OUT;
  map2(value: IN2): OUT;
}

export interface CoFlatMapFunction<IN1, IN2, OUT> {
  flatMap1(value: IN1, out: Collector<OUT>): void;
  flatMap2(value: IN2, out: Collector<OUT>): void;
}

/** `a.join(b)...window(...).apply(fn)`: called for every pair of one window with equal keys. */
export type JoinFunction<IN1, IN2, OUT> = (first: IN1, second: IN2) => OUT;

/** `a.coGroup(b)...window(...).apply(fn)`: both sides' elements of one key and window; either may be empty. */
export type CoGroupFunction<IN1, IN2, OUT> = (
  first: Iterable<IN1>,
  second: Iterable<IN2>,
  out: Collector<OUT>,
) => void;

/** Processes the two inputs of `a.connect(b).process(...)` (Flink's CoProcessFunction). */
export abstract class CoProcessFunction<IN1, IN2, OUT> extends AbstractRichFunction {
  abstract processElement1(value: IN1, ctx: CoProcessFunction.Context, out: Collector<OUT>): void;
  abstract processElement2(value: IN2, ctx: CoProcessFunction.Context, out: Collector<OUT>): void;
  /** Timers need keyed inputs (`connect(...).keyBy(...)`); a non-keyed registration fails with an error. */
  onTimer?(timestamp: number, ctx: CoProcessFunction.OnTimerContext, out: Collector<OUT>): void;
}

export namespace CoProcessFunction {
  export interface Context extends TimestampedContext {
    timerService(): TimerService;
  }
  export interface OnTimerContext extends Context {
    timeDomain(): TimeDomain;
  }
}

/** Processes two keyed inputs connected by equal keys, with timers per key (Flink's KeyedCoProcessFunction). */
export abstract class KeyedCoProcessFunction<K, IN1, IN2, OUT> extends AbstractRichFunction {
  abstract processElement1(value: IN1, ctx: KeyedCoProcessFunction.Context<K>, out: Collector<OUT>): void;
  abstract processElement2(value: IN2, ctx: KeyedCoProcessFunction.Context<K>, out: Collector<OUT>): void;
  onTimer?(timestamp: number, ctx: KeyedCoProcessFunction.OnTimerContext<K>, out: Collector<OUT>): void;
}

export namespace KeyedCoProcessFunction {
  export interface Context<K> extends TimestampedContext {
    timerService(): TimerService;
    getCurrentKey(): K;
  }
  export interface OnTimerContext<K> extends Context<K> {
    timeDomain(): TimeDomain;
  }
}

/**
 * Called for each pair of an interval join (`a.keyBy(k).intervalJoin(b.keyBy(k)).between(lower,
 * upper)`): `right.ts` lies in [left.ts + lower, left.ts + upper]. The output carries the larger
 * of the two timestamps.
 */
export abstract class ProcessJoinFunction<IN1, IN2, OUT> extends AbstractRichFunction {
  abstract processElement(left: IN1, right: IN2, ctx: ProcessJoinFunction.Context, out: Collector<OUT>): void;
}

export namespace ProcessJoinFunction {
  export interface Context {
    getLeftTimestamp(): number;
    getRightTimestamp(): number;
    /** max(left, right): the timestamp of the records emitted now */
    getTimestamp(): number;
    output<X>(outputTag: OutputTag<X>, value: X): void;
  }
}

/** Read access to broadcast state from the non-broadcast side: every subtask must see the same state. */
export interface ReadOnlyBroadcastState<K, V> {
  get(key: K): V | undefined;
  contains(key: K): boolean;
  entries(): Iterable<[K, V]>;
  isEmpty(): boolean;
}

/** Broadcast state: a map the broadcast side writes, kept identical on every subtask and checkpointed. */
export type BroadcastState<K, V> = MapState<K, V>;

/**
 * Processes a non-keyed stream connected with a broadcast stream (Flink's
 * BroadcastProcessFunction): the broadcast side writes broadcast state, the other side reads it.
 */
export abstract class BroadcastProcessFunction<IN1, IN2, OUT> extends AbstractRichFunction {
  abstract processElement(
    value: IN1,
    ctx: BroadcastProcessFunction.ReadOnlyContext,
    out: Collector<OUT>,
  ): void;
  abstract processBroadcastElement(
    value: IN2,
    ctx: BroadcastProcessFunction.Context,
    out: Collector<OUT>,
  ): void;
}

export namespace BroadcastProcessFunction {
  export interface ReadOnlyContext extends TimestampedContext {
    currentProcessingTime(): number;
    currentWatermark(): number;
    getBroadcastState<K, V>(descriptor: MapStateDescriptor<K, V>): ReadOnlyBroadcastState<K, V>;
  }
  export interface Context extends TimestampedContext {
    currentProcessingTime(): number;
    currentWatermark(): number;
    getBroadcastState<K, V>(descriptor: MapStateDescriptor<K, V>): BroadcastState<K, V>;
  }
}

/**
 * Processes a keyed stream connected with a broadcast stream (Flink's
 * KeyedBroadcastProcessFunction): keyed state and timers on the keyed side, and
 * `applyToKeyedState` lets a broadcast element visit the keyed state of every key.
 */
export abstract class KeyedBroadcastProcessFunction<KS, IN1, IN2, OUT> extends AbstractRichFunction {
  abstract processElement(
    value: IN1,
    ctx: KeyedBroadcastProcessFunction.ReadOnlyContext<KS>,
    out: Collector<OUT>,
  ): void;
  abstract processBroadcastElement(
    value: IN2,
    ctx: KeyedBroadcastProcessFunction.Context,
    out: Collector<OUT>,
  ): void;
  onTimer?(
    timestamp: number,
    ctx: KeyedBroadcastProcessFunction.OnTimerContext<KS>,
    out: Collector<OUT>,
  ): void;
}

export namespace KeyedBroadcastProcessFunction {
  export interface ReadOnlyContext<KS> extends BroadcastProcessFunction.ReadOnlyContext {
    timerService(): TimerService;
    getCurrentKey(): KS;
  }
  export interface Context extends BroadcastProcessFunction.Context {
    /** Runs `fn` for every key that has state in `descriptor`, with that key's state. */
    applyToKeyedState<S extends State>(
      descriptor: StateDescriptor<S>,
      fn: (key: unknown, state: S) => void,
    ): void;
  }
  export interface OnTimerContext<KS> extends ReadOnlyContext<KS> {
    timeDomain(): TimeDomain;
  }
}
