/**
 * Watermarks: a watermark t says "no more records with timestamp <= t will arrive" on this
 * stream. Timestamps and watermarks are milliseconds as numbers; -Infinity is the watermark
 * before anything is known and +Infinity the one a bounded input ends with, so every
 * event-time window and timer fires at the end of a bounded job.
 */
export class Watermark {
  /** the watermark a bounded input ends with: every event-time timer fires */
  static readonly MAX_WATERMARK = new Watermark(Infinity);
  /** the watermark of an operator that has seen none yet */
  static readonly UNINITIALIZED = new Watermark(-Infinity);

  constructor(readonly timestamp: number) {
    if (typeof timestamp !== 'number' || Number.isNaN(timestamp)) {
      throw new Error(`A watermark needs a numeric timestamp in milliseconds, got ${String(timestamp)}`);
    }
  }

  getTimestamp(): number {
    return this.timestamp;
  }

  toString(): string {
    return `Watermark @ ${this.timestamp}`;
  }
}

/** Where a WatermarkGenerator sends its watermarks and idleness. */
export interface WatermarkOutput {
  /** Emits a watermark; one that is not above the last one emitted is ignored. */
  emitWatermark(watermark: Watermark): void;
  /**
   * This output will not make progress for a while: downstream operators leave it out of
   * their minimum until it emits again, so an idle split or partition holds nobody back.
   */
  markIdle(): void;
  /** Ends idleness without emitting a watermark. */
  markActive(): void;
}

/**
 * Produces watermarks from the events it sees (`onEvent`) and on a timer
 * (`onPeriodicEmit`, every `pipeline.auto-watermark-interval`, default 200 ms). One
 * generator runs per source split, or per subtask for `assignTimestampsAndWatermarks`.
 */
export interface WatermarkGenerator<T> {
  onEvent(event: T, eventTimestamp: number, output: WatermarkOutput): void;
  onPeriodicEmit(output: WatermarkOutput): void;
}

/**
 * Extracts an event's timestamp in milliseconds. `recordTimestamp` is the timestamp the
 * record already carries (from the source), or undefined.
 */
export type TimestampAssigner<T> = (event: T, recordTimestamp: number | undefined) => number;

/** What a generator factory may use: the clock idleness is measured with. */
export interface WatermarkGeneratorContext {
  /** Milliseconds on the task's processing-time clock (injected in tests). */
  currentProcessingTime(): number;
  /** Name of the operator the generator runs in, for error messages. */
  readonly operatorName: string;
}

export type WatermarkGeneratorSupplier<T> = (context: WatermarkGeneratorContext) => WatermarkGenerator<T>;

function requireDuration(what: string, ms: number, allowZero: boolean): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || (!allowZero && ms === 0)) {
    throw new Error(
      `${what} must be a finite number of milliseconds ${allowZero ? '>= 0' : '> 0'}, got ${String(ms)}`,
    );
  }
}

/**
 * Watermark = highest timestamp seen - maxOutOfOrderness - 1, emitted periodically
 * (Flink's BoundedOutOfOrdernessWatermarks): a record up to maxOutOfOrderness ms behind the
 * newest one is still on time.
 */
export class BoundedOutOfOrdernessWatermarks<T> implements WatermarkGenerator<T> {
  private maxTimestamp: number;

  constructor(private readonly outOfOrdernessMs: number) {
    requireDuration(
      'WatermarkStrategy.forBoundedOutOfOrderness: the out-of-orderness bound',
      outOfOrdernessMs,
      true,
    );
    this.maxTimestamp = -Infinity;
  }

  onEvent(_event: T, eventTimestamp: number): void {
    if (eventTimestamp > this.maxTimestamp) this.maxTimestamp = eventTimestamp;
  }

  onPeriodicEmit(output: WatermarkOutput): void {
    if (this.maxTimestamp === -Infinity) return;
    output.emitWatermark(new Watermark(this.maxTimestamp - this.outOfOrdernessMs - 1));
  }
}

/** Emits nothing: the stream has timestamps but never advances event time. */
export class NoWatermarksGenerator<T> implements WatermarkGenerator<T> {
  onEvent(): void {}
  onPeriodicEmit(): void {}
}

/**
 * Marks the output idle when no event arrived for `idleTimeoutMs` of processing time
 * (Flink's WatermarksWithIdleness); the next event makes it active again.
 */
export class WatermarksWithIdleness<T> implements WatermarkGenerator<T> {
  private lastActivity: number;
  private idle = false;
  private eventsSinceCheck = false;

