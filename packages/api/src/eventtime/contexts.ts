import type { Collector } from '../functions.js';
import type { OutputTag } from './output-tag.js';
import type { TimeDomain, TimerService } from './timer-service.js';

/**
 * What event time adds to the context of every process function: the record's timestamp
 * and side outputs. `ProcessFunction.Context` extends this when the runtime is wired.
 */
export interface TimestampedContext {
  /** the timestamp of the record being processed, or of the timer firing; undefined without one */
  timestamp(): number | undefined;
  output<X>(outputTag: OutputTag<X>, value: X): void;
}

/** What `KeyedProcessFunction.Context` gains: timers of the current key. */
export interface KeyedTimerContext<K> extends TimestampedContext {
  currentProcessingTime(): number;
  timerService(): TimerService;
  getCurrentKey(): K;
}

/** The context of `onTimer`: which clock fired and for which key. */
export interface OnTimerContext<K> extends KeyedTimerContext<K> {
  timeDomain(): TimeDomain;
}

/**
 * The timer callback a KeyedProcessFunction (and the keyed two-input functions) may define:
 * `timestamp` is the timer's time; records emitted here carry it as their timestamp.
 */
export interface TimerCallback<K, OUT> {
  onTimer(timestamp: number, ctx: OnTimerContext<K>, out: Collector<OUT>): void;
}
