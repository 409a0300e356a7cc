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
  return assigner instanceof MergingWindowAssigner;
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

/** Fixed-size, non-overlapping event-time windows [k*size + offset, (k+1)*size + offset). */
export class TumblingEventTimeWindows extends WindowAssigner<unknown, TimeWindow> {
  private constructor(
    readonly size: number,
    readonly offset: number,
  ) {
    super();
  }

  static of(size: number, offset = 0): TumblingEventTimeWindows {
    requirePositive('TumblingEventTimeWindows', 'size', size);
    requireOffset('TumblingEventTimeWindows', offset, size, 'size');
    return new TumblingEventTimeWindows(size, offset);
  }

  assignWindows(_e: unknown, timestamp: number | undefined): TimeWindow[] {
    return tumble(eventTimestamp('TumblingEventTimeWindows', timestamp), this.size, this.offset);
  }

  getDefaultTrigger(): Trigger<unknown, TimeWindow> {
    return EventTimeTrigger.create();
  }

  getWindowSerializer(): WindowSerializer<TimeWindow> {
    return TimeWindow.serializer;
  }

  isEventTime(): boolean {
    return true;
  }

  override toString(): string {
    return `TumblingEventTimeWindows(${this.size}${this.offset ? `, ${this.offset}` : ''})`;
  }
}

/** Windows of `size` starting every `slide` ms, so each record is in size/slide of them. */
export class SlidingEventTimeWindows extends WindowAssigner<unknown, TimeWindow> {
  private constructor(
    readonly size: number,
    readonly slide: number,
    readonly offset: number,
  ) {
    super();
  }

  static of(size: number, slideMs: number, offset = 0): SlidingEventTimeWindows {
    requirePositive('SlidingEventTimeWindows', 'size', size);
    requirePositive('SlidingEventTimeWindows', 'slide', slideMs);
    if (slideMs > size) {
      throw new Error(
        `SlidingEventTimeWindows: the slide (${slideMs} ms) must not be larger than the size (${size} ms), or records between windows are lost; use TumblingEventTimeWindows for slide = size`,
      );
    }
    requireOffset('SlidingEventTimeWindows', offset, slideMs, 'slide');
    return new SlidingEventTimeWindows(size, slideMs, offset);
  }

  assignWindows(_e: unknown, timestamp: number | undefined): TimeWindow[] {
    return slide(eventTimestamp('SlidingEventTimeWindows', timestamp), this.size, this.slide, this.offset);
  }

  getDefaultTrigger(): Trigger<unknown, TimeWindow> {
    return EventTimeTrigger.create();
  }

  getWindowSerializer(): WindowSerializer<TimeWindow> {
    return TimeWindow.serializer;
  }

  isEventTime(): boolean {
    return true;
  }

  override toString(): string {
    return `SlidingEventTimeWindows(${this.size}, ${this.slide})`;
  }
}

/** A window per burst of activity: records closer than `gap` ms fall into one session. */
export class EventTimeSessionWindows extends MergingWindowAssigner<unknown, TimeWindow> {
  private constructor(readonly gap: number) {
    super();
  }

  static withGap(gap: number): EventTimeSessionWindows {
    requirePositive('EventTimeSessionWindows', 'session gap', gap);
    return new EventTimeSessionWindows(gap);
  }

  assignWindows(_e: unknown, timestamp: number | undefined): TimeWindow[] {
    const ts = eventTimestamp('EventTimeSessionWindows', timestamp);
    return [new TimeWindow(ts, ts + this.gap)];
  }

  mergeWindows(
    windows: Iterable<TimeWindow>,
    callback: (toBeMerged: TimeWindow[], mergeResult: TimeWindow) => void,
  ): void {
    TimeWindow.mergeWindows(windows, callback);
  }

  getDefaultTrigger(): Trigger<unknown, TimeWindow> {
    return EventTimeTrigger.create();
  }

  getWindowSerializer(): WindowSerializer<TimeWindow> {
    return TimeWindow.serializer;
  }

