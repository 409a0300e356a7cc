import type * as grpc from '@grpc/grpc-js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import os from 'node:os';
import {
  controlProto,
  createClient,
  TASKMANAGER_SESSION_HEADER,
  unary,
  type HealthReporter,
  type JobManagerGatewayClient,
  type JobManagerHeartbeat__Output,
  type RunningJob__Output,
  type Logger,
  type TaskExecutionStateUpdate,
  type TaskManagerHeartbeat,
  type ProcessMetrics,
  type TaskMetrics,
  type RegisterTaskManagerResponse__Output,
} from '@weir/core';
import type { FromWorker } from './worker-protocol.js';

export type TaskStateReport = Required<Pick<TaskExecutionStateUpdate, 'jobId' | 'executionId' | 'state'>> &
  Pick<TaskExecutionStateUpdate, 'failure' | 'endOfData' | 'restoreDurationMs'>;

export interface JobManagerConnectionOptions {
  jobManagerAddress: string;
  taskManagerId: string;
  slots: number;
  /** this TaskManager's address, known once its server is bound */
  address: () => string;
  /** the latest metrics of every task, sent with each heartbeat and state report */
  metrics: Map<string, TaskMetrics>;
  /** this process's own figures, sent with each heartbeat */
  processMetrics: () => ProcessMetrics;
  /** host:port of the Prometheus endpoint, empty when there is none */
  metricsAddress: () => string;
  health: HealthReporter;
  log: Logger;
  /** the JobManager was lost: every task is canceled before registering again */
  onLost: () => void;
  /** the jobs the JobManager has not ended, with each heartbeat it sends */
  onRunningJobs: (jobs: RunningJob__Output[]) => void;
}

/**
 * The TaskManager's side of its JobManager (Flink's JobLeaderService and the TaskExecutor's
 * ResourceManager connection in one): registration with retries, the heartbeat stream whose loss
 * cancels every task and registers again, and the reports a task sends up (state, collected
 * records, checkpoint acknowledgements, job bundles).
 */
export class JobManagerConnection {
  private registrationId = '';
  /**
   * The session of the latest registration attempt: only the JobManager that received it can
   * present it, so calls without it come from someone else (see acceptsJobManager).
   */
  private session = '';
  private readonly jm: JobManagerGatewayClient;
  private heartbeat: grpc.ClientDuplexStream<TaskManagerHeartbeat, JobManagerHeartbeat__Output> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly bundles = new Map<string, Promise<string>>();
  /** collected records of each execution, reported in order and before its final state */
  private readonly collectReports = new Map<string, Promise<void>>();
  private stopping = false;

  constructor(private readonly opts: JobManagerConnectionOptions) {
    // every call names this TaskManager's registration (see acceptsJobManager for the other way)
    this.jm = createClient(controlProto.JobManagerGateway, opts.jobManagerAddress, undefined, {
      [TASKMANAGER_SESSION_HEADER]: () => this.session,
    });
  }

  private get id(): string {
    return this.opts.taskManagerId;
  }

  private get log(): Logger {
    return this.opts.log;
  }

  private get metrics(): Map<string, TaskMetrics> {
    return this.opts.metrics;
  }

  private get health(): HealthReporter {
    return this.opts.health;
  }

