import { randomUUID } from 'node:crypto';
import {
  createCheckpointStorage, requiredSlots, unary, type ExecutionState, type JobDetails, type JobGraph, type JobStatus, type JobVertex, type Logger,
  type TaskDeploymentDescriptor, type TaskFailure, type TaskMetrics__Output, type Ack__Output,
} from '@weir/core';
import type { RegisteredTaskManager, ResourceManager, SlotAllocation } from './resource-manager.js';
import { CheckpointCoordinator, type CheckpointedJob } from './checkpoint-coordinator.js';
import { DEFAULT_CHECKPOINT_SETTINGS, type CheckpointSettings, type StateBackendType } from '@weir/api';
import type { RestorePlan } from './restore.js';

/** One attempt to run one subtask. */
export interface Execution {
  executionId: string;
  vertex: JobVertex;
  subtaskIndex: number;
  attempt: number;
  state: ExecutionState;
  slot?: SlotAllocation;
  recordsIn: number;
  recordsOut: number;
}

const TERMINAL_TASK: ReadonlySet<ExecutionState> = new Set(['FINISHED', 'CANCELED', 'FAILED']);
const TERMINAL_JOB: ReadonlySet<JobStatus> = new Set(['JOB_FINISHED', 'JOB_CANCELED', 'JOB_FAILED']);

export interface JobMasterOptions {
  slotRequestTimeoutMs: number;
  restore?: RestorePlan;
  /** the cluster's default checkpoint storage, used when the job sets none */
  checkpointStorage: string;
  /** checkpoint settings from the cluster's configuration file */
  checkpointDefaults?: Partial<CheckpointSettings>;
  /** the cluster's keyed state backend, for jobs that set none */
  stateBackend?: StateBackendType;
}

/**
 * Runs one job: builds its execution graph (one execution per subtask), waits for slots,
 * deploys every task with the locations of its inputs, and follows task states to the job's
 * end. A failed task or a lost TaskManager fails the job (restarts come with failover).
 */
export class JobMaster {
  status: JobStatus = 'JOB_CREATED';
  readonly startTime = Date.now();
  endTime = 0;
  waitingReason = '';
  failure: TaskFailure | undefined;
  failureCause = '';
  private readonly executions: Execution[] = [];
  private readonly byId = new Map<string, Execution>();
  private coordinatorStarted = false;
  private slotTimer: NodeJS.Timeout | undefined;
  private readonly onSlots = (): void => this.tryAllocate();
  private readonly onLost = (tm: RegisteredTaskManager, reason: string): void => this.taskManagerLost(tm, reason);
  private readonly onMetrics = (m: TaskMetrics__Output[]): void => this.updateMetrics(m);
  private readonly terminalListeners: Array<() => void> = [];
  readonly checkpointStorageUri: string;
  readonly checkpointSettings: CheckpointSettings;
  readonly coordinator: CheckpointCoordinator;
  readonly collected: Buffer[] = [];
  private collectedBytes = 0;
  collectedTruncated = false;

  constructor(
    readonly jobId: string,
    readonly graph: JobGraph,
    readonly jobContextJson: string,
    private readonly rm: ResourceManager,
    private readonly log: Logger,
    private readonly opts: JobMasterOptions,
  ) {
    // defaults <- cluster configuration file <- what the job set in code
    this.checkpointSettings = { ...DEFAULT_CHECKPOINT_SETTINGS, ...opts.checkpointDefaults, ...graph.checkpoint };
    this.checkpointStorageUri = this.checkpointSettings.storage || opts.checkpointStorage;
    // always present: savepoints work with periodic checkpoints off
    this.coordinator = new CheckpointCoordinator(this.checkpointedJob(), this.checkpointSettings, createCheckpointStorage(this.checkpointStorageUri), log);
    for (const vertex of graph.vertices) {
      for (let i = 0; i < vertex.parallelism; i++) {
        const e: Execution = {
          executionId: `${jobId.slice(0, 8)}-${vertex.id}-${i}-${randomUUID().slice(0, 4)}`,
          vertex, subtaskIndex: i, attempt: 0, state: 'CREATED', recordsIn: 0, recordsOut: 0,
        };
        this.executions.push(e);
        this.byId.set(e.executionId, e);
      }
    }
  }

