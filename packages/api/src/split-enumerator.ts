import type { SourceSplit } from './split-source.js';

/**
 * What an enumerator sees of the running job (FLIP-27's SplitEnumeratorContext). It lives on
 * the JobManager, one per source operator; every method is called on the JobManager's event
 * loop, never concurrently with the enumerator's own methods.
 */
export interface SplitEnumeratorContext<S extends SourceSplit> {
  /** the source operator's parallelism in this run */
  readonly currentParallelism: number;
  /** subtasks whose readers have registered in this run (they may ask for splits) */
  registeredReaders(): ReadonlySet<number>;
  /**
   * Hands `split` to the reader of `subtask`. From now on the split is the reader's: it is in the
   * reader's checkpoints, not the enumerator's, and comes back through `addSplitsBack` if the
   * reader fails before a checkpoint covers it.
   */
  assignSplit(split: S, subtask: number): void;
  /** `subtask` gets no more splits: a bounded reader ends once its splits end */
  signalNoMoreSplits(subtask: number): void;
  /**
   * Runs `callable` (I/O: listing subjects, partitions, files) off the enumerator's methods and
   * hands its result or error to `handler`, which may assign splits. With `periodMs` it repeats
   * (Flink's periodic partition discovery) until the enumerator closes.
   */
  callAsync<R>(
    callable: () => Promise<R>,
    handler: (result: R | undefined, error: Error | undefined) => void,
    initialDelayMs?: number,
    periodMs?: number,
  ): void;
}

/**
 * Discovers splits and decides which reader reads which (FLIP-27's SplitEnumerator). The
 * JobManager runs one per source operator for the life of a job attempt; its state is part
 * of every checkpoint (the splits not handed out yet) and restored with it.
 */
export interface SplitEnumerator<S extends SourceSplit, E> {
  /** called once before any reader registers; start periodic discovery here */
  start(): void | Promise<void>;
  /** the reader of `subtask` has no split left to read and asks for one */
  handleSplitRequest(subtask: number): void;
  /**
   * Splits come back: assigned to a reader after the checkpoint the job restored from, so no
   * reader has them now. Assign them again.
   */
  addSplitsBack(splits: S[], subtask: number): void;
  /** the reader of `subtask` registered (at every start of its task) */
  addReader(subtask: number): void;
  /** the enumerator's state at checkpoint `checkpointId` (what it has not assigned); must be JSON */
  snapshotState(checkpointId: number): E;
  close?(): void | Promise<void>;
}
