import { InputStatus, type SourceReader } from '../source.js';
import type { TaskInfo } from '../runtime-context.js';
import {
  SplitSource,
  SplitSourceReader,
  type SourceSplit,
  type SplitReader,
  type SplitReaderOutput,
} from '../split-source.js';

/**
 * A run of indices next, next+step, ... below end. Sources over index spaces keep their
 * position as a list of these (Flink's operator list state), so a restored job can deal them
 * out to any number of subtasks. `splitId` is absent in checkpoints written before these
 * sources were split sources; such splits get one from their fields on restore.
 */
export interface ProgressionSplit extends SourceSplit {
  next: number;
  step: number;
  end: number;
}

/** How many records a subtask may emit now (a rate limit), and when it may again. */
export interface EmitLimit {
  budget(): number;
  available(): Promise<void>;
}

const NOW: Promise<void> = Promise.resolve();

/** Emits `make(index)` for every index of its split, in order, at most `budget` per fetch. */
export class ProgressionSplitReader<T> implements SplitReader<T, ProgressionSplit> {
  private readonly s: ProgressionSplit;
  constructor(
    split: ProgressionSplit,
    private readonly make: (index: number) => T,
    private readonly limit?: EmitLimit,
  ) {
    this.s = { ...split };
  }

  fetch(out: SplitReaderOutput<T>, budget: number): InputStatus {
    const s = this.s;
    if (this.limit) {
      budget = Math.min(budget, this.limit.budget());
      if (budget <= 0) return s.next < s.end ? InputStatus.NOTHING_AVAILABLE : InputStatus.END_OF_INPUT;
    }
    const make = this.make;
    let next = s.next;
    const { step, end } = s;
    while (budget-- > 0 && next < end) {
      out.collect(make(next));
      next += step;
    }
    s.next = next;
    return next < end ? InputStatus.MORE_AVAILABLE : InputStatus.END_OF_INPUT;
  }

  isAvailable(): Promise<void> {
    return this.limit ? this.limit.available() : NOW;
  }

  snapshot(): ProgressionSplit {
    return { ...this.s };
  }
}

/**
 * A source over an index space (collection, sequence, generator) on the split SDK: one split
 * per subtask, computed from the configuration, so subtask i reads what it always did.
 */
export abstract class ProgressionSource<T> extends SplitSource<T, ProgressionSplit> {
  protected abstract element(index: number): T;

  createSplitReader(split: ProgressionSplit): SplitReader<T, ProgressionSplit> {
    return new ProgressionSplitReader(split, (i) => this.element(i));
  }

  /** restored splits of checkpoints written before these were split sources have no id */
  protected restoredSplits(restored: unknown[] | undefined): ProgressionSplit[] | undefined {
    return restored?.map((raw) => {
      const s = raw as Omit<ProgressionSplit, 'splitId'> & { splitId?: string };
      return { ...s, splitId: s.splitId ?? `restored:${s.next}:${s.step}:${s.end}` };
    });
  }

  override createReader(context: TaskInfo, restored?: unknown[]): SourceReader<T> {
    return super.createReader(context, this.restoredSplits(restored));
  }
}

/** Readers of `splits` under one subtask-wide limit (the data generator's rate). */
export function limitedProgressionReader<T>(
  splits: ProgressionSplit[],
  make: (index: number) => T,
  limit: EmitLimit,
  bounded: boolean,
): SplitSourceReader<T, ProgressionSplit> {
  return new SplitSourceReader(
    splits.map((s) => new ProgressionSplitReader(s, make, limit)),
    bounded,
  );
}