  private checkpointedJob(): CheckpointedJob {
    return {
      jobId: this.jobId,
      maxParallelism: this.graph.maxParallelism,
      runningTasks: () => {
        if (this.status !== 'JOB_RUNNING' || !this.executions.every((e) => e.state === 'RUNNING')) return undefined;
        return this.executions.map((e) => ({
          executionId: e.executionId, vertex: e.vertex.name, subtask: e.subtaskIndex, isSource: e.vertex.isSource,
          operatorIds: e.vertex.operators.map((o) => o.id), parallelism: e.vertex.parallelism,
        }));
      },
      trigger: async (executionId, checkpointId, timestamp, location) => {
        const e = this.byId.get(executionId)!;
        const gw = e.slot!.taskManager.gateway;
        const ack = await unary<Ack__Output>(gw.TriggerCheckpoint.bind(gw), {
          jobId: this.jobId, executionId, checkpointId, timestamp, storage: location.storage.root, directory: location.directory, isSavepoint: location.isSavepoint,
        }, 10_000);
        if (!ack.ok) throw new Error(ack.message);
      },
      notify: (executionId, checkpointId, completed) => {
        const gw = this.byId.get(executionId)?.slot?.taskManager.gateway;
        if (gw) unary(gw.NotifyCheckpoint.bind(gw), { jobId: this.jobId, executionId, checkpointId, completed }, 10_000).catch(() => {});
      },
      failJob: (cause) => this.failJob(cause),
    };
  }

  get name(): string {
    return this.graph.jobName;
  }

  get isTerminal(): boolean {
    return TERMINAL_JOB.has(this.status);
  }

  /** Keeps a collecting sink's batch for the client, up to 64 MiB per job. */
  addCollected(batch: Buffer): void {
    if (this.collectedBytes + batch.length > 64 * 1024 * 1024) {
      this.collectedTruncated = true;
      return;
    }
    this.collectedBytes += batch.length;
    this.collected.push(batch);
  }

  onTerminal(listener: () => void): void {
    this.terminalListeners.push(listener);
  }

  start(): void {
    this.rm.on('slotsAvailable', this.onSlots);
    this.rm.on('taskManagerLost', this.onLost);
    this.rm.on('metrics', this.onMetrics);
    this.slotTimer = setTimeout(() => {
      if (this.status === 'JOB_CREATED') {
        this.failJob(`Could not get ${requiredSlots(this.graph)} slots within ${this.opts.slotRequestTimeoutMs / 1000} s: ${this.waitingReason}`);
      }
    }, this.opts.slotRequestTimeoutMs);
    this.tryAllocate();
  }

  private tryAllocate(): void {
    if (this.status !== 'JOB_CREATED') return;
    const needed = requiredSlots(this.graph);
    const slots = this.rm.allocate(this.jobId, needed);
    if (!slots) {
      const reason = `waiting for ${needed} slots; ${this.rm.freeSlots()} of ${this.rm.totalSlots()} free on ${this.rm.taskManagers.size} TaskManagers`;
      if (reason !== this.waitingReason) this.log.info({ jobId: this.jobId }, reason);
      this.waitingReason = reason;
      return;
    }
    clearTimeout(this.slotTimer);
    this.waitingReason = '';
    this.status = 'JOB_RUNNING';
    for (const e of this.executions) {
      e.slot = slots[e.subtaskIndex];
      e.state = 'SCHEDULED';
    }
    void this.deployAll();
  }

  private partitionId(producer: Execution, consumerVertexId: string): string {
    return `${producer.executionId}>${consumerVertexId}`;
  }

