import { AVAILABLE, InputStatus, type ReaderOutput, type Source, type SourceReader } from './source.js';
import type { TaskInfo } from './runtime-context.js';

/**
 * A unit of source work, after FLIP-27's SourceSplit: a partition, a subject filter, a key
 * range. It is plain JSON and carries its own position, so a checkpoint of a reader is the
 * list of its splits as they stand.
 */
export interface SourceSplit {
  readonly splitId: string;
}

/**
 * What a split reader emits into. `timestamp` is the record's event time as the external
 * system knows it (message time, row column); `createOutputForSplit` is the hook for
 * per-split watermark generation: a runtime that offers it gets every split's records
 * through that split's own output.
 */
export interface SplitReaderOutput<T> extends ReaderOutput<T> {
  collect(record: T, timestamp?: number): void;
  createOutputForSplit?(splitId: string): ReaderOutput<T> & { collect(record: T, timestamp?: number): void };
  releaseOutputForSplit?(splitId: string): void;
}

/** Reads one split; the task polls it through the source's reader. */
export interface SplitReader<T, S extends SourceSplit> {
  /** connects and seeks to the split's position (the restored one on restore) */
  start?(): void | Promise<void>;
  /**
   * Emits at most `budget` records of this split. END_OF_INPUT: the split is finished (a
   * bounded split reached its end) and is dropped from later checkpoints.
   */
  fetch(output: SplitReaderOutput<T>, budget: number): InputStatus;
  /** resolves when a NOTHING_AVAILABLE split has records again */
  isAvailable(): Promise<void>;
  /** the split with its position after the last record emitted; must be JSON */
  snapshot(): S;
  close?(): void | Promise<void>;
}

/**
 * A source made of splits, in the shape of FLIP-27. The splits are enumerated from the
 * source's configuration alone (no I/O, so every subtask computes the same list) and dealt out
 * deterministically: split k to subtask k % parallelism. After that the splits live in
 * checkpoints with their positions; on restore the runtime deals the checkpointed splits
 * round-robin over the new subtasks, so failover and rescaling keep every position.
 */
export abstract class SplitSource<T, S extends SourceSplit> implements Source<T> {
  abstract readonly boundedness: Source<T>['boundedness'];
  /** every split of the source, in a fixed order */
  abstract createSplits(parallelism: number): S[];
  abstract createSplitReader(split: S, context: TaskInfo): SplitReader<T, S>;

  createReader(context: TaskInfo, restored?: unknown[]): SourceReader<T> {
    const splits =
      (restored as S[] | undefined) ??
      this.createSplits(context.parallelism).filter(
        (_, k) => k % context.parallelism === context.subtaskIndex,
      );
    return new SplitSourceReader(
      splits.map((s) => this.createSplitReader(s, context)),
      this.boundedness === 'BOUNDED',
    );
  }
}

const NEVER = new Promise<void>(() => {});
const POLL_BUDGET = 1024;

/**
 * Drives the split readers of one subtask: polls them in turn so no split starves another,
 * ends when every split of a bounded source ended, and snapshots every split's position.
 * An unbounded subtask without splits idles instead of ending, so it keeps taking part in
 * checkpoints.
 */
export class SplitSourceReader<T, S extends SourceSplit> implements SourceReader<T> {
  private next = 0;
  private outputs: Array<SplitReaderOutput<T> | undefined> = [];
  private lastOutput: SplitReaderOutput<T> | undefined;

  constructor(
    private readonly readers: Array<SplitReader<T, S>>,
    private readonly bounded: boolean,
  ) {}

  async start(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.start?.()));
  }

  pollNext(output: ReaderOutput<T>): InputStatus {
    const out = output as SplitReaderOutput<T>;
    if (out !== this.lastOutput) {
      this.lastOutput = out;
      this.outputs = this.readers.map((r) => out.createOutputForSplit?.(r.snapshot().splitId) ?? out);
    }
    const n = this.readers.length;
    if (n === 0) return this.bounded ? InputStatus.END_OF_INPUT : InputStatus.NOTHING_AVAILABLE;
    let more = false;
    const share = Math.max(64, Math.ceil(POLL_BUDGET / n));
    for (let turns = n; turns > 0 && this.readers.length > 0; turns--) {
      if (this.next >= this.readers.length) this.next = 0;
      const k = this.next;
      const status = this.readers[k]!.fetch(this.outputs[k]!, share);
      if (status === InputStatus.END_OF_INPUT) {
        const finished = this.readers.splice(k, 1)[0]!;
        this.outputs.splice(k, 1);
        out.releaseOutputForSplit?.(finished.snapshot().splitId);
        void finished.close?.();
      } else {
        if (status === InputStatus.MORE_AVAILABLE) more = true;
        this.next = k + 1;
      }
    }
    if (this.readers.length === 0 && this.bounded) return InputStatus.END_OF_INPUT;
    return more ? InputStatus.MORE_AVAILABLE : InputStatus.NOTHING_AVAILABLE;
  }

  isAvailable(): Promise<void> {
    if (this.readers.length === 0) return this.bounded ? AVAILABLE : NEVER;
    return Promise.race(this.readers.map((r) => r.isAvailable()));
  }

  snapshotState(): S[] {
    return this.readers.map((r) => r.snapshot());
  }

  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close?.()));
  }
}
