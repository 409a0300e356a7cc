import type {
  AggregatingState,
  AggregatingStateDescriptor,
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ReducingState,
  ReducingStateDescriptor,
  ValueState,
  ValueStateDescriptor,
} from './state.js';

/** What a running function can learn about its subtask and where it gets keyed state. */
export interface RuntimeContext {
  getJobId(): string;
  getTaskName(): string;
  getIndexOfThisSubtask(): number;
  getNumberOfParallelSubtasks(): number;
  getMaxNumberOfParallelSubtasks(): number;
  getAttemptNumber(): number;
  getState<T>(descriptor: ValueStateDescriptor<T>): ValueState<T>;
  getListState<T>(descriptor: ListStateDescriptor<T>): ListState<T>;
  getMapState<UK, UV>(descriptor: MapStateDescriptor<UK, UV>): MapState<UK, UV>;
  getReducingState<T>(descriptor: ReducingStateDescriptor<T>): ReducingState<T>;
  getAggregatingState<IN, ACC, OUT>(
    descriptor: AggregatingStateDescriptor<IN, ACC, OUT>,
  ): AggregatingState<IN, OUT>;
  /** Operator (non-keyed) state of this subtask, kept in checkpoints; values must be JSON. */
  getOperatorStateStore(): OperatorStateStore;
}

/**
 * Per-subtask list state, after Flink's OperatorStateStore. On restore at another
 * parallelism, list state is split round-robin over the new subtasks and union list state is
 * given whole to every subtask. Restored contents are there in `open()`.
 */
export interface OperatorStateStore {
  getListState<T>(descriptor: ListStateDescriptor<T>): ListState<T>;
  getUnionListState<T>(descriptor: ListStateDescriptor<T>): ListState<T>;
}

/** The subtask facts handed to sources and sinks when the runtime creates their readers and writers. */
export interface TaskInfo {
  jobId: string;
  taskName: string;
  subtaskIndex: number;
  parallelism: number;
  attemptNumber: number;
  /** the directory relative paths in the job resolve against (the submitting client's cwd) */
  workingDirectory: string;
  /** set when the task was deployed with the state of this checkpoint or savepoint */
  restoredCheckpointId?: number;
  /** periodic checkpoints are on, so sinks can commit in two phases */
  checkpointingEnabled?: boolean;
  /** set by the runtime: hands a batch of a collecting sink's records to the client */
  emitCollected?: (records: unknown[]) => void;
}
