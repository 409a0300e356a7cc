import { AVAILABLE, InputStatus, type ReaderOutput, type Source, type SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';

/** Integers from..to inclusive, split into one contiguous range per subtask. */
export class NumberSequenceSource implements Source<number> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(readonly from: number, readonly to: number) {
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) throw new Error(`fromSequence needs integers, got ${from}..${to}`);
    if (from > to) throw new Error(`fromSequence needs from <= to, got ${from}..${to}`);
  }

  createReader(ctx: TaskInfo): SourceReader<number> & { next: number } {
    const total = this.to - this.from + 1;
    const start = this.from + Math.floor((total * ctx.subtaskIndex) / ctx.parallelism);
    const end = this.from + Math.floor((total * (ctx.subtaskIndex + 1)) / ctx.parallelism); // exclusive
    return {
      next: start,
      pollNext(out: ReaderOutput<number>): InputStatus {
        const stop = Math.min(end, this.next + 1024);
        for (let v = this.next; v < stop; v++) out.collect(v);
        this.next = stop;
        return stop < end ? InputStatus.MORE_AVAILABLE : InputStatus.END_OF_INPUT;
      },
      isAvailable: () => AVAILABLE,
      snapshotState() {
        return { next: this.next };
      },
    };
  }
}
