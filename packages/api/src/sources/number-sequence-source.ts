import { ProgressionSource, type ProgressionSplit } from './progression-reader.js';

/** Integers from..to inclusive, split into one contiguous range per subtask. */
export class NumberSequenceSource extends ProgressionSource<number> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(
    readonly from: number,
    readonly to: number,
  ) {
    super();
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to))
      throw new Error(`fromSequence needs integers, got ${from}..${to}`);
    if (from > to) throw new Error(`fromSequence needs from <= to, got ${from}..${to}`);
  }

  createSplits(parallelism: number): ProgressionSplit[] {
    const total = this.to - this.from + 1;
    return Array.from({ length: parallelism }, (_, i) => ({
      splitId: `sequence-${i}`,
      next: this.from + Math.floor((total * i) / parallelism),
      step: 1,
      end: this.from + Math.floor((total * (i + 1)) / parallelism),
    }));
  }

  protected element(index: number): number {
    return index;
  }
}
