import type { SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';
import { limitedProgressionReader, ProgressionSource, type ProgressionSplit } from './progression-reader.js';

/**
 * Records made by a function of their index, like Flink's DataGeneratorSource. Subtask i
 * generates indices i, i+p, ...; an optional rate applies to the whole source.
 */
export class DataGeneratorSource<T> extends ProgressionSource<T> {
  readonly boundedness;
  private readonly count: number;

  constructor(
    private readonly generator: (index: number) => T,
    count?: number,
    private readonly recordsPerSecond?: number,
  ) {
    super();
    this.count = count === undefined ? Infinity : count;
    if (!(this.count >= 0)) throw new Error(`DataGeneratorSource count must be >= 0, got ${count}`);
    if (recordsPerSecond !== undefined && !(recordsPerSecond > 0))
      throw new Error(`recordsPerSecond must be > 0, got ${recordsPerSecond}`);
    this.boundedness = this.count === Infinity ? ('CONTINUOUS_UNBOUNDED' as const) : ('BOUNDED' as const);
  }

  createSplits(parallelism: number): ProgressionSplit[] {
    // a finite end, so the split survives JSON in checkpoint metadata
    const end = this.count === Infinity ? Number.MAX_SAFE_INTEGER : this.count;
    return Array.from({ length: parallelism }, (_, i) => ({
      splitId: `generator-${i}`,
      next: i,
      step: parallelism,
      end,
    }));
  }

  protected element(index: number): T {
    return this.generator(index);
  }

  override createReader(ctx: TaskInfo, restored?: unknown[]): SourceReader<T> {
    if (this.recordsPerSecond === undefined) return super.createReader(ctx, restored);
    const splits =
      this.restoredSplits(restored) ??
      this.createSplits(ctx.parallelism).filter((_, k) => k % ctx.parallelism === ctx.subtaskIndex);
    // a per-subtask budget that refills with time (a token bucket without a timer per record)
    const rate = this.recordsPerSecond / ctx.parallelism;
    const started = Date.now();
    let emitted = 0;
    let available: Promise<void> = Promise.resolve();
    return limitedProgressionReader(
      splits,
      (i) => {
        emitted++;
        return this.generator(i);
      },
      {
        budget: () => {
          const allowed = Math.floor(((Date.now() - started) / 1000) * rate) + 1 - emitted;
          if (allowed <= 0) {
            const waitMs = Math.max(1, Math.ceil(((emitted + 1) / rate) * 1000 - (Date.now() - started)));
            available = new Promise((r) => setTimeout(r, Math.min(waitMs, 100)));
          }
          return allowed;
        },
        available: () => available,
      },
      this.boundedness === 'BOUNDED',
    );
  }
}
