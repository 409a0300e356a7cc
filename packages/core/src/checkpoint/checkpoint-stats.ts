import type { CheckpointSettings } from '@weir/api/internal';

/** One subtask's part of a checkpoint, as the coordinator records it. */
export interface SubtaskCheckpointStats {
  executionId: string;
  vertex: string;
  subtask: number;
  acknowledged: boolean;
  ackTime?: number;
  syncDurationMs?: number;
  asyncDurationMs?: number;
  alignmentDurationMs?: number;
  stateSizeBytes?: number;
  /** bytes of in-flight records stored as channel state (unaligned) */
  persistedDataBytes?: number;
  /** this subtask took the checkpoint unaligned */
  unaligned?: boolean;
}

export type CheckpointStatus = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';

/** One checkpoint or savepoint, as `weir checkpoints` shows it (Flink's AbstractCheckpointStats). */
export interface CheckpointStats {
  id: number;
  savepoint: boolean;
  status: CheckpointStatus;
  triggerTime: number;
  endTime?: number;
  durationMs?: number;
  stateSizeBytes: number;
  failureReason?: string;
  /** the largest per-subtask figures, for a one-line summary */
  maxSyncDurationMs: number;
  maxAsyncDurationMs: number;
  maxAlignmentDurationMs: number;
  /** in-flight bytes stored as channel state, over all subtasks (absent in older records) */
  persistedDataBytes?: number;
  /** some subtask took it unaligned (Flink's `unaligned_checkpoint`) */
  unaligned?: boolean;
  path: string;
  subtasks: SubtaskCheckpointStats[];
}

/**
 * What `GetCheckpoints` answers (`stats_json`, Flink's CheckpointStatsSnapshot): the counts, the
 * latest completed checkpoint and the recent history, or `disabled` for a job without checkpoints.
 */
export interface CheckpointStatsSnapshot {
  disabled?: boolean;
  counts?: { completed: number; failed: number; inProgress: number };
  latestCompleted?: CheckpointStats;
  history?: CheckpointStats[];
  settings?: CheckpointSettings;
}
