import { AVAILABLE, InputStatus, type ReaderOutput, type Source, type SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';

/**
 * Records made by a function of their index, like Flink's DataGeneratorSource. Subtask i
 * generates indices i, i+p, ...; an optional rate applies to the whole source.
 */
export class DataGeneratorSource<T> implements Source<T> {
  readonly boundedness;
  private readonly count: number;

  constructor(private readonly generator: (index: number) => T, count?: number, private readonly recordsPerSecond?: number) {
    this.count = count === undefined ? Infinity : count;
    if (!(this.count >= 0)) throw new Error(`DataGeneratorSource count must be >= 0, got ${count}`);
    if (recordsPerSecond !== undefined && !(recordsPerSecond > 0)) throw new Error(`recordsPerSecond must be > 0, got ${recordsPerSecond}`);
    this.boundedness = this.count === Infinity ? ('CONTINUOUS_UNBOUNDED' as const) : ('BOUNDED' as const);
  }

  createReader(ctx: TaskInfo): SourceReader<T> & { next: number } {
    const gen = this.generator;
    const count = this.count;
    const step = ctx.parallelism;
    const rate = this.recordsPerSecond === undefined ? undefined : this.recordsPerSecond / ctx.parallelism;
    const started = Date.now();
    let emitted = 0;
    let available: Promise<void> = AVAILABLE;
    return {
      next: ctx.subtaskIndex,
      pollNext(out: ReaderOutput<T>): InputStatus {
        let budget = 256;
        if (rate !== undefined) {
          const allowed = Math.floor(((Date.now() - started) / 1000) * rate) + 1 - emitted;
          if (allowed <= 0) {
            const waitMs = Math.max(1, Math.ceil(((emitted + 1) / rate) * 1000 - (Date.now() - started)));
            available = new Promise((r) => setTimeout(r, Math.min(waitMs, 100)));
            return InputStatus.NOTHING_AVAILABLE;
          }
          budget = Math.min(budget, allowed);
        }
        for (let n = 0; n < budget && this.next < count; n++) {
          out.collect(gen(this.next));
          this.next += step;
          emitted++;
        }
        return this.next < count ? InputStatus.MORE_AVAILABLE : InputStatus.END_OF_INPUT;
      },
      isAvailable: () => available,
      snapshotState() {
        return { next: this.next };
      },
    };
  }
}
