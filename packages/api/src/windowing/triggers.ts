import type { ReducingState, State, StateDescriptor } from '../state.js';
import { ReducingStateDescriptor } from '../state.js';
import type { Window } from './windows.js';

/** What a trigger decides for a window (Flink's TriggerResult). */
export const TriggerResult = {
  /** nothing happens */
  CONTINUE: 'CONTINUE',
  /** the window function runs over the contents; the contents stay */
  FIRE: 'FIRE',
  /** the contents are cleared without evaluation */
  PURGE: 'PURGE',
  FIRE_AND_PURGE: 'FIRE_AND_PURGE',
} as const;
export type TriggerResult = (typeof TriggerResult)[keyof typeof TriggerResult];

export function isFire(result: TriggerResult): boolean {
  return result === 'FIRE' || result === 'FIRE_AND_PURGE';
}

export function isPurge(result: TriggerResult): boolean {
  return result === 'PURGE' || result === 'FIRE_AND_PURGE';
}

/** What a trigger may do: read the clocks, set timers and keep state, all for the current key and window. */
export interface TriggerContext {
  getCurrentProcessingTime(): number;
  getCurrentWatermark(): number;
  registerEventTimeTimer(time: number): void;
  registerProcessingTimeTimer(time: number): void;
  deleteEventTimeTimer(time: number): void;
  deleteProcessingTimeTimer(time: number): void;
  /** state scoped to the current key and window; cleared with the window when the trigger's `clear` does */
  getPartitionedState<S extends State>(descriptor: StateDescriptor<S>): S;
}

/** When windows merge, the trigger merges the state it keeps per window. */
export interface OnMergeContext extends TriggerContext {
  mergePartitionedState<S extends State>(descriptor: StateDescriptor<S>): void;
}

/**
 * Decides when a window fires (Flink's Trigger). Called for every element added to a window
 * and for every timer it set; `clear` removes the timers and state it keeps for a window
 * that is being discarded.
 */
export abstract class Trigger<T, W extends Window> {
  abstract onElement(
    element: T,
    timestamp: number | undefined,
    window: W,
    ctx: TriggerContext,
  ): TriggerResult;
  abstract onEventTime(time: number, window: W, ctx: TriggerContext): TriggerResult;
  abstract onProcessingTime(time: number, window: W, ctx: TriggerContext): TriggerResult;
  abstract clear(window: W, ctx: TriggerContext): void;

  /** Triggers used with merging (session) windows must say true and implement onMerge. */
  canMerge(): boolean {
    return false;
  }

  onMerge(_window: W, _ctx: OnMergeContext): void {
    throw new Error(
      `${this.constructor.name} does not support merging windows (use it with non-session windows)`,
    );
  }

  toString(): string {
    return `${this.constructor.name}()`;
  }
}

/** Fires once the watermark passes the window's end; late elements within the allowed lateness fire at once. */
export class EventTimeTrigger extends Trigger<unknown, Window> {
  private static readonly INSTANCE = new EventTimeTrigger();

  static create(): EventTimeTrigger {
    return EventTimeTrigger.INSTANCE;
  }

  onElement(_e: unknown, _ts: number | undefined, window: Window, ctx: TriggerContext): TriggerResult {
    if (window.maxTimestamp() <= ctx.getCurrentWatermark()) return TriggerResult.FIRE;
    ctx.registerEventTimeTimer(window.maxTimestamp());
    return TriggerResult.CONTINUE;
  }

  onEventTime(time: number, window: Window): TriggerResult {
    return time === window.maxTimestamp() ? TriggerResult.FIRE : TriggerResult.CONTINUE;
  }

  onProcessingTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }

  clear(window: Window, ctx: TriggerContext): void {
    ctx.deleteEventTimeTimer(window.maxTimestamp());
  }

  override canMerge(): boolean {
    return true;
  }

  override onMerge(window: Window, ctx: OnMergeContext): void {
    // a merged window whose end already passed fires through its elements' onElement instead
    if (window.maxTimestamp() > ctx.getCurrentWatermark()) ctx.registerEventTimeTimer(window.maxTimestamp());
  }
}

/** Fires when the processing-time clock passes the window's end. */
export class ProcessingTimeTrigger extends Trigger<unknown, Window> {
  private static readonly INSTANCE = new ProcessingTimeTrigger();

  static create(): ProcessingTimeTrigger {
    return ProcessingTimeTrigger.INSTANCE;
  }