  constructor(
    private readonly inner: WatermarkGenerator<T>,
    private readonly idleTimeoutMs: number,
    private readonly clock: () => number,
  ) {
    requireDuration('WatermarkStrategy.withIdleness: the idle timeout', idleTimeoutMs, false);
    this.lastActivity = clock();
  }

  onEvent(event: T, eventTimestamp: number, output: WatermarkOutput): void {
    this.inner.onEvent(event, eventTimestamp, output);
    this.eventsSinceCheck = true;
    if (this.idle) {
      this.idle = false;
      output.markActive();
    }
  }

  onPeriodicEmit(output: WatermarkOutput): void {
    const now = this.clock();
    if (this.eventsSinceCheck) {
      this.eventsSinceCheck = false;
      this.lastActivity = now;
    }
    if (this.idle) return;
    if (now - this.lastActivity >= this.idleTimeoutMs) {
      this.idle = true;
      output.markIdle();
      return;
    }
    this.inner.onPeriodicEmit(output);
  }
}

/**
 * How a stream gets timestamps and watermarks (Flink's WatermarkStrategy): a generator
 * factory, an optional timestamp assigner and an optional idle timeout. Immutable; the
 * `with*` methods return a new strategy.
 */
export class WatermarkStrategy<T> {
  private constructor(
    readonly generatorSupplier: WatermarkGeneratorSupplier<T>,
    readonly timestampAssigner: TimestampAssigner<T> | undefined,
    readonly idleTimeoutMs: number | undefined,
    /** false for noWatermarks(): the runtime may skip periodic emission */
    readonly emitsWatermarks: boolean,
  ) {}

  static forBoundedOutOfOrderness<T>(maxOutOfOrdernessMs: number): WatermarkStrategy<T> {
    requireDuration(
      'WatermarkStrategy.forBoundedOutOfOrderness: the out-of-orderness bound',
      maxOutOfOrdernessMs,
      true,
    );
    return new WatermarkStrategy<T>(
      () => new BoundedOutOfOrdernessWatermarks<T>(maxOutOfOrdernessMs),
      undefined,
      undefined,
      true,
    );
  }

  /** Timestamps never decrease: watermark = highest timestamp seen - 1. */
  static forMonotonousTimestamps<T>(): WatermarkStrategy<T> {
    return new WatermarkStrategy<T>(
      () => new BoundedOutOfOrdernessWatermarks<T>(0),
      undefined,
      undefined,
      true,
    );
  }

  static forGenerator<T>(supplier: WatermarkGeneratorSupplier<T>): WatermarkStrategy<T> {
    if (typeof supplier !== 'function') {
      throw new Error('WatermarkStrategy.forGenerator needs a function (context) => WatermarkGenerator');
    }
    return new WatermarkStrategy<T>(supplier, undefined, undefined, true);
  }

  static noWatermarks<T>(): WatermarkStrategy<T> {
    return new WatermarkStrategy<T>(() => new NoWatermarksGenerator<T>(), undefined, undefined, false);
  }

  withTimestampAssigner(assigner: TimestampAssigner<T>): WatermarkStrategy<T> {
    if (typeof assigner !== 'function') {
      throw new Error('withTimestampAssigner needs a function (event, recordTimestamp) => timestamp in ms');
    }
    return new WatermarkStrategy<T>(
      this.generatorSupplier,
      assigner,
      this.idleTimeoutMs,
      this.emitsWatermarks,
    );
  }

  withIdleness(idleTimeoutMs: number): WatermarkStrategy<T> {
    requireDuration('WatermarkStrategy.withIdleness: the idle timeout', idleTimeoutMs, false);
    return new WatermarkStrategy<T>(this.generatorSupplier, this.timestampAssigner, idleTimeoutMs, true);
  }

  /** The generator for one split or subtask, wrapped for idleness when that was asked for. */
  createWatermarkGenerator(context: WatermarkGeneratorContext): WatermarkGenerator<T> {
    const generator = this.generatorSupplier(context);
    if (
      !generator ||
      typeof generator.onEvent !== 'function' ||
      typeof generator.onPeriodicEmit !== 'function'
    ) {
      throw new Error(
        `The watermark generator supplier of '${context.operatorName}' must return an object with onEvent and onPeriodicEmit`,
      );
    }
    if (this.idleTimeoutMs === undefined) return generator;
    return new WatermarksWithIdleness(generator, this.idleTimeoutMs, () => context.currentProcessingTime());
  }
}
