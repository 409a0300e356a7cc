import type { Trigger } from './triggers.js';
import { EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger } from './triggers.js';
import type { Window, WindowSerializer } from './windows.js';
import { GlobalWindow, TimeWindow } from './windows.js';

/** What an assigner may read while it assigns a record. */
export interface WindowAssignerContext {
  getCurrentProcessingTime(): number;
}

/**
 * Puts each record into zero or more windows (Flink's WindowAssigner) and names the trigger
 * that fires them unless `.trigger()` sets another.
 */
export abstract class WindowAssigner<T, W extends Window> {
  abstract assignWindows(element: T, timestamp: number | undefined, context: WindowAssignerContext): W[];
  abstract getDefaultTrigger(): Trigger<T, W>;
  abstract getWindowSerializer(): WindowSerializer<W>;
  /** Event-time windows end by the watermark and know late records; processing-time ones by the clock. */
  abstract isEventTime(): boolean;

  toString(): string {
    return this.constructor.name;
  }
}

/** Assigners whose windows can grow together (sessions). */
export abstract class MergingWindowAssigner<T, W extends Window> extends WindowAssigner<T, W> {
  /** Reports each group of windows that must become one, with the window they become. */
  abstract mergeWindows(windows: Iterable<W>, callback: (toBeMerged: W[], mergeResult: W) => void): void;
}

export function isMergingAssigner<T, W extends Window>(
  assigner: WindowAssigner<T, W>,
): assigner is MergingWindowAssigner<T, W> {
  // session assigners share a base with the non-merging time windows, so ask for the method
  return typeof (assigner as Partial<MergingWindowAssigner<T, W>>).mergeWindows === 'function';
}

function requirePositive(assigner: string, what: string, ms: number): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new Error(
      `${assigner}: the ${what} must be a finite number of milliseconds > 0, got ${String(ms)}`,
    );
  }
}

function requireOffset(assigner: string, offset: number, bound: number, boundName: string): void {
  if (typeof offset !== 'number' || !Number.isFinite(offset) || Math.abs(offset) >= bound) {
    throw new Error(
      `${assigner}: the offset must be a finite number of milliseconds with |offset| < ${boundName} (${bound}), got ${String(offset)}`,
    );
  }
}

function eventTimestamp(assigner: string, timestamp: number | undefined): number {
  if (timestamp === undefined) {
    throw new Error(
      `${assigner} got a record without a timestamp: call assignTimestampsAndWatermarks(...) or use a source with a WatermarkStrategy before an event-time window`,
    );
  }
  return timestamp;
}

function tumble(timestamp: number, size: number, offset: number): TimeWindow[] {
  const start = TimeWindow.getWindowStartWithOffset(timestamp, offset, size);
  return [new TimeWindow(start, start + size)];
}

function slide(timestamp: number, size: number, slideMs: number, offset: number): TimeWindow[] {
  const windows: TimeWindow[] = [];
  const lastStart = TimeWindow.getWindowStartWithOffset(timestamp, offset, slideMs);
  for (let start = lastStart; start > timestamp - size; start -= slideMs) {
    windows.push(new TimeWindow(start, start + size));
  }
  return windows;
}

/**
 * The time windows of one domain: event time (the record's timestamp, fired by the watermark)
 * or processing time (the clock, fired by it). The six public assigners differ only in that.
 */
abstract class TimeWindowAssigner extends WindowAssigner<unknown, TimeWindow> {
  protected constructor(
    /** the public class name, for messages (bundlers may rename classes) */
    protected readonly name: string,
    private readonly eventTime: boolean,
  ) {
    super();
  }

  /** The time a record is windowed by, in this assigner's domain. */
  protected timeOf(timestamp: number | undefined, ctx: WindowAssignerContext | undefined): number {
    if (this.eventTime) return eventTimestamp(this.name, timestamp);
    if (!ctx) throw new Error(`${this.name} needs the processing-time context to assign a window`);
    return ctx.getCurrentProcessingTime();
  }

  getDefaultTrigger(): Trigger<unknown, TimeWindow> {
    return this.eventTime ? EventTimeTrigger.create() : ProcessingTimeTrigger.create();
  }

  getWindowSerializer(): WindowSerializer<TimeWindow> {
    return TimeWindow.serializer;
  }

  isEventTime(): boolean {
    return this.eventTime;
  }
}

/** Fixed-size, non-overlapping windows [k*size + offset, (k+1)*size + offset). */
abstract class TumblingTimeWindows extends TimeWindowAssigner {
  protected constructor(
    name: string,
    eventTime: boolean,
    readonly size: number,
    readonly offset: number,
  ) {
    super(name, eventTime);
    requirePositive(this.name, 'size', size);
    requireOffset(this.name, offset, size, 'size');
  }

