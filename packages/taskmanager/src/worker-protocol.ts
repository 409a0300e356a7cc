import type { TaskDeploymentDescriptor__Output, TaskFailure, TaskMetrics } from '@weir/core/runtime';
import type { SlotWorkerData } from './slot-worker.js';

/**
 * Messages between the TaskManager's main thread (gRPC, routing) and a slot's worker thread
 * (tasks). Buffers move with their ArrayBuffer transferred, never copied again.
 */
export type FrameKind = 'buffer' | 'event';

export type ToWorker =
  /** a spare worker's first message: the TaskManager that adopted it (see startSpareSlotWorkers) */
  | { t: 'identity'; data: SlotWorkerData }
  | { t: 'deploy'; tdd: TaskDeploymentDescriptor__Output; bundle: string }
  /** plan the bundle of a job ahead of any task of it (slot prewarming) */
  | { t: 'prewarm'; bundle: string; jobContextJson: string }
  | { t: 'cancel'; executionId: string }
  /** a frame for a consumer task's input channel */
  | { t: 'frame'; executionId: string; channel: number; kind: FrameKind; bytes: Uint8Array }
  /** a consumer asked for a subpartition of a producer task in this worker */
  /** `bufferSize` (both): how large the producer should make its buffers (buffer debloating) */
  | {
      t: 'subpartitionRequest';
      partitionId: string;
      subpartition: number;
      credit: number;
      bufferSize?: number;
    }
  | { t: 'credit'; partitionId: string; subpartition: number; credit: number; bufferSize?: number }
  /** the consumer of a subpartition went away (canceled, failed, or its TaskManager was lost) */
  | { t: 'subpartitionReleased'; partitionId: string; subpartition: number }
  | { t: 'channelError'; executionId: string; channel: number; message: string }
  | {
      t: 'triggerCheckpoint';
      executionId: string;
      checkpointId: number;
      timestamp: number;
      storage: string;
      directory: string;
      isSavepoint: boolean;
    }
  | { t: 'notifyCheckpoint'; executionId: string; checkpointId: number; completed: boolean; final: boolean }
  /** the JobManager's answer to a source reader's split request */
  | {
      t: 'splitAssignment';
      executionId: string;
      requestId: number;
      splitsJson: string;
      noMoreSplits: boolean;
      error?: string;
    };

export type FromWorker =
  | {
      t: 'taskState';
      executionId: string;
      state: 'RUNNING' | 'FINISHED' | 'CANCELED' | 'FAILED';
      failure?: TaskFailure;
      endOfData?: boolean;
      restoreDurationMs?: number;
    }
  | { t: 'partitionReady'; partitionId: string; executionId: string }
  | {
      t: 'openChannel';
      executionId: string;
      channel: number;
      partitionId: string;
      subpartition: number;
      producerAddress: string;
      producerTaskManagerId: string;
      credit: number;
      bufferSize?: number;
    }
  | { t: 'closeChannel'; executionId: string; channel: number }
  | { t: 'frame'; partitionId: string; subpartition: number; kind: FrameKind; bytes: Uint8Array }
  | { t: 'credit'; executionId: string; channel: number; credit: number; bufferSize?: number }
  | { t: 'partitionReleased'; partitionId: string }
  | { t: 'collected'; executionId: string; bytes: Uint8Array }
  | {
      t: 'checkpointAck';
      executionId: string;
      checkpointId: number;
      stateJson: string;
      syncDurationMs: number;
      asyncDurationMs: number;
      alignmentDurationMs: number;
      stateSizeBytes: number;
      /** bytes of in-flight data stored as channel state */
      persistedDataBytes: number;
      unaligned: boolean;
    }
  | { t: 'checkpointDecline'; executionId: string; checkpointId: number; reason: string }
  /** a source reader asks its source's split enumerator on the JobManager for splits */
  | {
      t: 'splitRequest';
      executionId: string;
      requestId: number;
      operatorId: string;
      subtaskIndex: number;
      lastCheckpointId: number;
      wantMore: boolean;
    }
  | { t: 'metrics'; metrics: TaskMetrics[] };
