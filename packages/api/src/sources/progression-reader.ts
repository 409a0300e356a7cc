import { AVAILABLE, InputStatus, type ReaderOutput, type SourceReader } from '../source.js';

/**
 * A run of indices next, next+step, ... below end. Sources over index spaces keep their
 * position as a list of these (Flink's operator list state), so a restored job can deal them
 * out to any number of subtasks.
 */
export interface ProgressionSplit {
  next: number;
  step: number;
  end: number;
}

export interface ProgressionReader<T> extends SourceReader<T> {
  snapshotState(): ProgressionSplit[];
}

/** Emits `make(index)` for every index of its splits, in order, at most `budget()` per poll. */
export function progressionReader<T>(
  splits: ProgressionSplit[],
  make: (index: number) => T,
  limit?: { budget(): number; available(): Promise<void> },
): ProgressionReader<T> {
  const queue = splits.filter((s) => s.next < s.end).map((s) => ({ ...s }));
  return {
    pollNext(out: ReaderOutput<T>): InputStatus {
      // small batches: a source emits a whole poll even when its output is full
      let budget = 64;
      if (limit) {
        budget = Math.min(budget, limit.budget());
        if (budget <= 0) return InputStatus.NOTHING_AVAILABLE;
      }
      while (budget > 0 && queue.length > 0) {
        const s = queue[0]!;
        while (budget > 0 && s.next < s.end) {
          out.collect(make(s.next));
          s.next += s.step;
          budget--;
        }
        if (s.next >= s.end) queue.shift();
      }
      return queue.length > 0 ? InputStatus.MORE_AVAILABLE : InputStatus.END_OF_INPUT;
    },
    isAvailable: () => (limit ? limit.available() : AVAILABLE),
    snapshotState: () => queue.map((s) => ({ ...s })),
  };
}