  private descriptor(e: Execution): TaskDeploymentDescriptor {
    const g = this.graph;
    const inputChannels = [];
    for (const edge of g.edges.filter((x) => x.targetVertexId === e.vertex.id)) {
      const producers = this.executions.filter((p) => p.vertex.id === edge.sourceVertexId);
      const connected = edge.partitioner === 'forward' ? producers.filter((p) => p.subtaskIndex === e.subtaskIndex) : producers;
      for (const p of connected) {
        inputChannels.push({
          partitionId: this.partitionId(p, e.vertex.id),
          subpartitionIndex: e.subtaskIndex,
          producerAddress: p.slot!.taskManager.address,
          producerTaskManagerId: p.slot!.taskManager.id,
        });
      }
    }
    const resultPartitions = g.edges
      .filter((x) => x.sourceVertexId === e.vertex.id)
      .map((edge) => ({
        partitionId: this.partitionId(e, edge.targetVertexId),
        numberOfSubpartitions: g.vertices.find((v) => v.id === edge.targetVertexId)!.parallelism,
        partitioner: edge.partitioner,
        consumerVertexId: edge.targetVertexId,
      }));
    return {
      jobId: this.jobId,
      jobName: g.jobName,
      executionId: e.executionId,
      vertexId: e.vertex.id,
      vertexName: e.vertex.name,
      subtaskIndex: e.subtaskIndex,
      parallelism: e.vertex.parallelism,
      maxParallelism: e.vertex.maxParallelism,
      attemptNumber: e.attempt,
      slotIndex: e.slot!.slotIndex,
      operatorIds: e.vertex.operators.map((o) => o.id),
      inputChannels,
      resultPartitions,
      jobContextJson: this.jobContextJson,
      checkpointStorage: this.checkpointStorageUri,
      checkpointingMode: this.checkpointSettings.mode,
      // what the job set wins over the cluster's configuration
      stateBackend: this.graph.stateBackend ?? this.opts.stateBackend ?? 'heap',
      restoreJson: this.opts.restore ? JSON.stringify(this.opts.restore.forSubtask(e.vertex.operators.map((o) => o.id), e.subtaskIndex, e.vertex.parallelism)) : '',
    };
  }

  private async deployAll(): Promise<void> {
    this.log.info({ jobId: this.jobId, tasks: this.executions.length }, 'deploying job');
    await Promise.all(
      this.executions.map(async (e) => {
        e.state = 'DEPLOYING';
        const tm = e.slot!.taskManager;
        try {
          const ack = await unary<Ack__Output>(tm.gateway.SubmitTask.bind(tm.gateway), this.descriptor(e), 30_000);
          if (!ack.ok) throw new Error(ack.message);
        } catch (err) {
          this.taskFailed(e, {
            vertexName: e.vertex.name, subtaskIndex: e.subtaskIndex, taskManagerId: tm.id,
            message: `Deployment to TaskManager ${tm.id} (${tm.address}) failed: ${(err as Error).message}`, stack: '', domain: 'internal',
          });
        }
      }),
    );
  }

  updateTaskState(executionId: string, state: ExecutionState, failure: TaskFailure | undefined | null, metrics: TaskMetrics__Output | undefined | null): void {
    const e = this.byId.get(executionId);
    if (!e || TERMINAL_TASK.has(e.state)) return;
    if (metrics) this.updateMetrics([metrics]);
    if (state === 'FAILED') {
      this.taskFailed(e, failure ?? { vertexName: e.vertex.name, subtaskIndex: e.subtaskIndex, message: 'unknown failure', stack: '', domain: 'internal', taskManagerId: '' });
      return;
    }
    e.state = state;
    if (state === 'RUNNING' && this.executions.every((x) => x.state === 'RUNNING') && !this.coordinatorStarted) {
      this.coordinatorStarted = true;
      this.coordinator?.start();
    }
    if (TERMINAL_TASK.has(state)) this.coordinator?.taskEnded(executionId);
    this.checkCompletion();
  }

  private updateMetrics(metrics: TaskMetrics__Output[]): void {
    for (const m of metrics) {
      const e = this.byId.get(m.executionId);
      if (!e) continue;
      e.recordsIn = Number(m.recordsIn);
      e.recordsOut = Number(m.recordsOut);
    }
  }

  private taskFailed(e: Execution, failure: TaskFailure): void {
    e.state = 'FAILED';
    if (this.status === 'JOB_FAILING' || this.isTerminal) {
      this.checkCompletion();
      return;
    }
    this.failure = failure;
    this.failureCause = `${failure.vertexName} (${(failure.subtaskIndex ?? 0) + 1}/${e.vertex.parallelism}) failed: ${failure.message}`;
    this.log.error({ jobId: this.jobId, executionId: e.executionId, cause: failure.message }, 'task failed; failing the job');
    this.status = 'JOB_FAILING';
    this.cancelRemaining();
    this.checkCompletion();
  }

