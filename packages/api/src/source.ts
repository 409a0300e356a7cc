import type { TaskInfo } from './runtime-context.js';

export enum InputStatus {
  /** the reader can be polled again right away */
  MORE_AVAILABLE = 'MORE_AVAILABLE',
  /** nothing now; poll again once `isAvailable()` resolves */
  NOTHING_AVAILABLE = 'NOTHING_AVAILABLE',
  /** the reader is exhausted; a bounded source ends here */
  END_OF_INPUT = 'END_OF_INPUT',
}

export interface ReaderOutput<T> {
  collect(record: T): void;
}

/**
 * Pull-based reader, after Flink's FLIP-27 SourceReader: the task polls it whenever the
 * output has room, so backpressure reaches the source without a Promise per record. One
 * call may emit many records (a few hundred keeps the task responsive).
 */
export interface SourceReader<T> {
  start?(): void | Promise<void>;
  pollNext(output: ReaderOutput<T>): InputStatus;
  /** resolves when a NOTHING_AVAILABLE reader has data again */
  isAvailable(): Promise<void>;
  close?(): void | Promise<void>;
  /**
   * The reader's position as a list of splits (Flink's operator list state): kept in each
   * checkpoint, and on restore dealt out round-robin to the new subtasks.
   */
  snapshotState?(checkpointId?: number): unknown[];
  /**
   * Resolves once the reader may snapshot: a reader waiting for splits from its enumerator
   * takes them in before the barrier, so a split is in exactly one of the two checkpoints.
   */
  checkpointReady?(): Promise<void> | undefined;
}

/** A reader's line to its source's split enumerator on the JobManager. */
export interface SplitRequester {
  /**
   * Takes the splits assigned to this subtask. `lastCheckpointId`: the last checkpoint whose
   * barrier the reader emitted (splits assigned after a later enumerator snapshot wait for
   * it); `wantMore`: the reader has nothing to read and asks the enumerator for a split.
   */
  request(lastCheckpointId: number, wantMore: boolean): Promise<{ splits: unknown[]; noMoreSplits: boolean }>;
}

export type Boundedness = 'BOUNDED' | 'CONTINUOUS_UNBOUNDED';

export interface Source<T> {
  readonly boundedness: Boundedness;
  /** sources that can only run as one subtask (a socket) say so; the graph caps their parallelism */
  readonly maxParallelism?: number;
  /**
   * `restored`: the splits this subtask resumes from, when the job was restored; `requester`:
   * given to sources with a split enumerator, to ask it for splits.
   */
  createReader(context: TaskInfo, restored?: unknown[], requester?: SplitRequester): SourceReader<T>;
}

export const AVAILABLE: Promise<void> = Promise.resolve();
