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
  snapshotState?(): unknown[];
}

export type Boundedness = 'BOUNDED' | 'CONTINUOUS_UNBOUNDED';

export interface Source<T> {
  readonly boundedness: Boundedness;
  /** sources that can only run as one subtask (a socket) say so; the graph caps their parallelism */
  readonly maxParallelism?: number;
  /** `restored`: the splits this subtask resumes from, when the job was restored */
  createReader(context: TaskInfo, restored?: unknown[]): SourceReader<T>;
}

export const AVAILABLE: Promise<void> = Promise.resolve();
