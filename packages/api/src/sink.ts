import type { TaskInfo } from './runtime-context.js';

/** Writes one subtask's records; `close` runs once the input ended or the task is canceled. */
export interface SinkWriter<T> {
  /** connects and checks the destination before the task runs; a rejection fails the task */
  open?(): Promise<void>;
  write(record: T): void;
  /**
   * Undefined while the writer takes records; else a promise that resolves once it does again
   * (e.g. its batches in flight to a slow database are at their bound). The task stops reading
   * input meanwhile, so a slow destination slows the job instead of growing the writer's memory.
   * Called once per input buffer, not per record, so a writer may go a buffer beyond its bound.
   */
  isAvailable?(): Promise<void> | undefined;
  /** called at the end of input so buffered records reach their destination */
  flush?(endOfInput: boolean): void | Promise<void>;
  /**
   * The synchronous part of a checkpoint, at the barrier: make what was written so far
   * committable and return what must survive a failure (kept as union list state, so every
   * subtask sees all of it on restore). Values must be JSON.
   */
  snapshotState?(checkpointId: number): unknown[];
  /**
   * The asynchronous rest of the pre-commit `snapshotState` started (PREPARE TRANSACTION,
   * waiting for publish acknowledgements): the checkpoint is acknowledged only once this
   * resolves, and declined if it rejects. Keeps the barrier itself free of I/O.
   */
  preCommitted?(checkpointId: number): Promise<void> | undefined;
  /** checkpoint `checkpointId` completed everywhere: commit what it covers */
  notifyCheckpointComplete?(checkpointId: number): void | Promise<void>;
  notifyCheckpointAborted?(checkpointId: number): void;
  close?(): void | Promise<void>;
}

export interface Sink<T> {
  /** `restoredState`: the snapshotState() items of every subtask of the restored checkpoint */
  createWriter(context: TaskInfo, restoredState?: unknown[]): SinkWriter<T>;
}
