import { isCheckpointDamaged, type Logger, type TaskFailure } from '@weir/core';
import type { RetainedCheckpoint } from './checkpoint-coordinator.js';
import type { RestartBackoff } from './restart-backoff.js';

/**
 * Decides what a failure means for the job, after Flink's ExecutionFailureHandler with the
 * full-restart FailoverStrategy: every failure restarts the whole job if the restart strategy
 * (`RestartBackoff`) allows, except a restore of the latest checkpoint that found it damaged,
 * which fails the job (see `damagedCheckpointCause`).
 */
export class ExecutionFailureHandler {
  constructor(
    readonly backoff: RestartBackoff,
    private readonly log: Logger,
  ) {}

  /**
   * The cause of a task's failure, and whether it is a restore of `latest` (the checkpoint the
   * attempt restored) that found it damaged: restarting would fail again the same way.
   */
  taskFailure(
    failure: TaskFailure,
    parallelism: number,
    restoredCheckpointId: number,
    latest: RetainedCheckpoint | undefined,
  ): { cause: string; damaged: RetainedCheckpoint | undefined } {
    const cause = `${failure.vertexName} (${(failure.subtaskIndex ?? 0) + 1}/${parallelism}) failed: ${failure.message}`;
    const damaged =
      failure.domain === 'restore' &&
      isCheckpointDamaged(failure.reason) &&
      restoredCheckpointId > 0 &&
      latest?.id === restoredCheckpointId
        ? latest
        : undefined;
    return { cause, damaged };
  }

  /**
   * The delay before the restart, or undefined when the job must fail: `noRestart`, or the
   * restart strategy is exhausted (logged with its description).
   */
  restartDelay(cause: string, noRestart: boolean, restartsSoFar: number): number | undefined {
    const delay = noRestart ? undefined : this.backoff.onFailure();
    if (delay === undefined && (restartsSoFar > 0 || this.backoff.strategy.type !== 'none')) {
      this.log.error({ cause, restarts: restartsSoFar }, `not restarting: ${this.backoff.describe()}`);
    }
    return delay;
  }
}

/**
 * Why a job whose latest completed checkpoint is damaged fails instead of falling back: tasks
 * were notified of that checkpoint's completion as soon as it was recorded (and a restore of
 * it commits its pending transactions), so sinks may have committed output up to it, and
 * restoring an older checkpoint would write that output a second time.
 */
export function damagedCheckpointCause(
  damaged: RetainedCheckpoint,
  older: RetainedCheckpoint | undefined,
  cause: string,
): string {
  return (
    `Checkpoint ${damaged.id} (${damaged.path}) is damaged and cannot be restored: ${cause}. ` +
    `Sinks may already have committed output up to it, so the job does not fall back to an older ` +
    `checkpoint on its own (that would write the output a second time). To resume and accept ` +
    `that replay, submit the job again with --from-savepoint ` +
    (older
      ? `${older.path} (the retained checkpoint ${older.id}, kept since the job failed)`
      : 'an older savepoint') +
    '.'
  );
}