  assignWindows(_e: unknown, timestamp: number | undefined, ctx?: WindowAssignerContext): TimeWindow[] {
    return tumble(this.timeOf(timestamp, ctx), this.size, this.offset);
  }

  override toString(): string {
    return `${this.name}(${this.size}${this.offset ? `, ${this.offset}` : ''})`;
  }
}

/** Windows of `size` starting every `slide` ms, so each record is in size/slide of them. */
abstract class SlidingTimeWindows extends TimeWindowAssigner {
  protected constructor(
    name: string,
    eventTime: boolean,
    readonly size: number,
    readonly slide: number,
    readonly offset: number,
  ) {
    super(name, eventTime);
    requirePositive(name, 'size', size);
    requirePositive(name, 'slide', slide);
    if (slide > size) {
      throw new Error(
        `${name}: the slide (${slide} ms) must not be larger than the size (${size} ms), or records between windows are lost; use ${name.replace('Sliding', 'Tumbling')} for slide = size`,
      );
    }
    requireOffset(name, offset, slide, 'slide');
  }

  assignWindows(_e: unknown, timestamp: number | undefined, ctx?: WindowAssignerContext): TimeWindow[] {
    return slide(this.timeOf(timestamp, ctx), this.size, this.slide, this.offset);
  }

  override toString(): string {
    return `${this.name}(${this.size}, ${this.slide})`;
  }
}

/** A window per burst of activity: records closer than `gap` ms fall into one session. */
abstract class SessionTimeWindows extends TimeWindowAssigner {
  protected constructor(
    name: string,
    eventTime: boolean,
    readonly gap: number,
  ) {
    super(name, eventTime);
    requirePositive(this.name, 'session gap', gap);
  }

  assignWindows(_e: unknown, timestamp: number | undefined, ctx?: WindowAssignerContext): TimeWindow[] {
    const t = this.timeOf(timestamp, ctx);
    return [new TimeWindow(t, t + this.gap)];
  }

  mergeWindows(
    windows: Iterable<TimeWindow>,
    callback: (toBeMerged: TimeWindow[], mergeResult: TimeWindow) => void,
  ): void {
    TimeWindow.mergeWindows(windows, callback);
  }

  override toString(): string {
    return `${this.name}(${this.gap})`;
  }
}

export class TumblingEventTimeWindows extends TumblingTimeWindows {
  static of(size: number, offset = 0): TumblingEventTimeWindows {
    return new TumblingEventTimeWindows('TumblingEventTimeWindows', true, size, offset);
  }
}

export class SlidingEventTimeWindows extends SlidingTimeWindows {
  static of(size: number, slideMs: number, offset = 0): SlidingEventTimeWindows {
    return new SlidingEventTimeWindows('SlidingEventTimeWindows', true, size, slideMs, offset);
  }
}

export class EventTimeSessionWindows extends SessionTimeWindows {
  static withGap(gap: number): EventTimeSessionWindows {
    return new EventTimeSessionWindows('EventTimeSessionWindows', true, gap);
  }
}

export class TumblingProcessingTimeWindows extends TumblingTimeWindows {
  static of(size: number, offset = 0): TumblingProcessingTimeWindows {
    return new TumblingProcessingTimeWindows('TumblingProcessingTimeWindows', false, size, offset);
  }
}

export class SlidingProcessingTimeWindows extends SlidingTimeWindows {
  static of(size: number, slideMs: number, offset = 0): SlidingProcessingTimeWindows {
    return new SlidingProcessingTimeWindows('SlidingProcessingTimeWindows', false, size, slideMs, offset);
  }
}

export class ProcessingTimeSessionWindows extends SessionTimeWindows {
  static withGap(gap: number): ProcessingTimeSessionWindows {
    return new ProcessingTimeSessionWindows('ProcessingTimeSessionWindows', false, gap);
  }
}

/** One window for all records of a key; it fires only by a trigger set with `.trigger()` (e.g. CountTrigger). */
export class GlobalWindows extends WindowAssigner<unknown, GlobalWindow> {
  private static readonly INSTANCE = new GlobalWindows();
  private static readonly WINDOWS: GlobalWindow[] = [GlobalWindow.INSTANCE];

  static create(): GlobalWindows {
    return GlobalWindows.INSTANCE;
  }

  assignWindows(): GlobalWindow[] {
    // shared array: the window operator only reads it
    return GlobalWindows.WINDOWS;
  }

  getDefaultTrigger(): Trigger<unknown, GlobalWindow> {
    return new NeverTrigger();
  }

  getWindowSerializer(): WindowSerializer<GlobalWindow> {
    return GlobalWindow.serializer;
  }

  isEventTime(): boolean {
    return false;
  }
}