  onElement(_e: unknown, _ts: number | undefined, window: Window, ctx: TriggerContext): TriggerResult {
    ctx.registerProcessingTimeTimer(window.maxTimestamp());
    return TriggerResult.CONTINUE;
  }

  onEventTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }

  onProcessingTime(): TriggerResult {
    return TriggerResult.FIRE;
  }

  clear(window: Window, ctx: TriggerContext): void {
    ctx.deleteProcessingTimeTimer(window.maxTimestamp());
  }

  override canMerge(): boolean {
    return true;
  }

  override onMerge(window: Window, ctx: OnMergeContext): void {
    if (window.maxTimestamp() > ctx.getCurrentProcessingTime())
      ctx.registerProcessingTimeTimer(window.maxTimestamp());
  }
}

/** Fires every `maxCount` elements of a window (the count is per key and window, checkpointed). */
export class CountTrigger extends Trigger<unknown, Window> {
  private readonly countDescriptor = new ReducingStateDescriptor<number>('count', (a, b) => a + b);

  private constructor(readonly maxCount: number) {
    super();
  }

  static of(maxCount: number): CountTrigger {
    if (!Number.isSafeInteger(maxCount) || maxCount < 1) {
      throw new Error(`CountTrigger.of needs a positive integer count, got ${String(maxCount)}`);
    }
    return new CountTrigger(maxCount);
  }

  onElement(_e: unknown, _ts: number | undefined, _w: Window, ctx: TriggerContext): TriggerResult {
    const count: ReducingState<number> = ctx.getPartitionedState(this.countDescriptor);
    count.add(1);
    if ((count.get() ?? 0) >= this.maxCount) {
      count.clear();
      return TriggerResult.FIRE;
    }
    return TriggerResult.CONTINUE;
  }

  onEventTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }

  onProcessingTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }

  clear(_w: Window, ctx: TriggerContext): void {
    ctx.getPartitionedState(this.countDescriptor).clear();
  }

  override canMerge(): boolean {
    return true;
  }

  override onMerge(_w: Window, ctx: OnMergeContext): void {
    ctx.mergePartitionedState(this.countDescriptor);
  }

  override toString(): string {
    return `CountTrigger(${this.maxCount})`;
  }
}

/** Turns every FIRE of the nested trigger into FIRE_AND_PURGE. */
export class PurgingTrigger<T, W extends Window> extends Trigger<T, W> {
  private constructor(readonly nestedTrigger: Trigger<T, W>) {
    super();
  }

  static of<T, W extends Window>(nestedTrigger: Trigger<T, W>): PurgingTrigger<T, W> {
    if (!(nestedTrigger instanceof Trigger)) throw new Error('PurgingTrigger.of needs a Trigger to wrap');
    return new PurgingTrigger(nestedTrigger);
  }

  private static purging(r: TriggerResult): TriggerResult {
    return isFire(r) ? TriggerResult.FIRE_AND_PURGE : r;
  }

  onElement(e: T, ts: number | undefined, w: W, ctx: TriggerContext): TriggerResult {
    return PurgingTrigger.purging(this.nestedTrigger.onElement(e, ts, w, ctx));
  }

  onEventTime(time: number, w: W, ctx: TriggerContext): TriggerResult {
    return PurgingTrigger.purging(this.nestedTrigger.onEventTime(time, w, ctx));
  }

  onProcessingTime(time: number, w: W, ctx: TriggerContext): TriggerResult {
    return PurgingTrigger.purging(this.nestedTrigger.onProcessingTime(time, w, ctx));
  }

  clear(w: W, ctx: TriggerContext): void {
    this.nestedTrigger.clear(w, ctx);
  }

  override canMerge(): boolean {
    return this.nestedTrigger.canMerge();
  }

  override onMerge(w: W, ctx: OnMergeContext): void {
    this.nestedTrigger.onMerge(w, ctx);
  }

  override toString(): string {
    return `PurgingTrigger(${this.nestedTrigger.toString()})`;
  }
}

/** The default trigger of GlobalWindows: never fires (set another with `.trigger()`). */
export class NeverTrigger extends Trigger<unknown, Window> {
  onElement(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  onEventTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  onProcessingTime(): TriggerResult {
    return TriggerResult.CONTINUE;
  }
  clear(): void {}
  override canMerge(): boolean {
    return true;
  }
  override onMerge(): void {}
}
