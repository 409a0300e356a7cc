import { createCheckpointStorage, type CheckpointStorage, type JobGraph, type Logger } from '@weir/core';
import type { RetainedCheckpoint } from './checkpoint-coordinator.js';
import type { JobHistory } from './job-history.js';

/** What a JobManager needs to resume a job it did not start. */
export interface StoredJob {
  jobId: string;
  graph: JobGraph;
  jobContextJson: string;
  bundle: Buffer;
  /** the savepoint the job was submitted with, if any */
  restorePath: string;
  allowNonRestoredState: boolean;
  submittedAt: number;
  retained: RetainedCheckpoint[];
  highestCheckpointId: number;
  /** absent for a job stored before it had any */
  history?: JobHistory;
}

interface JobFile {
  version: 1;
  jobId: string;
  graph: JobGraph;
  jobContextJson: string;
  restorePath: string;
  allowNonRestoredState: boolean;
  submittedAt: number;
}

interface CheckpointsFile {
  retained: RetainedCheckpoint[];
  highestCheckpointId: number;
}

/**
 * The standalone form of Flink's high availability: job graphs, bundles and pointers to the
 * completed checkpoints of running jobs, kept in durable storage (a directory or S3), so a
 * JobManager restarted on the same storage resumes every job that was running. Entries go
 * when a job reaches a terminal state.
 */
export class JobStore {
  private readonly storage: CheckpointStorage;

  constructor(
    readonly uri: string,
    private readonly log: Logger,
  ) {
    this.storage = createCheckpointStorage(uri);
  }

  async putJob(job: Omit<StoredJob, 'retained' | 'highestCheckpointId' | 'history'>): Promise<void> {
    const file: JobFile = {
      version: 1,
      jobId: job.jobId,
      graph: job.graph,
      jobContextJson: job.jobContextJson,
      restorePath: job.restorePath,
      allowNonRestoredState: job.allowNonRestoredState,
      submittedAt: job.submittedAt,
    };
    await this.storage.write(`jobs/${job.jobId}/bundle.js`, job.bundle);
    // job.json last: a job without it was never fully stored and is not recovered
    await this.storage.write(`jobs/${job.jobId}/job.json`, Buffer.from(JSON.stringify(file)));
  }

  /**
   * Written before a checkpoint id is used (so a new JobManager never hands it out again) and
   * before tasks hear of a completion (so no output is committed for a checkpoint a new
   * JobManager would not know); the coordinator makes one call at a time.
   */
  async putCheckpoints(
    jobId: string,
    retained: RetainedCheckpoint[],
    highestCheckpointId: number,
  ): Promise<void> {
    const file: CheckpointsFile = { retained, highestCheckpointId };
    await this.storage.write(`jobs/${jobId}/checkpoints.json`, Buffer.from(JSON.stringify(file)));
  }

  /** The job's checkpoint statistics, restarts and failures (`history.json`), newest state wins. */
  async putHistory(jobId: string, history: JobHistory): Promise<void> {
    await this.storage.write(`jobs/${jobId}/history.json`, Buffer.from(JSON.stringify(history)));
  }

  async removeJob(jobId: string): Promise<void> {
    await this.storage.deleteDir(`jobs/${jobId}`);
  }

  /** Every stored job; one that cannot be read is reported and skipped, not fatal. */
  async recoverJobs(): Promise<StoredJob[]> {
    const out: StoredJob[] = [];
    for (const jobId of await this.storage.list('jobs')) {
      try {
        const names = await this.storage.list(`jobs/${jobId}`);
        if (!names.includes('job.json')) {
          this.log.warn(
            { jobId, store: this.uri },
            'skipping a job entry without job.json (its submission never completed)',
          );
          continue;
        }
        const file = JSON.parse(
          (await this.storage.read(`jobs/${jobId}/job.json`)).toString('utf8'),
        ) as JobFile;
        if (file.version !== 1 || file.jobId !== jobId) throw new Error('unexpected content in job.json');
        const bundle = await this.storage.read(`jobs/${jobId}/bundle.js`);
        const cps: CheckpointsFile = names.includes('checkpoints.json')
          ? (JSON.parse(
              (await this.storage.read(`jobs/${jobId}/checkpoints.json`)).toString('utf8'),
            ) as CheckpointsFile)
          : { retained: [], highestCheckpointId: 0 };
        // statistics are for people: unreadable ones cost the history, not the job
        const history = names.includes('history.json')
          ? await this.storage
              .read(`jobs/${jobId}/history.json`)
              .then((b) => JSON.parse(b.toString('utf8')) as JobHistory)
              .catch((err: Error) => {
                this.log.warn({ jobId, err: err.message }, 'cannot read the job history; starting a new one');
                return undefined;
              })
          : undefined;
        out.push({
          ...file,
          bundle,
          retained: cps.retained,
          highestCheckpointId: cps.highestCheckpointId,
          ...(history ? { history } : {}),
        });
      } catch (err) {
        this.log.error(
          { jobId, store: this.uri, err: (err as Error).message },
          'cannot recover a stored job; leaving it in place',
        );
      }
    }
    return out;
  }
}
