import {
  createClient,
  dispatcherProto,
  parseCheckpointStatsSnapshot,
  unary,
  waitForReady,
  type CancelJobResponse__Output,
  type CheckpointStatsSnapshot,
  type ClusterOverview__Output,
  type DispatcherClient,
  type CollectedRecordsResponse__Output,
  type JobDetails__Output,
  type ListJobsResponse__Output,
  type SubmitJobResponse__Output,
} from '@weir/core';

/** The client's view of a JobManager: its Dispatcher service. */
export class ClusterClient {
  private readonly client: DispatcherClient;

  private constructor(readonly address: string) {
    this.client = createClient(dispatcherProto.Dispatcher, address);
  }

  /** Connects, or fails naming the address within `timeoutMs`. */
  static async connect(address: string, timeoutMs = 5_000): Promise<ClusterClient> {
    const c = new ClusterClient(address);
    try {
      await waitForReady(c.client, address, timeoutMs);
    } catch {
      c.close();
      throw new Error(
        `Cannot reach the JobManager at ${address} (no answer within ${timeoutMs / 1000} s). Is it running? Start one with \`weir cluster start\`.`,
      );
    }
    return c;
  }

  submit(
    jobName: string,
    jobGraphJson: string,
    bundle: string,
    jobContextJson: string,
    restore?: { path: string; allowNonRestoredState: boolean },
  ): Promise<SubmitJobResponse__Output> {
    return unary(
      this.client.SubmitJob.bind(this.client),
      {
        jobName,
        jobGraphJson,
        bundle: Buffer.from(bundle),
        jobContextJson,
        restorePath: restore?.path ?? '',
        allowNonRestoredState: restore?.allowNonRestoredState ?? false,
      },
      60_000,
    );
  }

  /** Takes a savepoint (and cancels the job after it, if asked); resolves to its directory. */
  async savepoint(jobId: string, target: string | undefined, cancelJob: boolean): Promise<string> {
    const r = await unary<{ path: string }>(
      this.client.TriggerSavepoint.bind(this.client),
      { jobId, target: target ?? '', cancelJob },
      600_000,
    );
    return r.path;
  }

  status(jobId: string): Promise<JobDetails__Output> {
    return unary(this.client.GetJobStatus.bind(this.client), { jobId }, 10_000);
  }

  list(): Promise<ListJobsResponse__Output> {
    return unary(this.client.ListJobs.bind(this.client), {}, 10_000);
  }

  cancel(jobId: string): Promise<CancelJobResponse__Output> {
    return unary(this.client.CancelJob.bind(this.client), { jobId }, 10_000);
  }

  collected(jobId: string): Promise<CollectedRecordsResponse__Output> {
    return unary(this.client.GetCollectedRecords.bind(this.client), { jobId }, 60_000);
  }

  /** Checkpoint statistics of a job (see CheckpointCoordinator.snapshotStats). */
  async checkpoints(jobId: string): Promise<CheckpointStatsSnapshot> {
    const r = await unary<{ statsJson: string }>(
      this.client.GetCheckpoints.bind(this.client),
      { jobId },
      10_000,
    );
    return parseCheckpointStatsSnapshot(r.statsJson, `checkpoint statistics of job ${jobId}`);
  }

  overview(): Promise<ClusterOverview__Output> {
    return unary(this.client.GetClusterOverview.bind(this.client), {}, 10_000);
  }

  close(): void {
    this.client.close();
  }
}
