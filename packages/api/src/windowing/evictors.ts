import type { Window } from './windows.js';

/** An element of a window together with its timestamp, as evictors see it. */
export interface TimestampedValue<T> {
  value: T;
  timestamp: number | undefined;
}

export interface EvictorContext {
  getCurrentProcessingTime(): number;
  getCurrentWatermark(): number;
}

/**
 * Removes elements from a window's contents before and/or after the window function runs
 * (Flink's Evictor). `elements` is the window's contents in arrival order; an evictor removes
 * from it in place. A window with an evictor keeps every element (no incremental reduce).
 */
export interface Evictor<T, W extends Window> {
  evictBefore(elements: TimestampedValue<T>[], size: number, window: W, ctx: EvictorContext): void;
  evictAfter(elements: TimestampedValue<T>[], size: number, window: W, ctx: EvictorContext): void;
}

function removeWhere<T>(elements: TimestampedValue<T>[], drop: (e: TimestampedValue<T>) => boolean): void {
  let w = 0;
  for (let r = 0; r < elements.length; r++) {
    const e = elements[r]!;
    if (!drop(e)) elements[w++] = e;
  }
  elements.length = w;
}

/** Keeps the last `maxCount` elements of a window. */
export class CountEvictor implements Evictor<unknown, Window> {
  private constructor(
    readonly maxCount: number,
    readonly doEvictAfter: boolean,
  ) {}

  static of(maxCount: number, doEvictAfter = false): CountEvictor {
    if (!Number.isSafeInteger(maxCount) || maxCount < 0) {
      throw new Error(`CountEvictor.of needs an integer count >= 0, got ${String(maxCount)}`);
    }
    return new CountEvictor(maxCount, doEvictAfter);
  }

  evictBefore(
    elements: TimestampedValue<unknown>[],
    size: number,
    _window?: Window,
    _ctx?: EvictorContext,
  ): void {
    if (!this.doEvictAfter) this.evict(elements, size);
  }

  evictAfter(
    elements: TimestampedValue<unknown>[],
    size: number,
    _window?: Window,
    _ctx?: EvictorContext,
  ): void {
    if (this.doEvictAfter) this.evict(elements, size);
  }

  private evict(elements: TimestampedValue<unknown>[], size: number): void {
    if (size <= this.maxCount) return;
    elements.splice(0, size - this.maxCount);
  }
}

/**
 * Keeps the elements within `windowSize` ms of the newest element of the window (elements
 * with timestamp <= newest - windowSize are removed). Windows without timestamps keep all.
 */
export class TimeEvictor implements Evictor<unknown, Window> {
  private constructor(
    readonly windowSize: number,
    readonly doEvictAfter: boolean,
  ) {}

  static of(windowSize: number, doEvictAfter = false): TimeEvictor {
    if (typeof windowSize !== 'number' || !Number.isFinite(windowSize) || windowSize < 0) {
      throw new Error(
        `TimeEvictor.of needs a finite window size in milliseconds >= 0, got ${String(windowSize)}`,
      );
    }
    return new TimeEvictor(windowSize, doEvictAfter);
  }

  evictBefore(
    elements: TimestampedValue<unknown>[],
    _size?: number,
    _window?: Window,
    _ctx?: EvictorContext,
  ): void {
    if (!this.doEvictAfter) this.evict(elements);
  }

  evictAfter(
    elements: TimestampedValue<unknown>[],
    _size?: number,
    _window?: Window,
    _ctx?: EvictorContext,
  ): void {
    if (this.doEvictAfter) this.evict(elements);
  }

  private evict(elements: TimestampedValue<unknown>[]): void {
    let newest = -Infinity;
    for (const e of elements) {
      if (e.timestamp === undefined) return;
      if (e.timestamp > newest) newest = e.timestamp;
    }
    const cutoff = newest - this.windowSize;
    removeWhere(elements, (e) => e.timestamp! <= cutoff);
  }
}