  async register(): Promise<void> {
    let delay = 200;
    while (!this.stopping) {
      try {
        // new for every attempt: the JobManager refuses a session it has seen (a replay), and
        // set before sending, as the JobManager may deploy before its answer arrives here
        this.session = randomBytes(24).toString('base64url');
        const res = await unary<RegisterTaskManagerResponse__Output>(
          this.jm.RegisterTaskManager.bind(this.jm),
          {
            taskManagerId: this.id,
            address: this.opts.address(),
            slots: this.opts.slots,
            pid: process.pid,
            hostname: os.hostname(),
            session: this.session,
            metricsAddress: this.opts.metricsAddress(),
          },
          5_000,
        );
        if (!res.accepted) throw new Error(res.reason || 'registration refused');
        this.registrationId = res.registrationId;
        this.log.info(
          { jobManager: this.opts.jobManagerAddress, registrationId: res.registrationId },
          'registered at JobManager',
        );
        this.startHeartbeat(
          Number(res.heartbeatIntervalMs) || 1000,
          Number(res.heartbeatTimeoutMs) || 10_000,
        );
        this.health.set('SERVING');
        return;
      } catch (err) {
        this.log.warn(
          { jobManager: this.opts.jobManagerAddress, err: (err as Error).message },
          'cannot register at JobManager, retrying',
        );
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  /**
   * Whether a call to this TaskManager's gateway comes from the JobManager it registered with:
   * it must carry the session of the current registration (constant-time comparison).
   */
  acceptsJobManager(presented: unknown): boolean {
    if (typeof presented !== 'string' || !this.session) return false;
    const a = Buffer.from(presented);
    const b = Buffer.from(this.session);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * Heartbeats both ways: the JobManager times out a silent TaskManager, and a TaskManager times
   * out a silent JobManager (Flink's heartbeat targets on both sides). Without the second, a
   * TaskManager cut off from the JobManager (but not from its peers) runs its tasks on until
   * gRPC keepalive gives up, writing output and checkpoint files of an attempt the JobManager
   * has already failed over.
   */
  private startHeartbeat(intervalMs: number, timeoutMs: number): void {
    const stream = this.jm.Heartbeat();
    this.heartbeat = stream;
    let lastHeard = Date.now();
    const beat = (): void => {
      const silentMs = Date.now() - lastHeard;
      if (silentMs > timeoutMs) {
        onLost(
          `no heartbeat from the JobManager for ${Math.round(silentMs / 1000)} s (timeout ${timeoutMs / 1000} s)`,
        );
        stream.cancel();
        return;
      }
      const proc = this.opts.processMetrics();
      stream.write({
        taskManagerId: this.id,
        registrationId: this.registrationId,
        metrics: [...this.metrics.values()],
        rssBytes: proc.rssBytes,
        heapUsedBytes: proc.heapUsedBytes,
        process: proc,
      });
    };
    beat();
    this.heartbeatTimer = setInterval(beat, intervalMs);
    let lost = false;
    const onLost = (why: string): void => {
      if (lost || this.stopping) return;
      lost = true;
      clearInterval(this.heartbeatTimer);
      this.health.set('NOT_SERVING');
      this.log.error({ reason: why }, 'lost the JobManager; canceling all tasks and registering again');
      this.opts.onLost();
      void this.register();
    };
    stream.on('data', (hb: JobManagerHeartbeat__Output) => {
      lastHeard = Date.now();
      for (const jobId of this.bundles.keys())
        if (!hb.runningJobs.some((j) => j.jobId === jobId)) this.bundles.delete(jobId);
      this.opts.onRunningJobs(hb.runningJobs);
    });
    stream.on('error', (err: Error) => onLost(err.message));
    stream.on('end', () => onLost('heartbeat stream closed by the JobManager'));
  }

  reportState(update: TaskStateReport): void {
    const metrics = this.metrics.get(update.executionId);
    unary(
      this.jm.UpdateTaskExecutionState.bind(this.jm),
      { ...update, taskManagerId: this.id, ...(metrics ? { metrics } : {}) },
      10_000,
    ).catch((err: Error) =>
      this.log.warn({ executionId: update.executionId, err: err.message }, 'could not report task state'),
    );
  }

  fetchBundle(jobId: string): Promise<string> {
    let p = this.bundles.get(jobId);
    if (!p) {
      p = new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const call = this.jm.GetJobBundle({ jobId });
        call.on('data', (c: { data: Buffer }) => chunks.push(c.data));
        call.on('error', (err: Error) =>
          reject(new Error(`Cannot download the bundle of job ${jobId}: ${err.message}`)),
        );
        call.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      });
      this.bundles.set(jobId, p);
      p.catch(() => this.bundles.delete(jobId));
    }
    return p;
  }

  /** Collected records of an execution, reported in order. */
  reportCollected(jobId: string, msg: Extract<FromWorker, { t: 'collected' }>): void {
    const prev = this.collectReports.get(msg.executionId) ?? Promise.resolve();
    this.collectReports.set(
      msg.executionId,
      prev.then(() =>
        unary<unknown>(
          this.jm.ReportCollectedRecords.bind(this.jm),
          { jobId, executionId: msg.executionId, batch: Buffer.from(msg.bytes) },
          30_000,
        ).then(
          () => {},
          (err: Error) =>
            this.log.warn(
              { executionId: msg.executionId, err: err.message },
              'could not report collected records',
            ),
        ),
      ),
    );
  }

  /** A task's final state, after its collected records. */
  reportFinalState(update: TaskStateReport): void {
    const collected = this.collectReports.get(update.executionId);
    if (collected && update.state !== 'RUNNING') {
      this.collectReports.delete(update.executionId);
      void collected.then(() => this.reportState(update));
    } else {
      this.reportState(update);
    }
  }

  /** A source reader's split request, answered by its source's enumerator on the JobManager. */
  async requestSplits(
    jobId: string,
    msg: Extract<FromWorker, { t: 'splitRequest' }>,
  ): Promise<{ splitsJson: string; noMoreSplits: boolean }> {
    const { t: _t, requestId: _r, ...rest } = msg;
    const res = await unary<{ splitsJson: string; noMoreSplits: boolean }>(
      this.jm.RequestSplits.bind(this.jm),
      { jobId, ...rest },
      30_000,
    );
    return { splitsJson: res.splitsJson, noMoreSplits: res.noMoreSplits };
  }

  reportCheckpoint(
    jobId: string,
    msg: Extract<FromWorker, { t: 'checkpointAck' | 'checkpointDecline' }>,
  ): void {
    const { t, ...rest } = msg;
    const call =
      t === 'checkpointAck'
        ? this.jm.AcknowledgeCheckpoint.bind(this.jm)
        : this.jm.DeclineCheckpoint.bind(this.jm);
    unary<unknown>(call, { jobId, ...rest }, 30_000).catch((err: Error) =>
      this.log.warn(
        { executionId: msg.executionId, checkpointId: msg.checkpointId, err: err.message },
        'could not report checkpoint',
      ),
    );
  }

  /** Stops heartbeats (the stream ends after in-flight reports had a moment). */
  stopHeartbeats(): void {
    this.stopping = true;
    clearInterval(this.heartbeatTimer);
  }

  close(): void {
    this.heartbeat?.end();
    this.jm.close();
  }
}
