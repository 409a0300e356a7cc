import { BoundedOutOfOrdernessWatermarks } from '@weir/api';
import type { TimestampAssigner, WatermarkGenerator, WatermarkOutput, WatermarkStrategy } from './api.js';
import { CombinedWatermark } from './combined-watermark.js';
import type { WatermarkSink } from './watermark-valve.js';

/** pipeline.auto-watermark-interval's default, as in Flink */
export const DEFAULT_AUTO_WATERMARK_INTERVAL_MS = 200;

/**
 * Checks what a timestamp assigner returned. Timestamps are finite numbers of
 * milliseconds; anything else would make windows and timers meaningless, so the job fails
 * with the operator named.
 */
export function validateTimestamp(timestamp: unknown, operatorName: string, event: unknown): number {
  if (typeof timestamp === 'number' && Number.isFinite(timestamp)) return timestamp;
  let shown: string;
  try {
    shown = JSON.stringify(event) ?? String(event);
  } catch {
    shown = String(event);
  }
  if (shown.length > 200) shown = `${shown.slice(0, 200)}...`;
  const what =
    typeof timestamp === 'number'
      ? String(timestamp)
      : `${typeof timestamp} ${JSON.stringify(timestamp) ?? ''}`;
  throw new Error(
    `The timestamp assigner of '${operatorName}' returned ${what} for the record ${shown}; ` +
      'it must return a finite number of milliseconds (e.g. Date.parse(e.time) or e.ts)',
  );
}

/** A split's (or subtask's) timestamps and watermark generator: the per-record entry point. */
export class SplitWatermarks<T> {
  /** @internal */ readonly output: WatermarkOutput;
  /**
   * The generator is the built-in bounded-out-of-orderness one, whose onEvent only keeps the
   * highest timestamp: that maximum is kept here, one compare per record instead of a call,
   * and handed to the generator before each periodic emit (the same watermarks).
   */
  readonly maxOnly: boolean;
  /** @internal the highest timestamp so far, while `maxOnly` (a source head may raise it itself) */
  maxTimestamp = -Infinity;
  /**
   * Whether onRecord may emit a watermark (a generator of the user's own may, in onEvent):
   * then the caller holds watermarks until the record went down the chain.
   */
  readonly emitsOnEvent: boolean;

  constructor(
    readonly splitId: string,
    /** @internal */ readonly index: number,
    private readonly generator: WatermarkGenerator<T>,
    /** @internal */ readonly assigner: TimestampAssigner<T> | undefined,
    private readonly owner: TimestampsAndWatermarks<T>,
  ) {
    this.output = {
      emitWatermark: (w) => owner.onSplitWatermark(index, w.timestamp),
      markIdle: () => owner.onSplitIdle(index, true),
      markActive: () => owner.onSplitIdle(index, false),
    };
    this.maxOnly = generator.constructor === BoundedOutOfOrdernessWatermarks;
    this.emitsOnEvent = !this.maxOnly;
  }

  /**
   * The timestamp of one record: the assigner's result (or the record's own timestamp),
   * validated, then shown to the generator. No allocation of its own.
   */
  onRecord(event: T, recordTimestamp: number | undefined): number {
    const assigner = this.assigner;
    const ts = assigner === undefined ? recordTimestamp : assigner(event, recordTimestamp);
    // a finite number: NaN and ±Infinity make ts - ts NaN
    if (typeof ts !== 'number' || ts - ts !== 0) return this.invalid(ts, event);
    if (this.maxOnly) {
      if (ts > this.maxTimestamp) this.maxTimestamp = ts;
    } else this.generator.onEvent(event, ts, this.output);
    return ts;
  }

  /** @internal Fails the job: the assigner returned `ts`, which is no finite number, for `event`. */
  invalid(ts: unknown, event: T): never {
    validateTimestamp(ts, this.owner.operatorName, event);
    throw new Error(`The timestamp assigner of '${this.owner.operatorName}' returned ${String(ts)}`);
  }

  /** @internal */
  periodicEmit(): void {
    if (this.maxOnly && this.maxTimestamp !== -Infinity)
      this.generator.onEvent(undefined as T, this.maxTimestamp, this.output);
    this.generator.onPeriodicEmit(this.output);
  }
}

