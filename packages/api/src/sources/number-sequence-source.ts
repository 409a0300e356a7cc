import type { Source, SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';
import { progressionReader, type ProgressionSplit } from './progression-reader.js';

/** Integers from..to inclusive, split into one contiguous range per subtask. */
export class NumberSequenceSource implements Source<number> {
  readonly boundedness = 'BOUNDED' as const;
  constructor(
    readonly from: number,
    readonly to: number,
  ) {
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to))
      throw new Error(`fromSequence needs integers, got ${from}..${to}`);
    if (from > to) throw new Error(`fromSequence needs from <= to, got ${from}..${to}`);
  }

  createReader(ctx: TaskInfo, restored?: unknown[]): SourceReader<number> {
    const total = this.to - this.from + 1;
    const start = this.from + Math.floor((total * ctx.subtaskIndex) / ctx.parallelism);
    const end = this.from + Math.floor((total * (ctx.subtaskIndex + 1)) / ctx.parallelism);
    const splits = (restored as ProgressionSplit[] | undefined) ?? [{ next: start, step: 1, end }];
    return progressionReader(splits, (v) => v);
  }
}
