import type { KeySelector, ReduceFunction } from '../functions.js';
import type { AggregateFunction } from '../state.js';
import type { OutputTag } from '../eventtime/output-tag.js';
import type { SingleOutputStreamOperator, KeyedStream } from '../datastream.js';
import type { WindowSpec } from '../transformation.js';
import type { WindowAssigner } from './assigners.js';
import type { Evictor } from './evictors.js';
import type { ProcessWindowFunction } from './process-window-function.js';
import type { Trigger } from './triggers.js';
import type { Window } from './windows.js';

/** What a WindowedStream needs from the stream it windows (kept small so the modules stay apart). */
export interface WindowedInput<T, K> {
  readonly stream: KeyedStream<T, K>;
  /** adds the window node; `name` as Flink names it ("Window(...)") */
  addWindow<R>(
    spec: WindowSpec,
    name: string,
    keySelector: KeySelector<unknown, unknown>,
  ): SingleOutputStreamOperator<R>;
  readonly keySelector: KeySelector<unknown, unknown>;
  /** windowAll: the window runs as one subtask */
  readonly all: boolean;
}

function requireDuration(what: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
    throw new Error(`${what} must be a finite number of milliseconds >= 0, got ${String(ms)}`);
  return ms;
}

/**
 * A keyed stream cut into windows (Flink's WindowedStream): set the trigger, evictor,
 * allowed lateness and late-data side output, then give the window function with
 * `reduce`, `aggregate` or `process`, which adds the window operator.
 */
export class WindowedStream<T, K, W extends Window> {
  private readonly spec: WindowSpec;

  constructor(
    private readonly input: WindowedInput<T, K>,
    assigner: WindowAssigner<T, W>,
  ) {
    if (!assigner || typeof (assigner as { assignWindows?: unknown }).assignWindows !== 'function') {
      throw new Error(
        'window() needs a WindowAssigner, e.g. TumblingEventTimeWindows.of(60_000) or EventTimeSessionWindows.withGap(30_000)',
      );
    }
    this.spec = { assigner: assigner as WindowAssigner<unknown, Window>, allowedLateness: 0 };
  }

  trigger(trigger: Trigger<T, W>): this {
    if (!trigger || typeof (trigger as { onElement?: unknown }).onElement !== 'function')
      throw new Error('trigger() needs a Trigger, e.g. CountTrigger.of(100)');
    this.spec.trigger = trigger as unknown as Trigger<unknown, Window>;
    return this;
  }

  evictor(evictor: Evictor<T, W>): this {
    if (!evictor || typeof (evictor as { evictBefore?: unknown }).evictBefore !== 'function')
      throw new Error('evictor() needs an Evictor, e.g. CountEvictor.of(10)');
    this.spec.evictor = evictor as unknown as Evictor<unknown, Window>;
    return this;
  }

  /** Records up to `ms` behind the watermark still update their windows (event time only). */
  allowedLateness(ms: number): this {
    this.spec.allowedLateness = requireDuration(`allowedLateness of ${this.describe()}`, ms);
    return this;
  }

  /** Records too late for their windows go to this side output instead of being dropped. */
  sideOutputLateData(tag: OutputTag<T>): this {
    if (!tag || typeof (tag as { id?: unknown }).id !== 'string')
      throw new Error('sideOutputLateData() needs an OutputTag, e.g. new OutputTag<Event>("late")');
    this.spec.lateDataOutputTag = tag as OutputTag<unknown>;
    return this;
  }

  /** Pre-aggregates each window with `fn`; `windowFn`, if given, sees the one result when the window fires. */
  reduce<R = T>(
    fn: ReduceFunction<T>,
    windowFn?: ProcessWindowFunction<T, R, K, W>,
  ): SingleOutputStreamOperator<R> {
    if (typeof fn !== 'function')
      throw new Error(`reduce() of ${this.describe()} needs a function (a, b) => c`);
    this.spec.reduce = fn as ReduceFunction<unknown>;
    return this.build<R>('Reduce', windowFn);
  }

  aggregate<ACC, V, R = V>(
    fn: AggregateFunction<T, ACC, V>,
    windowFn?: ProcessWindowFunction<V, R, K, W>,
  ): SingleOutputStreamOperator<R> {
    for (const m of ['createAccumulator', 'add', 'getResult'] as const) {
      if (typeof (fn as unknown as Record<string, unknown>)?.[m] !== 'function')
        throw new Error(`aggregate() of ${this.describe()} needs an AggregateFunction; ${m}() is missing`);
    }
    this.spec.aggregate = fn as unknown as AggregateFunction<unknown, unknown, unknown>;
    return this.build<R>('Aggregate', windowFn);
  }

  /** Evaluates each fired window with all its elements. */
  process<R>(fn: ProcessWindowFunction<T, R, K, W>): SingleOutputStreamOperator<R> {
    return this.build<R>('Process', fn);
  }

  private build<R>(what: string, windowFn: unknown): SingleOutputStreamOperator<R> {
    if (windowFn !== undefined) {
      if (typeof (windowFn as { process?: unknown })?.process !== 'function')
        throw new Error(
          `The window function of ${this.describe()} needs a process(key, context, elements, out) method`,
        );
      this.spec.process = windowFn as NonNullable<WindowSpec['process']>;
    }
    const name = `${this.input.all ? 'WindowAll' : 'Window'}(${this.spec.assigner.toString()}, ${what})`;
    return this.input.addWindow<R>({ ...this.spec }, name, this.input.keySelector);
  }

  private describe(): string {
    return `window(${this.spec.assigner.toString()})`;
  }
}