  private taskManagerLost(tm: RegisteredTaskManager, reason: string): void {
    const affected = this.executions.filter((e) => e.slot?.taskManager.id === tm.id && !TERMINAL_TASK.has(e.state));
    if (affected.length === 0) return;
    const message = `TaskManager ${tm.id} (${tm.address}) was lost: ${reason}`;
    for (const e of affected) {
      this.taskFailed(e, { vertexName: e.vertex.name, subtaskIndex: e.subtaskIndex, taskManagerId: tm.id, message, stack: '', domain: 'external' });
    }
  }

  private cancelRemaining(): void {
    for (const e of this.executions) {
      if (TERMINAL_TASK.has(e.state)) continue;
      if (e.state === 'CREATED' || e.state === 'SCHEDULED' || !e.slot || !this.rm.taskManagers.has(e.slot.taskManager.id)) {
        e.state = 'CANCELED';
        continue;
      }
      e.state = 'CANCELING';
      const gw = e.slot.taskManager.gateway;
      unary(gw.CancelTask.bind(gw), { jobId: this.jobId, executionId: e.executionId }, 10_000).catch(() => {
        e.state = 'CANCELED';
        this.checkCompletion();
      });
    }
  }

  cancel(): void {
    if (this.isTerminal || this.status === 'JOB_CANCELLING') return;
    this.log.info({ jobId: this.jobId }, 'canceling job');
    if (this.status === 'JOB_CREATED') {
      for (const e of this.executions) e.state = 'CANCELED';
      this.finish('JOB_CANCELED');
      return;
    }
    this.status = 'JOB_CANCELLING';
    this.cancelRemaining();
    this.checkCompletion();
  }

  failJob(cause: string): void {
    if (this.isTerminal) return;
    this.failureCause = cause;
    this.log.error({ jobId: this.jobId, cause }, 'job failed');
    if (this.status === 'JOB_CREATED') {
      for (const e of this.executions) e.state = 'CANCELED';
      this.finish('JOB_FAILED');
      return;
    }
    this.status = 'JOB_FAILING';
    this.cancelRemaining();
    this.checkCompletion();
  }

  private checkCompletion(): void {
    if (this.isTerminal) return;
    if (!this.executions.every((e) => TERMINAL_TASK.has(e.state))) return;
    if (this.status === 'JOB_FAILING') this.finish('JOB_FAILED');
    else if (this.status === 'JOB_CANCELLING') this.finish('JOB_CANCELED');
    else if (this.executions.every((e) => e.state === 'FINISHED')) this.finish('JOB_FINISHED');
  }

  private finish(status: JobStatus): void {
    this.status = status;
    this.endTime = Date.now();
    clearTimeout(this.slotTimer);
    this.rm.release(this.jobId);
    this.rm.off('slotsAvailable', this.onSlots);
    this.rm.off('taskManagerLost', this.onLost);
    this.rm.off('metrics', this.onMetrics);
    void this.coordinator?.stop(String(status));
    this.log.info({ jobId: this.jobId, status, durationMs: this.endTime - this.startTime }, 'job ended');
    for (const l of this.terminalListeners) l();
  }

  details(): JobDetails {
    const vertices = this.graph.vertices.map((v) => ({
      vertexId: v.id,
      name: v.name,
      parallelism: v.parallelism,
      subtasks: this.executions.filter((e) => e.vertex === v).map((e) => ({
        executionId: e.executionId,
        subtaskIndex: e.subtaskIndex,
        state: e.state,
        taskManagerId: e.slot?.taskManager.id ?? '',
        recordsIn: e.recordsIn,
        recordsOut: e.recordsOut,
      })),
    }));
    const sources = this.executions.filter((e) => e.vertex.isSource);
    const sinks = this.executions.filter((e) => !this.graph.edges.some((x) => x.sourceVertexId === e.vertex.id));
    return {
      jobId: this.jobId,
      name: this.graph.jobName,
      status: this.status,
      startTime: this.startTime,
      endTime: this.endTime,
      vertices,
      waitingReason: this.waitingReason,
      ...(this.failure ? { failure: this.failure } : {}),
      failureCause: this.failureCause,
      recordsIn: sources.reduce((s, e) => s + e.recordsIn, 0),
      recordsOut: sinks.reduce((s, e) => s + e.recordsIn, 0),
    };
  }
}
