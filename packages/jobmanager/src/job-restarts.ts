import type { Logger } from '@weir/core';

/** One failover, with the timings of its recovery (epoch ms, 0 until the step happened). */
export interface JobRestart {
  attempt: number;
  cause: string;
  detectedAt: number;
  canceledAt: number;
  deployedAt: number;
  runningAt: number;
  firstCheckpointAt: number;
  restoredCheckpointId: number;
  restoredFrom: string;
  stateRestoreMs: number;
  /** the pipelined region that restarted (region failover); '' when every task restarted */
  region: string;
}

/**
 * The failovers of a job and how long each recovery step took (detected, canceled, deployed,
 * running, first checkpoint), as `weir status` and the failover benchmark show them.
 */
export class JobRestarts {
  readonly all: JobRestart[] = [];

  constructor(private readonly log: Logger) {}

  get count(): number {
    return this.all.length;
  }

  /** The failover that started `attempt` (regions restart on their own, so not always the latest). */
  of(attempt: number): JobRestart | undefined {
    for (let i = this.all.length - 1; i >= 0; i--) if (this.all[i]!.attempt === attempt) return this.all[i];
    return undefined;
  }

  /** The latest failover: the one whose recovery is in progress. */
  latest(): JobRestart | undefined {
    return this.all[this.all.length - 1];
  }

  begin(attempt: number, cause: string, region = ''): void {
    this.all.push({
      attempt,
      cause,
      detectedAt: Date.now(),
      canceledAt: 0,
      deployedAt: 0,
      runningAt: 0,
      firstCheckpointAt: 0,
      restoredCheckpointId: 0,
      restoredFrom: '',
      stateRestoreMs: 0,
      region,
    });
  }

  deployed(attempt: number): void {
    const r = this.of(attempt);
    if (r) r.deployedAt = Date.now();
  }

  stateRestored(attempt: number, restoreDurationMs: number | undefined): void {
    const r = this.of(attempt);
    if (r && restoreDurationMs) r.stateRestoreMs = Math.max(r.stateRestoreMs, restoreDurationMs);
  }

  allRunning(attempt: number): void {
    const r = this.of(attempt);
    if (r && r.runningAt === 0) {
      r.runningAt = Date.now();
      this.log.info(
        { attempt, ...(r.region ? { region: r.region } : {}), recoveryMs: r.runningAt - r.detectedAt },
        'all tasks running again',
      );
    }
  }

  checkpointCompleted(checkpointId: number): void {
    // every failover since the last one that saw its first checkpoint (regions restart on their own)
    for (let i = this.all.length - 1; i >= 0 && this.all[i]!.firstCheckpointAt === 0; i--)
      this.firstCheckpoint(this.all[i]!, checkpointId);
  }

  private firstCheckpoint(r: JobRestart, checkpointId: number): void {
    if (r.runningAt > 0 && r.firstCheckpointAt === 0) {
      r.firstCheckpointAt = Date.now();
      this.log.info(
        { checkpointId, recoveryMs: r.firstCheckpointAt - r.detectedAt },
        'first checkpoint after the restart completed',
      );
    }
  }
}