/**
 * Timestamps and watermarks of one source subtask or `assignTimestampsAndWatermarks`
 * operator (Flink's SourceOperator watermark multiplexing and TimestampsAndWatermarksOperator):
 * one generator per split, their watermarks combined by minimum over active splits, the
 * subtask idle when all splits are. Periodic emission is driven by the task calling
 * `onProcessingTime(now)` with an injected clock, so tests control time.
 */
export class TimestampsAndWatermarks<T> {
  private readonly splits: SplitWatermarks<T>[] = [];
  private readonly removed: boolean[] = [];
  private combined: CombinedWatermark | undefined;
  private idle = false;
  private nextPeriodicEmit: number;
  private ended = false;

  constructor(
    private readonly strategy: WatermarkStrategy<T>,
    readonly operatorName: string,
    private readonly clock: () => number,
    private readonly sink: WatermarkSink,
    readonly autoWatermarkIntervalMs = DEFAULT_AUTO_WATERMARK_INTERVAL_MS,
  ) {
    if (!(autoWatermarkIntervalMs > 0) || !Number.isFinite(autoWatermarkIntervalMs)) {
      throw new Error(
        `pipeline.auto-watermark-interval must be a finite number of milliseconds > 0, got ${autoWatermarkIntervalMs}`,
      );
    }
    this.nextPeriodicEmit = clock() + autoWatermarkIntervalMs;
  }

  /** The current combined watermark of this subtask. */
  getCurrentWatermark(): number {
    return this.combined ? this.combined.getCombinedWatermark() : -Infinity;
  }

  isIdle(): boolean {
    return this.idle;
  }

  /** A split this subtask reads from now on (or the single 'subtask' split of a non-source operator). */
  addSplit(splitId: string): SplitWatermarks<T> {
    const generator = this.strategy.createWatermarkGenerator({
      currentProcessingTime: this.clock,
      operatorName: this.operatorName,
    });
    let index: number;
    if (!this.combined) {
      this.combined = new CombinedWatermark(1);
      index = 0;
    } else {
      index = this.combined.addInput();
    }
    const split = new SplitWatermarks<T>(splitId, index, generator, this.strategy.timestampAssigner, this);
    this.splits[index] = split;
    this.removed[index] = false;
    // a new active split holds the watermark where it is until it reports
    if (this.idle) this.onSplitIdle(index, false);
    return split;
  }

  /** A split finished: it no longer holds the watermark back. */
  removeSplit(split: SplitWatermarks<T>): void {
    if (this.removed[split.index]) return;
    split.periodicEmit();
    this.removed[split.index] = true;
    this.onSplitIdle(split.index, true);
  }

  /**
   * Call from the task's loop with the current processing time: every interval each split's
   * generator emits periodically. Returns when to call next.
   */
  onProcessingTime(now: number): number {
    if (!this.ended && now >= this.nextPeriodicEmit) {
      for (let i = 0; i < this.splits.length; i++) if (!this.removed[i]) this.splits[i]!.periodicEmit();
      this.nextPeriodicEmit = now + this.autoWatermarkIntervalMs;
    }
    return this.nextPeriodicEmit;
  }

  /** The bounded input ended: the final watermark makes every event-time window and timer fire. */
  endInput(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.idle) {
      this.idle = false;
      this.sink.emitWatermarkStatus(false);
    }
    this.sink.emitWatermark(Infinity);
  }

  /** @internal */
  onSplitWatermark(index: number, timestamp: number): void {
    if (this.ended || this.removed[index]) return;
    const c = this.combined!;
    c.setWatermark(index, timestamp);
    // a watermark from an idle split makes it active again (Flink's WatermarkOutputMultiplexer)
    if (c.isInputIdle(index)) c.setIdle(index, false);
    this.publish();
  }

  /** @internal */
  onSplitIdle(index: number, idle: boolean): void {
    if (this.ended) return;
    if (!idle && this.removed[index]) return;
    this.combined!.setIdle(index, idle);
    this.publish();
  }

  private publish(): void {
    const c = this.combined!;
    const advanced = c.update();
    const nowIdle = c.isIdle();
    if (!nowIdle && this.idle) {
      this.idle = false;
      this.sink.emitWatermarkStatus(false);
    }
    if (advanced) this.sink.emitWatermark(c.getCombinedWatermark());
    if (nowIdle && !this.idle) {
      this.idle = true;
      this.sink.emitWatermarkStatus(true);
    }
  }
}
