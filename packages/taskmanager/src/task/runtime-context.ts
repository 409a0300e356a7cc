import type {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  RuntimeContext,
  TaskInfo,
  ValueStateDescriptor,
} from '@weir/api';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import type { OperatorStateBackend } from '../state/operator-state-backend.js';

export interface SubtaskInfo extends TaskInfo {
  maxParallelism: number;
  /** set when the task was deployed with the state of a checkpoint or savepoint */
  restoredCheckpointId?: number;
}

/** The runtime context of one operator in one subtask; keyed state only on keyed streams. */
export class StreamingRuntimeContext implements RuntimeContext {
  constructor(
    private readonly info: SubtaskInfo,
    private readonly keyed: KeyedStateBackend | undefined,
    private readonly operatorState: OperatorStateBackend,
  ) {}

  getOperatorStateStore(): OperatorStateBackend {
    return this.operatorState;
  }

  private backend(what: string): KeyedStateBackend {
    if (!this.keyed) {
      throw new Error(
        `Keyed state (${what}) is only available on a keyed stream: apply the function after keyBy()`,
      );
    }
    return this.keyed;
  }

  getJobId(): string {
    return this.info.jobId;
  }
  getTaskName(): string {
    return this.info.taskName;
  }
  getIndexOfThisSubtask(): number {
    return this.info.subtaskIndex;
  }
  getNumberOfParallelSubtasks(): number {
    return this.info.parallelism;
  }
  getMaxNumberOfParallelSubtasks(): number {
    return this.info.maxParallelism;
  }
  getAttemptNumber(): number {
    return this.info.attemptNumber;
  }

  getState<T>(d: ValueStateDescriptor<T>) {
    return this.backend(`'${d.name}'`).getState(d);
  }
  getListState<T>(d: ListStateDescriptor<T>) {
    return this.backend(`'${d.name}'`).getListState(d);
  }
  getMapState<UK, UV>(d: MapStateDescriptor<UK, UV>) {
    return this.backend(`'${d.name}'`).getMapState(d);
  }
  getReducingState<T>(d: ReducingStateDescriptor<T>) {
    return this.backend(`'${d.name}'`).getReducingState(d);
  }
  getAggregatingState<IN, ACC, OUT>(d: AggregatingStateDescriptor<IN, ACC, OUT>) {
    return this.backend(`'${d.name}'`).getAggregatingState(d);
  }
}
