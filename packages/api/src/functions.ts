import type { RuntimeContext } from './runtime-context.js';
import type { KeyedTimerContext, OnTimerContext, TimestampedContext } from './eventtime/contexts.js';

/** Receives the records an operator emits; the next operator in a chain or the network. */
export interface Collector<T> {
  collect(record: T): void;
}

export type MapFunction<IN, OUT> = (value: IN) => OUT;
export type FlatMapFunction<IN, OUT> = (value: IN, out: Collector<OUT>) => void;
export type FilterFunction<T> = (value: T) => boolean;
export type ReduceFunction<T> = (a: T, b: T) => T;
export type KeySelector<T, K> = (value: T) => K;

/**
 * Base of functions that need a lifecycle or state. The runtime sets the context before
 * `open()`, once per parallel instance, so each subtask has its own function object.
 */
export abstract class AbstractRichFunction {
  private runtimeContext: RuntimeContext | undefined;

  /** @internal called by the runtime */
  setRuntimeContext(ctx: RuntimeContext): void {
    this.runtimeContext = ctx;
  }

  getRuntimeContext(): RuntimeContext {
    if (!this.runtimeContext) {
      throw new Error(
        'The runtime context is only available once the function is running (in open() or later)',
      );
    }
    return this.runtimeContext;
  }

  open(): void | Promise<void> {}
  close(): void | Promise<void> {}
}

export abstract class RichMapFunction<IN, OUT> extends AbstractRichFunction {
  abstract map(value: IN): OUT;
}

export abstract class RichFlatMapFunction<IN, OUT> extends AbstractRichFunction {
  abstract flatMap(value: IN, out: Collector<OUT>): void;
}

export abstract class RichFilterFunction<T> extends AbstractRichFunction {
  abstract filter(value: T): boolean;
}

export abstract class ProcessFunction<IN, OUT> extends AbstractRichFunction {
  abstract processElement(value: IN, ctx: ProcessFunction.Context, out: Collector<OUT>): void;
}

export namespace ProcessFunction {
  export interface Context extends TimestampedContext {
    /** Processing time in milliseconds since the epoch. */
    currentProcessingTime(): number;
  }
}

/**
 * A function on a keyed stream with timers (Flink's KeyedProcessFunction): `ctx.timerService()`
 * registers event-time and processing-time timers of the current key; `onTimer` runs when one
 * fires, with that key current. Records emitted in `onTimer` carry the timer's timestamp
 * (event time) or none (processing time).
 */
export abstract class KeyedProcessFunction<K, IN, OUT> extends AbstractRichFunction {
  abstract processElement(value: IN, ctx: KeyedProcessFunction.Context<K>, out: Collector<OUT>): void;
  onTimer?(timestamp: number, ctx: KeyedProcessFunction.OnTimerContext<K>, out: Collector<OUT>): void;
}

export namespace KeyedProcessFunction {
  export interface Context<K> extends ProcessFunction.Context, KeyedTimerContext<K> {
    getCurrentKey(): K;
  }
  export type OnTimerContext<K> = Context<K> & OnTimerContext_<K>;
}
type OnTimerContext_<K> = OnTimerContext<K>;

export type MapLike<IN, OUT> = MapFunction<IN, OUT> | RichMapFunction<IN, OUT>;
export type FlatMapLike<IN, OUT> = FlatMapFunction<IN, OUT> | RichFlatMapFunction<IN, OUT>;
export type FilterLike<T> = FilterFunction<T> | RichFilterFunction<T>;
