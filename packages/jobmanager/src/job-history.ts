import type { CheckpointStats } from '@weir/core';
import type { JobRestart } from './job-restarts.js';

/** One failure of a job, as the REST API's exception history shows it. */
export interface JobException {
  timestamp: number;
  message: string;
  stack: string;
  /** the task that failed, e.g. "Count (2/4)"; empty for a job-wide cause */
  taskName: string;
  /** the TaskManager it ran on */
  location: string;
  /** what followed: a restart of the job, or its end */
  restarted: boolean;
}

/** A checkpoint the job restored from (Flink's RestoredCheckpointStats). */
export interface RestoredCheckpoint {
  id: number;
  path: string;
  restoreTimestamp: number;
  savepoint: boolean;
}

/**
 * What the REST API shows about a job's past, kept with the job so a restarted JobManager
 * shows it too: checkpoint statistics (failed ones included), restarts with their recovery
 * timings, and failures.
 */
export interface JobHistory {
  checkpoints: {
    counts: { completed: number; failed: number; restored: number };
    history: CheckpointStats[];
    latestRestored?: RestoredCheckpoint;
  };
  restarts: JobRestart[];
  exceptions: JobException[];
}