  isEventTime(): boolean {
    return true;
  }

  override toString(): string {
    return `EventTimeSessionWindows(${this.gap})`;
  }
}

export class TumblingProcessingTimeWindows extends WindowAssigner<unknown, TimeWindow> {
  private constructor(
    readonly size: number,
    readonly offset: number,
  ) {
    super();
  }

  static of(size: number, offset = 0): TumblingProcessingTimeWindows {
    requirePositive('TumblingProcessingTimeWindows', 'size', size);
    requireOffset('TumblingProcessingTimeWindows', offset, size, 'size');
    return new TumblingProcessingTimeWindows(size, offset);
  }

  assignWindows(_e: unknown, _ts: number | undefined, ctx: WindowAssignerContext): TimeWindow[] {
    return tumble(ctx.getCurrentProcessingTime(), this.size, this.offset);
  }

  getDefaultTrigger(): Trigger<unknown, TimeWindow> {
    return ProcessingTimeTrigger.create();
  }

  getWindowSerializer(): WindowSerializer<TimeWindow> {
    return TimeWindow.serializer;
  }

  isEventTime(): boolean {
    return false;
  }

  override toString(): string {
    return `TumblingProcessingTimeWindows(${this.size})`;
  }
}

export class SlidingProcessingTimeWindows extends WindowAssigner<unknown, TimeWindow> {
  private constructor(
    readonly size: number,
    readonly slide: number,
    readonly offset: number,
  ) {
    super();
  }

  static of(size: number, slideMs: number, offset = 0): SlidingProcessingTimeWindows {
    requirePositive('SlidingProcessingTimeWindows', 'size', size);
    requirePositive('SlidingProcessingTimeWindows', 'slide', slideMs);
    if (slideMs > size) {
      throw new Error(
        `SlidingProcessingTimeWindows: the slide (${slideMs} ms) must not be larger than the size (${size} ms); use TumblingProcessingTimeWindows for slide = size`,
      );
    }
    requireOffset('SlidingProcessingTimeWindows', offset, slideMs, 'slide');
    return new SlidingProcessingTimeWindows(size, slideMs, offset);
  }

  assignWindows(_e: unknown, _ts: number | undefined, ctx: WindowAssignerContext): TimeWindow[] {
    return slide(ctx.getCurrentProcessingTime(), this.size, this.slide, this.offset);
  }

  getDefaultTrigger(): Trigger<unknown, TimeWindow> {
    return ProcessingTimeTrigger.create();
  }

  getWindowSerializer(): WindowSerializer<TimeWindow> {
    return TimeWindow.serializer;
  }

  isEventTime(): boolean {
    return false;
  }

  override toString(): string {
    return `SlidingProcessingTimeWindows(${this.size}, ${this.slide})`;
  }
}

export class ProcessingTimeSessionWindows extends MergingWindowAssigner<unknown, TimeWindow> {
  private constructor(readonly gap: number) {
    super();
  }

  static withGap(gap: number): ProcessingTimeSessionWindows {
    requirePositive('ProcessingTimeSessionWindows', 'session gap', gap);
    return new ProcessingTimeSessionWindows(gap);
  }

  assignWindows(_e: unknown, _ts: number | undefined, ctx: WindowAssignerContext): TimeWindow[] {
    const now = ctx.getCurrentProcessingTime();
    return [new TimeWindow(now, now + this.gap)];
  }

  mergeWindows(
    windows: Iterable<TimeWindow>,
    callback: (toBeMerged: TimeWindow[], mergeResult: TimeWindow) => void,
  ): void {
    TimeWindow.mergeWindows(windows, callback);
  }

  getDefaultTrigger(): Trigger<unknown, TimeWindow> {
    return ProcessingTimeTrigger.create();
  }

  getWindowSerializer(): WindowSerializer<TimeWindow> {
    return TimeWindow.serializer;
  }

  isEventTime(): boolean {
    return false;
  }

  override toString(): string {
    return `ProcessingTimeSessionWindows(${this.gap})`;
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
