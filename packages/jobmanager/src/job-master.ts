/*
 * Why this file is longer than ~400 lines: it is the job's state machine (JOB_CREATED ->
 * RUNNING -> RESTARTING/FAILING/CANCELLING -> terminal), and every method here changes `status`,
 * the attempt or a timer; keeping the transitions together lets one read every path between two
 * states in one place. What does not change them lives beside it: execution-graph.ts (executions,
 * deployment descriptors, status view), execution-failure-handler.ts (what a failure means),
 * job-restarts.ts (failover timings), task-manager-gateway.ts (calls to TaskManagers).
 */
import {
  createCheckpointStorage,
  isCheckpointDamaged,
  TaskRateTracker,
  type ExecutionState,
  type JobDetails,
  type JobGraph,
  type JobStatus,
  type Logger,
  type TaskDeploymentDescriptor,
  type TaskFailure,
  type TaskMetrics__Output,
} from '@weir/core';
import type { RegisteredTaskManager, ResourceManager } from './resource-manager.js';
import {
  CheckpointCoordinator,
  type CheckpointedJob,
  type RetainedCheckpoint,
} from './checkpoint-coordinator.js';
import type { JobStore } from './job-store.js';
import type { JobException, JobHistory } from './job-history.js';
import type { RestartStrategyConfiguration, SourceSplit, SplitSource, StateBackendType } from '@weir/api';
import {
  DEFAULT_CHECKPOINT_SETTINGS,
  RESTART_STRATEGY_DEFAULTS,
  unalignedCheckpointsApply,
  unalignedCheckpointsIgnored,
  type CheckpointSettings,
  type StreamGraph,
} from '@weir/api/internal';
import { SourceCoordinator, type SourceCoordinatorState } from './source-coordinator.js';
import { RestorePlan } from './restore.js';
import { RestartBackoff } from './restart-backoff.js';
import {
  TERMINAL_TASK,
  createDeploymentDescriptor,
  createExecutions,
  executionDetails,
  type Execution,
} from './execution-graph.js';
import { ExecutionFailureHandler, damagedCheckpointCause } from './execution-failure-handler.js';
import { JobRestarts } from './job-restarts.js';
import { pipelinedRegions, type PipelinedRegion } from './pipelined-regions.js';
import type { SlotAllocation } from './resource-manager.js';
import { cancelTask, notifyCheckpoint, submitTask, triggerCheckpoint } from './task-manager-gateway.js';

export type { Execution } from './execution-graph.js';
export type { JobRestart } from './job-restarts.js';

const TERMINAL_JOB: ReadonlySet<JobStatus> = new Set(['JOB_FINISHED', 'JOB_CANCELED', 'JOB_FAILED']);

export interface JobMasterOptions {
  slotRequestTimeoutMs: number;
  /** jobmanager.execution.failover-strategy: restart the failed task's region only, or every task */
  failoverStrategy?: 'region' | 'full';
  restore?: RestorePlan;
  /** the cluster's default checkpoint storage, used when the job sets none */
  checkpointStorage: string;
  /** checkpoint settings from the cluster's configuration file */
  checkpointDefaults?: Partial<CheckpointSettings>;
  /** the cluster's keyed state backend, for jobs that set none */
  stateBackend?: StateBackendType;
  /** the cluster's state.backend.incremental, for jobs that set none */
  incrementalCheckpoints?: boolean;
  /** the cluster's restart strategy; unset: exponential delay with checkpointing, else none */
  restartStrategy?: RestartStrategyConfiguration;
  /** tasks of a failed attempt that do not confirm their cancellation are given up after this long */
  cancelTimeoutMs?: number;
  /** where the job's checkpoint pointers are kept for a restarted JobManager */
  jobStore?: JobStore;
  /**
   * Plans the job bundle in this process (for the split enumerators of its sources); given when
   * the job graph has a source with an enumerator
   */
  planGraph?: () => Promise<StreamGraph>;
  /** a job recovered by a restarted JobManager: its retained checkpoints and the highest id it used */
  recovered?: { retained: RetainedCheckpoint[]; highestCheckpointId: number; history?: JobHistory };
}

/** failures kept for the REST API's exception history */
const EXCEPTIONS = 50;
/** restarts kept in the job store (all stay in memory) */
const STORED_RESTARTS = 100;
/** the job history is written at most this often (checkpoints may come every few hundred ms) */
const HISTORY_WRITE_INTERVAL_MS = 1_000;

/**
 * A pipelined region failing over on its own while the rest of the job runs (Flink's
 * RestartPipelinedRegionFailoverStrategy): its tasks are canceled, the backoff waited out, then
 * new executions of its tasks get slots and restore the latest completed checkpoint.
 */
interface RegionFailover {
  region: PipelinedRegion;
  attempt: number;
  /** canceling its tasks, waiting out the backoff, or waiting for slots for its new executions */
  phase: 'canceling' | 'backoff' | 'slots';
  delayMs: number;
  timer?: NodeJS.Timeout;
  /** where its tasks ran: the new executions prefer the same slots (local state is there) */
  previousSlots: Array<SlotAllocation | undefined>;
}

/**
 * Runs one job: builds its execution graph (one execution per subtask), waits for slots,
 * deploys every task with the locations of its inputs, and follows task states to the job's
 * end. A failed task or a lost TaskManager fails its pipelined region over (the default,
 * `jobmanager.execution.failover-strategy: region`): the region's other tasks are canceled and,
 * as the restart strategy allows, deployed again with the state of the latest completed
 * checkpoint while other regions keep running; with one region, or `full`, that is the whole
 * attempt (Flink's full restart).
 */
export class JobMaster {
  status: JobStatus = 'JOB_CREATED';
  readonly startTime = Date.now();
  endTime = 0;
  waitingReason = '';
  failure: TaskFailure | undefined;
  failureCause = '';
  private executions: Execution[] = [];
  private readonly byId = new Map<string, Execution>();
  private slotTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private cancelTimer: NodeJS.Timeout | undefined;
  private restartScheduled = false;
  private attempt = 0;
  readonly regions: readonly PipelinedRegion[];
  private readonly regionOf: ReadonlyMap<string, number>;
  /** the first slot of each region's share of the job's slots (all 0 when regions share slots) */
  private slotOffset: readonly number[];
  /** slots when each region has its own, and when all share them (subtask i of every vertex in slot i) */
  private readonly ownSlots: number;
  private readonly sharedSlots: number;
  /** whether the current attempt's regions share slots: then a region restart keeps the slots */
  private regionsShareSlots = true;
  private readonly regionFailover: boolean;
  /** regions failing over on their own, by region index */
  private readonly regionFailovers = new Map<number, RegionFailover>();
  readonly restarts: JobRestarts;
  private readonly failureHandler: ExecutionFailureHandler;
  /** the state the current attempt was deployed with */
  private restore: RestorePlan | undefined;
  private restoredCheckpointId = 0;
  /** where each slot of the job was before a full restart: the new attempt prefers the same TaskManagers */
  private previousSlots: Array<SlotAllocation | undefined> = [];
  /** whether previousSlots are shared slots (slot i: subtask i of every vertex) or each region's own */
  private previousSlotsShared = true;
  /** the restart strategy's delay before the pending restart */
  private restartDelayMs = 0;
  /** the split enumerators of the current attempt, by source operator id */
  private sourceCoordinators = new Map<string, SourceCoordinator>();
  private readonly onSlots = (): void => this.tryAllocate();
  private readonly onLost = (tm: RegisteredTaskManager, reason: string): void =>
    this.taskManagerLost(tm, reason);
  private readonly onMetrics = (m: TaskMetrics__Output[]): void => this.updateMetrics(m);
  private readonly terminalListeners: Array<() => void> = [];
  readonly checkpointStorageUri: string;
  readonly checkpointSettings: CheckpointSettings;
  readonly coordinator: CheckpointCoordinator;
  readonly collected: Buffer[] = [];
  /** the latest metrics sample and rates of each execution of the current attempt */
  taskMetrics = new TaskRateTracker();
  /** failures, newest last (Flink's exception history) */
  readonly exceptions: JobException[] = [];
  private historyWrite: Promise<void> | undefined;
  private historyDirty = false;
  private historyTimer: NodeJS.Timeout | undefined;
  private lastHistoryWrite = 0;
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
    this.checkpointSettings = {
      ...DEFAULT_CHECKPOINT_SETTINGS,
      ...opts.checkpointDefaults,
      ...graph.checkpoint,
    };
    this.checkpointStorageUri = this.checkpointSettings.storage || opts.checkpointStorage;
    const ignored = unalignedCheckpointsIgnored(this.checkpointSettings);
    if (ignored) log.warn({ jobId }, ignored);
    // always present: savepoints work with periodic checkpoints off
    this.coordinator = new CheckpointCoordinator(
      this.checkpointedJob(),
      this.checkpointSettings,
      createCheckpointStorage(this.checkpointStorageUri),
      log,
    );
    const strategy =
      graph.restartStrategy ??
      opts.restartStrategy ??
      (this.checkpointSettings.intervalMs > 0
        ? RESTART_STRATEGY_DEFAULTS['exponential-delay']
        : RESTART_STRATEGY_DEFAULTS.none);
    this.failureHandler = new ExecutionFailureHandler(new RestartBackoff(strategy), log);
    this.restarts = new JobRestarts(log);
    this.regions = pipelinedRegions(graph);
    this.regionOf = new Map(this.regions.flatMap((r) => r.vertices.map((v) => [v.id, r.index] as const)));
    this.regionFailover = (opts.failoverStrategy ?? 'region') === 'region' && this.regions.length > 1;
    this.ownSlots = this.regions.reduce((n, r) => n + r.slots, 0);
    this.sharedSlots = Math.max(...this.regions.map((r) => r.slots));
    this.slotOffset = this.regions.map(() => 0);
    this.restore = opts.restore;
    // only a retained checkpoint of this job counts as "restored checkpoint" (for the damaged-checkpoint
    // fallback): a recovered job restores its latest retained one; a start savepoint is not one
    if (opts.recovered) {
      this.coordinator.recover(opts.recovered.retained, opts.recovered.highestCheckpointId);
      const h = opts.recovered.history;
      if (h) {
        this.coordinator.recoverStats(h.checkpoints);
        this.restarts.all.push(...h.restarts);
        this.exceptions.push(...h.exceptions);
      }
      this.restoredCheckpointId = opts.restore?.metadata.checkpointId ?? 0;
    }
    // a job resumed from a savepoint or checkpoint continues its lineage's checkpoint ids
    if (opts.restore) {
      this.coordinator.continueAfter(opts.restore.metadata.checkpointId);
      this.coordinator.restoredFrom({
        id: opts.restore.metadata.checkpointId,
        path: opts.restore.metadataFile,
        savepoint: !!opts.restore.metadata.savepoint,
      });
    }
    this.createExecutions();
  }

  /** One new execution per subtask for the next attempt; reports from older ones are ignored. */
  private createExecutions(): void {
    this.executions = createExecutions(this.jobId, this.graph, this.attempt, this.regionOf);
    // samples of an older attempt's executions are of no use any more
    this.taskMetrics = new TaskRateTracker();
    this.byId.clear();
    for (const e of this.executions) this.byId.set(e.executionId, e);
  }

  /** The TaskManager an execution of the current attempt is deployed to, if any. */
  hostOf(executionId: string): RegisteredTaskManager | undefined {
    return this.byId.get(executionId)?.slot?.taskManager;
  }

  /** The executions of the current attempt (REST API, metrics). */
  executionsOfAttempt(): readonly Execution[] {
    return this.executions;
  }

  get restartStrategy(): RestartStrategyConfiguration {
    return this.failureHandler.backoff.strategy;
  }

  private checkpointedJob(): CheckpointedJob {
    return {
      jobId: this.jobId,
      maxParallelism: this.graph.maxParallelism,
      runningTasks: () => {
        if (this.status !== 'JOB_RUNNING' || !this.executions.every((e) => e.state === 'RUNNING'))
          return undefined;
        return this.executions.map((e) => ({
          executionId: e.executionId,
          vertex: e.vertex.name,
          subtask: e.subtaskIndex,
          isSource: e.vertex.isSource,
          operatorIds: e.vertex.operators.map((o) => o.id),
          parallelism: e.vertex.parallelism,
        }));
      },
      trigger: (executionId, checkpointId, timestamp, location) =>
        triggerCheckpoint(this.jobId, this.byId.get(executionId)!, checkpointId, timestamp, location),
      notify: (executionId, checkpointId, completed, final) =>
        notifyCheckpoint(this.jobId, this.byId.get(executionId), checkpointId, completed, final),
      failover: (cause) => this.failGlobally(cause),
      persist: this.opts.jobStore
        ? (retained, highest) => this.opts.jobStore!.putCheckpoints(this.jobId, retained, highest)
        : undefined,
      completed: (checkpointId) => {
        this.restarts.checkpointCompleted(checkpointId);
        this.persistHistory();
      },
      statsChanged: () => this.persistHistory(),
      snapshotCoordinators: (checkpointId) => {
        const out: Record<string, unknown> = {};
        for (const [op, c] of this.sourceCoordinators) out[op] = c.snapshot(checkpointId);
        return out;
      },
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
    this.waitForSlots();
  }

  private waitForSlots(): void {
    clearTimeout(this.slotTimer);
    this.slotTimer = setTimeout(() => {
      if (this.status === 'JOB_CREATED') {
        this.failJob(
          `Could not get ${this.sharedSlots} slots within ${this.opts.slotRequestTimeoutMs / 1000} s: ${this.waitingReason}`,
        );
      }
    }, this.opts.slotRequestTimeoutMs);
    this.tryAllocate();
  }

  private tryAllocate(): void {
    if (this.status === 'JOB_RUNNING') {
      for (const f of [...this.regionFailovers.values()]) if (f.phase === 'slots') this.tryAllocateRegion(f);
    }
    if (this.status !== 'JOB_CREATED') return;
    // region failover: each region gets slots of its own when there are enough, so a lost
    // TaskManager takes down only the regions that ran on it; else (and with full restart) the
    // regions share slots as Flink's default slot sharing group does: slot i hosts subtask i of
    // every vertex, and a lost TaskManager fails every region that had a task there
    const own = this.regionFailover && this.rm.freeSlots() >= this.ownSlots;
    const needed = own ? this.ownSlots : this.sharedSlots;
    // slot i before is slot i now when both attempts lay slots out alike (shared, or own per
    // region): a restarted task then goes back to the TaskManager with its local state
    const slots = this.rm.allocate(
      this.jobId,
      needed,
      own !== this.previousSlotsShared ? this.previousSlots : [],
    );
    if (!slots) {
      const reason = `waiting for ${needed} slots; ${this.rm.freeSlots()} of ${this.rm.totalSlots()} free on ${this.rm.taskManagers.size} TaskManagers`;
      if (reason !== this.waitingReason) this.log.info({ jobId: this.jobId }, reason);
      this.waitingReason = reason;
      return;
    }
    clearTimeout(this.slotTimer);
    this.waitingReason = '';
    this.regionsShareSlots = !own;
    let offset = 0;
    this.slotOffset = this.regions.map((r) => {
      const o = own ? offset : 0;
      offset += r.slots;
      return o;
    });
    this.status = 'JOB_RUNNING';
    this.restarts.deployed(this.attempt);
    for (const e of this.executions) {
      e.slot = slots[this.slotOffset[e.region]! + e.subtaskIndex];
      e.state = 'SCHEDULED';
    }
    void this.deploy(this.executions);
  }

  private descriptor(e: Execution): TaskDeploymentDescriptor {
    return createDeploymentDescriptor(this.jobId, this.graph, this.executions, e, {
      jobContextJson: this.jobContextJson,
      checkpointStorage: this.checkpointStorageUri,
      checkpointingMode: this.checkpointSettings.mode,
      unalignedCheckpoints: unalignedCheckpointsApply(this.checkpointSettings),
      alignedCheckpointTimeoutMs: this.checkpointSettings.alignedCheckpointTimeoutMs,
      // what the job set wins over the cluster's configuration
      stateBackend: this.graph.stateBackend ?? this.opts.stateBackend ?? 'heap',
      incrementalCheckpoints: this.graph.incrementalCheckpoints ?? this.opts.incrementalCheckpoints ?? false,
      restore: this.restore,
      finalCheckpoint: this.checkpointSettings.intervalMs > 0,
    });
  }

  /**
   * A fresh split enumerator per coordinated source for this attempt, restored from the state
   * the attempt starts from; the previous attempt's are closed.
   */
  private async startSourceCoordinators(): Promise<boolean> {
    const old = [...this.sourceCoordinators.values()];
    this.sourceCoordinators = new Map();
    await Promise.all(old.map((c) => c.close().catch(() => {})));
    const vertices = this.graph.vertices.filter((v) => v.coordinatedSource);
    if (vertices.length === 0) return true;
    const attempt = this.attempt;
    try {
      if (!this.opts.planGraph) throw new Error('the JobManager has no job bundle to plan');
      const streamGraph = await this.opts.planGraph();
      const started = new Map<string, SourceCoordinator>();
      for (const v of vertices) {
        const op = v.operators[0]!;
        const node = streamGraph.nodes.find((n) => n.id === op.id);
        const source = node?.transformation.source as SplitSource<unknown, SourceSplit> | undefined;
        if (!source?.createEnumerator)
          throw new Error(`the job bundle has no source with a split enumerator for operator '${op.name}'`);
        const c = new SourceCoordinator(source, op.id, op.name, v.parallelism, this.log, (cause) =>
          this.failGlobally(cause),
        );
        started.set(op.id, c);
        const state = this.restore?.coordinatorState(op.id) as SourceCoordinatorState | undefined;
        await c.start(state, state ? undefined : this.restore?.readerSplits(op.id));
      }
      if (attempt !== this.attempt || this.status !== 'JOB_RUNNING') {
        await Promise.all([...started.values()].map((c) => c.close().catch(() => {})));
        return false;
      }
      this.sourceCoordinators = started;
      return true;
    } catch (err) {
      if (attempt === this.attempt && this.status === 'JOB_RUNNING')
        this.failGlobally(`Starting the split enumerators failed: ${(err as Error).message}`);
      return false;
    }
  }

  /** A source reader of the current attempt takes its splits (RequestSplits). */
  requestSplits(
    executionId: string,
    operatorId: string,
    subtask: number,
    lastCheckpointId: number,
    wantMore: boolean,
  ): { splits: unknown[]; noMoreSplits: boolean } {
    const e = this.byId.get(executionId);
    if (!e || e.subtaskIndex !== subtask || e.vertex.operators[0]?.id !== operatorId)
      throw new Error(
        `Execution ${executionId} is not subtask ${subtask} of source ${operatorId} in this attempt`,
      );
    const c = this.sourceCoordinators.get(operatorId);
    if (!c) throw new Error(`Source ${operatorId} of job ${this.jobId} has no split enumerator running`);
    return c.request(executionId, subtask, lastCheckpointId, wantMore);
  }

  private closeSourceCoordinators(): void {
    for (const c of this.sourceCoordinators.values()) void c.close().catch(() => {});
    this.sourceCoordinators = new Map();
  }

  /**
   * Deploys `executions`: the whole job (the split enumerators start first, restored with it) or
   * one pipelined region, which never holds a coordinated source (see taskFailed).
   */
  private async deploy(executions: readonly Execution[]): Promise<void> {
    if (executions === this.executions && !(await this.startSourceCoordinators())) return;
    this.log.info({ jobId: this.jobId, tasks: executions.length }, 'deploying job');
    await Promise.all(
      executions.map(async (e) => {
        e.state = 'DEPLOYING';
        const tm = e.slot!.taskManager;
        try {
          await submitTask(e, this.descriptor(e));
        } catch (err) {
          this.taskFailed(e, {
            vertexName: e.vertex.name,
            subtaskIndex: e.subtaskIndex,
            taskManagerId: tm.id,
            message: `Deployment to TaskManager ${tm.id} (${tm.address}) failed: ${(err as Error).message}`,
            stack: '',
            domain: 'internal',
          });
        }
      }),
    );
  }

  updateTaskState(
    executionId: string,
    state: ExecutionState,
    failure: TaskFailure | undefined | null,
    metrics: TaskMetrics__Output | undefined | null,
    extra: { endOfData?: boolean; restoreDurationMs?: number } = {},
  ): void {
    const e = this.byId.get(executionId);
    if (!e || TERMINAL_TASK.has(e.state)) return;
    if (metrics) this.updateMetrics([metrics]);
    if (state === 'FAILED') {
      this.taskFailed(
        e,
        failure ?? {
          vertexName: e.vertex.name,
          subtaskIndex: e.subtaskIndex,
          message: 'unknown failure',
          stack: '',
          domain: 'internal',
          taskManagerId: '',
        },
      );
      return;
    }
    if (e.state === 'CANCELING' && !TERMINAL_TASK.has(state)) {
      // the cancellation overtook the deployment on its TaskManager: the task started after all
      this.sendCancel(e);
      return;
    }
    const wasRunning = e.state === 'RUNNING';
    e.state = state;
    this.restarts.stateRestored(e.attempt, extra.restoreDurationMs);
    if (state === 'RUNNING' && !wasRunning && this.status === 'JOB_RUNNING') {
      // the tasks a failover deployed (all, or one region's) run again
      if (this.executions.every((x) => x.attempt !== e.attempt || x.state === 'RUNNING')) {
        this.restarts.allRunning(e.attempt);
        this.persistHistory();
      }
      if (this.executions.every((x) => x.state === 'RUNNING')) this.coordinator.start();
    }
    if (state === 'RUNNING' && extra.endOfData && !e.endOfData) {
      e.endOfData = true;
      // aligned, the barrier of a checkpoint taken once the sources ended follows every record;
      // unaligned, it may overtake them, so the final one waits until every task's input ended
      const unaligned = unalignedCheckpointsApply(this.checkpointSettings);
      if (this.executions.filter((x) => unaligned || x.vertex.isSource).every((x) => x.endOfData))
        this.coordinator.requestFinalCheckpoint();
    }
    if (TERMINAL_TASK.has(state)) this.coordinator.taskEnded(executionId);
    this.checkCompletion();
  }

  private updateMetrics(metrics: TaskMetrics__Output[]): void {
    for (const m of metrics) {
      const e = this.byId.get(m.executionId);
      if (!e) continue;
      e.recordsIn = Number(m.recordsIn);
      e.recordsOut = Number(m.recordsOut);
      this.taskMetrics.update(m);
    }
  }

  /** What the job store keeps for the REST API: checkpoint statistics, restarts, failures. */
  history(): JobHistory {
    return {
      checkpoints: this.coordinator.statsForHistory(),
      restarts: this.restarts.all.slice(-STORED_RESTARTS),
      exceptions: this.exceptions,
    };
  }

  /**
   * Writes the history to the job store: one write at a time, at most one a second, each with
   * the newest state, so it lags the job by about a second at most.
   */
  private persistHistory(): void {
    const store = this.opts.jobStore;
    if (!store || this.isTerminal || this.historyTimer) return;
    if (this.historyWrite) {
      this.historyDirty = true;
      return;
    }
    const wait = this.lastHistoryWrite + HISTORY_WRITE_INTERVAL_MS - Date.now();
    if (wait > 0) {
      this.historyTimer = setTimeout(() => {
        this.historyTimer = undefined;
        this.persistHistory();
      }, wait);
      return;
    }
    this.lastHistoryWrite = Date.now();
    this.historyWrite = store
      .putHistory(this.jobId, this.history())
      .catch((err: Error) =>
        this.log.warn({ err: err.message }, 'cannot write the job history to the job store'),
      )
      .finally(() => {
        this.historyWrite = undefined;
        if (this.historyDirty) {
          this.historyDirty = false;
          this.persistHistory();
        }
      });
  }

  private recordException(failure: TaskFailure, restarted: boolean): void {
    this.exceptions.push({
      timestamp: Date.now(),
      message: failure.message ?? '',
      stack: failure.stack || (failure.message ?? ''),
      taskName: failure.vertexName ? `${failure.vertexName} (${(failure.subtaskIndex ?? 0) + 1})` : '',
      location: failure.taskManagerId ?? '',
      restarted,
    });
    if (this.exceptions.length > EXCEPTIONS) this.exceptions.shift();
  }

  private taskFailed(e: Execution, failure: TaskFailure): void {
    e.state = 'FAILED';
    this.coordinator.taskEnded(e.executionId);
    if (this.status !== 'JOB_RUNNING' && this.status !== 'JOB_CREATED') {
      this.checkCompletion();
      return;
    }
    if (this.regionFailovers.has(e.region)) {
      // its region is failing over already: one of the tasks being canceled
      this.checkRegionCanceled(e.region);
      return;
    }
    this.failure = failure;
    const { cause, damaged } = this.failureHandler.taskFailure(
      failure,
      e.vertex.parallelism,
      this.restoredCheckpointId,
      this.coordinator.latestCompleted(),
    );
    if (damaged) {
      // the same damaged checkpoint would fail again, and an older one would replay committed output
      this.failGlobally(this.damagedCheckpoint(damaged, cause), true, failure);
      return;
    }
    // a region with a split enumerator restarts with the whole job: the enumerator restores from
    // the checkpoint together with every reader it hands splits to
    const region = this.regions[e.region]!;
    if (
      this.regionFailover &&
      this.status === 'JOB_RUNNING' &&
      !region.vertices.some((v) => v.coordinatedSource)
    )
      this.failRegion(region, cause, failure);
    else this.failGlobally(cause, false, failure);
  }

  /**
   * Region failover: cancels the region's other tasks and, as the restart strategy allows,
   * deploys it again from the latest completed checkpoint; other regions keep running. Pending
   * checkpoints are aborted (they cannot complete without the region) and no new one is
   * triggered until every task runs again; sinks of other regions hear only of completions and
   * aborts, as with any checkpoint, so nothing of theirs is committed twice.
   */
  private failRegion(region: PipelinedRegion, cause: string, failure: TaskFailure): void {
    const delay = this.failureHandler.restartDelay(cause, false, this.restarts.count);
    this.recordException(failure, delay !== undefined);
    this.failureCause = cause;
    if (delay === undefined) {
      this.failJob(cause);
      return;
    }
    this.attempt++;
    this.restarts.begin(this.attempt, cause, region.name);
    this.log.warn(
      { cause, region: region.name, attempt: this.attempt, delayMs: delay },
      'region failing over: canceling its remaining tasks, then restarting them; other regions keep running',
    );
    this.persistHistory();
    void this.coordinator.suspend(`${region.name} is restarting after: ${cause}`);
    const ofRegion = this.executions.filter((x) => x.region === region.index);
    const f: RegionFailover = {
      region,
      attempt: this.attempt,
      phase: 'canceling',
      delayMs: delay,
      previousSlots: [],
    };
    // the new executions of subtask i share slot i of the region, as the old ones did
    for (const x of ofRegion) f.previousSlots[x.subtaskIndex] ??= x.slot;
    this.regionFailovers.set(region.index, f);
    this.cancelRemaining(ofRegion);
    // a task that never confirms its cancellation (its TaskManager hangs) does not hold up recovery
    f.timer = setTimeout(() => {
      for (const x of ofRegion) if (!TERMINAL_TASK.has(x.state)) x.state = 'CANCELED';
      this.checkRegionCanceled(region.index);
    }, this.opts.cancelTimeoutMs ?? 10_000);
    this.checkRegionCanceled(region.index);
  }

  /** Every task of a failing region has ended: free its slots, wait out the backoff, then restart it. */
  private checkRegionCanceled(index: number): void {
    const f = this.regionFailovers.get(index);
    if (!f || f.phase !== 'canceling') return;
    const ofRegion = this.executions.filter((x) => x.region === index);
    if (!ofRegion.every((x) => TERMINAL_TASK.has(x.state))) return;
    clearTimeout(f.timer);
    f.phase = 'backoff';
    const r = this.restarts.of(f.attempt);
    if (r) r.canceledAt = Date.now();
    // shared slots still host other regions' tasks: the region's new executions take them again
    if (!this.regionsShareSlots)
      this.rm.releaseSlots(
        this.jobId,
        ofRegion.flatMap((x) => (x.slot ? [x.slot] : [])),
      );
    f.timer = setTimeout(() => void this.restartRegion(f), f.delayMs);
  }

  /** New executions of the region's tasks, restoring the latest completed checkpoint. */
  private async restartRegion(f: RegionFailover): Promise<void> {
    const live = (): boolean =>
      this.status === 'JOB_RUNNING' && this.regionFailovers.get(f.region.index) === f;
    if (!live()) return;
    await this.coordinator.settled();
    if (!live()) return;
    const latest = this.coordinator.latestCompleted();
    let restore = this.opts.restore;
    if (latest) {
      try {
        restore = await RestorePlan.load(latest.path, this.graph, true);
      } catch (err) {
        if (!live()) return;
        const message = (err as Error).message;
        this.regionFailovers.delete(f.region.index);
        if (!isCheckpointDamaged(err))
          this.failGlobally(`Reading checkpoint ${latest.id} failed: ${message}`);
        else
          this.failGlobally(this.damagedCheckpoint(latest, `${message} (after: ${this.failureCause})`), true);
        return;
      }
    }
    if (!live()) return;
    this.restore = restore;
    this.restoredCheckpointId = latest ? latest.id : 0;
    const r = this.restarts.of(f.attempt);
    if (r) {
      r.restoredCheckpointId = this.restoredCheckpointId;
      r.restoredFrom = restore?.metadataFile ?? '';
    }
    if (restore)
      this.coordinator.restoredFrom({
        id: restore.metadata.checkpointId,
        path: restore.metadataFile,
        savepoint: !!restore.metadata.savepoint,
      });
    this.log.info(
      { region: f.region.name, attempt: f.attempt, restoredCheckpointId: this.restoredCheckpointId },
      'restarting the region',
    );
    const fresh = createExecutions(this.jobId, this.graph, f.attempt, this.regionOf, f.region.vertices);
    const byKey = new Map(fresh.map((x) => [`${x.vertex.id}/${x.subtaskIndex}`, x]));
    this.executions = this.executions.map((x) => {
      const n = byKey.get(`${x.vertex.id}/${x.subtaskIndex}`);
      if (!n) return x;
      this.byId.delete(x.executionId);
      this.byId.set(n.executionId, n);
      return n;
    });
    f.phase = 'slots';
    f.timer = setTimeout(() => {
      if (this.regionFailovers.get(f.region.index) !== f || this.status !== 'JOB_RUNNING') return;
      this.regionFailovers.delete(f.region.index);
      this.failGlobally(
        `Could not get ${f.region.slots} slots for ${f.region.name} within ${this.opts.slotRequestTimeoutMs / 1000} s: ${this.waitingReason}`,
      );
    }, this.opts.slotRequestTimeoutMs);
    this.tryAllocateRegion(f);
  }

  private tryAllocateRegion(f: RegionFailover): void {
    const slots = this.regionsShareSlots
      ? this.sharedSlotsFor(f)
      : this.rm.allocate(this.jobId, f.region.slots, f.previousSlots);
    if (!slots) {
      const reason = `${f.region.name}: waiting for ${f.region.slots} slots; ${this.rm.freeSlots()} of ${this.rm.totalSlots()} free on ${this.rm.taskManagers.size} TaskManagers`;
      if (reason !== this.waitingReason) this.log.info({ jobId: this.jobId }, reason);
      this.waitingReason = reason;
      return;
    }
    clearTimeout(f.timer);
    this.regionFailovers.delete(f.region.index);
    this.waitingReason = '';
    this.restarts.deployed(f.attempt);
    const ofRegion = this.executions.filter((x) => x.region === f.region.index);
    for (const x of ofRegion) {
      x.slot = slots[x.subtaskIndex];
      x.state = 'SCHEDULED';
    }
    void this.deploy(ofRegion);
  }

  /**
   * Shared slots: the region's tasks go back to the slots they had while those are the job's
   * (their TaskManager is alive); only the slots of a lost TaskManager are replaced.
   */
  private sharedSlotsFor(f: RegionFailover): SlotAllocation[] | undefined {
    const kept = Array.from({ length: f.region.slots }, (_, i) => {
      const p = f.previousSlots[i];
      const tm = p && this.rm.taskManagers.get(p.taskManager.id);
      return tm === p?.taskManager && tm?.allocations[p!.slotIndex] === this.jobId ? p : undefined;
    });
    const missing = kept.filter((k) => !k).length;
    if (missing === 0) return kept as SlotAllocation[];
    const fresh = this.rm.allocate(this.jobId, missing);
    if (!fresh) return undefined;
    return kept.map((k) => k ?? fresh.shift()!);
  }

  /** Ends every region failover in progress: the whole job fails over, fails or is canceled. */
  private dropRegionFailovers(): void {
    for (const f of this.regionFailovers.values()) clearTimeout(f.timer);
    this.regionFailovers.clear();
  }

  /** The cause a job with a damaged latest checkpoint fails with (see damagedCheckpointCause). */
  private damagedCheckpoint(damaged: RetainedCheckpoint, cause: string): string {
    this.log.error(
      { checkpointId: damaged.id, path: damaged.path, cause },
      'the latest checkpoint is damaged',
    );
    return damagedCheckpointCause(damaged, this.coordinator.previousRetained(), cause);
  }

  /**
   * The current attempt has failed: restart it if the restart strategy allows, else fail the
   * job with this cause. Tasks still running are canceled either way.
   */
  failGlobally(cause: string, noRestart = false, failure?: TaskFailure): void {
    if (this.status !== 'JOB_RUNNING' && this.status !== 'JOB_CREATED') return;
    const delay = this.failureHandler.restartDelay(cause, noRestart, this.restarts.count);
    this.recordException(
      failure ?? {
        vertexName: '',
        subtaskIndex: 0,
        taskManagerId: '',
        message: cause,
        stack: '',
        domain: 'internal',
      },
      delay !== undefined,
    );
    if (delay === undefined) {
      this.failureCause = cause;
      this.failJob(cause);
      return;
    }
    this.failureCause = cause;
    this.dropRegionFailovers();
    this.attempt++;
    this.restarts.begin(this.attempt, cause);
    this.log.warn(
      { cause, attempt: this.attempt, delayMs: delay },
      'job failing over: canceling the remaining tasks, then restarting',
    );
    this.status = 'JOB_RESTARTING';
    this.persistHistory();
    clearTimeout(this.slotTimer);
    void this.coordinator.suspend(`the job is restarting after: ${cause}`);
    this.restartScheduled = false;
    this.restartDelayMs = delay;
    this.cancelRemaining();
    // a task that never confirms its cancellation (its TaskManager hangs) does not hold up recovery
    this.cancelTimer = setTimeout(() => {
      for (const x of this.executions) if (!TERMINAL_TASK.has(x.state)) x.state = 'CANCELED';
      this.checkCompletion();
    }, this.opts.cancelTimeoutMs ?? 10_000);
    this.checkCompletion();
  }

  /** Every task of the failed attempt has ended: wait out the backoff, then deploy again. */
  private scheduleRestart(): void {
    if (this.restartScheduled) return;
    this.restartScheduled = true;
    clearTimeout(this.cancelTimer);
    this.restarts.latest()!.canceledAt = Date.now();
    this.previousSlots = [];
    this.previousSlotsShared = this.regionsShareSlots;
    for (const e of this.executions)
      this.previousSlots[this.slotOffset[e.region]! + e.subtaskIndex] ??= e.slot;
    this.rm.release(this.jobId);
    this.restartTimer = setTimeout(() => void this.restart(), this.restartDelayMs);
  }

  private async restart(): Promise<void> {
    if (this.status !== 'JOB_RESTARTING') return;
    const r = this.restarts.latest()!;
    // a completion under way decides which checkpoint is the latest
    await this.coordinator.settled();
    if (this.status !== 'JOB_RESTARTING') return;
    // the latest completed checkpoint; else the savepoint the job started from; else nothing
    const latest = this.coordinator.latestCompleted();
    if (!latest) {
      this.restore = this.opts.restore;
      this.restoredCheckpointId = 0;
    } else {
      try {
        this.restore = await RestorePlan.load(latest.path, this.graph, true);
        this.restoredCheckpointId = latest.id;
      } catch (err) {
        if (this.status !== 'JOB_RESTARTING') return;
        const message = (err as Error).message;
        this.status = 'JOB_CREATED'; // so the failure below runs its normal path
        // storage unreachable for now: this attempt fails, the restart strategy decides on the next
        if (!isCheckpointDamaged(err))
          this.failGlobally(`Reading checkpoint ${latest.id} failed: ${message}`);
        else this.failGlobally(this.damagedCheckpoint(latest, `${message} (after: ${r.cause})`), true);
        return;
      }
    }
    if (this.status !== 'JOB_RESTARTING') return;
    r.restoredCheckpointId = this.restoredCheckpointId;
    r.restoredFrom = this.restore?.metadataFile ?? '';
    if (this.restore)
      this.coordinator.restoredFrom({
        id: this.restore.metadata.checkpointId,
        path: this.restore.metadataFile,
        savepoint: !!this.restore.metadata.savepoint,
      });
    this.log.info(
      { attempt: this.attempt, restoredCheckpointId: this.restoredCheckpointId, from: r.restoredFrom },
      'restarting the job',
    );
    this.createExecutions();
    this.status = 'JOB_CREATED';
    this.waitForSlots();
  }

  private taskManagerLost(tm: RegisteredTaskManager, reason: string): void {
    const affected = this.executions.filter(
      (e) => e.slot?.taskManager.id === tm.id && !TERMINAL_TASK.has(e.state),
    );
    if (affected.length === 0) return;
    const message = `TaskManager ${tm.id} (${tm.address}) was lost: ${reason}`;
    for (const e of affected) {
      this.taskFailed(e, {
        vertexName: e.vertex.name,
        subtaskIndex: e.subtaskIndex,
        taskManagerId: tm.id,
        message,
        stack: '',
        domain: 'external',
      });
    }
  }

  private cancelRemaining(executions: readonly Execution[] = this.executions): void {
    for (const e of executions) {
      if (TERMINAL_TASK.has(e.state)) continue;
      if (
        e.state === 'CREATED' ||
        e.state === 'SCHEDULED' ||
        !e.slot ||
        !this.rm.taskManagers.has(e.slot.taskManager.id)
      ) {
        e.state = 'CANCELED';
        continue;
      }
      e.state = 'CANCELING';
      this.sendCancel(e);
    }
  }

  private sendCancel(e: Execution): void {
    cancelTask(this.jobId, e).catch(() => {
      e.state = 'CANCELED';
      this.checkCompletion();
    });
  }

  cancel(): void {
    if (this.isTerminal || this.status === 'JOB_CANCELLING') return;
    this.log.info({ jobId: this.jobId }, 'canceling job');
    clearTimeout(this.restartTimer);
    this.dropRegionFailovers();
    void this.coordinator.suspend('the job is being canceled');
    if (this.status === 'JOB_CREATED' || (this.status === 'JOB_RESTARTING' && this.restartScheduled)) {
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
    clearTimeout(this.restartTimer);
    this.dropRegionFailovers();
    void this.coordinator.suspend('the job is failing');
    if (this.status === 'JOB_CREATED' || (this.status === 'JOB_RESTARTING' && this.restartScheduled)) {
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
    for (const i of [...this.regionFailovers.keys()]) this.checkRegionCanceled(i);
    // a region failing over is not the end of the job, even when every other task has finished
    if (this.status === 'JOB_RUNNING' && this.regionFailovers.size > 0) return;
    if (!this.executions.every((e) => TERMINAL_TASK.has(e.state))) return;
    if (this.status === 'JOB_RESTARTING') this.scheduleRestart();
    else if (this.status === 'JOB_FAILING') this.finish('JOB_FAILED');
    else if (this.status === 'JOB_CANCELLING') this.finish('JOB_CANCELED');
    else if (this.executions.every((e) => e.state === 'FINISHED')) this.finish('JOB_FINISHED');
  }

  private finish(status: JobStatus): void {
    this.status = status;
    this.closeSourceCoordinators();
    this.endTime = Date.now();
    clearTimeout(this.historyTimer);
    clearTimeout(this.slotTimer);
    clearTimeout(this.restartTimer);
    clearTimeout(this.cancelTimer);
    this.dropRegionFailovers();
    this.rm.release(this.jobId);
    this.rm.off('slotsAvailable', this.onSlots);
    this.rm.off('taskManagerLost', this.onLost);
    this.rm.off('metrics', this.onMetrics);
    void this.coordinator
      .stop(String(status))
      // a history write under way lands before the entry goes, so none is left behind
      .then(() => this.historyWrite)
      .then(() => this.opts.jobStore?.removeJob(this.jobId))
      .catch((err: Error) =>
        this.log.warn({ err: err.message }, 'could not remove the job from the job store'),
      );
    this.log.info({ jobId: this.jobId, status, durationMs: this.endTime - this.startTime }, 'job ended');
    for (const l of this.terminalListeners) l();
  }

  /** The JobManager shuts down but the job lives on in the job store: stop here without ending it. */
  suspend(): void {
    if (this.isTerminal) return;
    this.closeSourceCoordinators();
    this.log.info({ jobId: this.jobId }, 'suspending job; a JobManager on the same job store will resume it');
    this.dropRegionFailovers();
    clearTimeout(this.historyTimer);
    clearTimeout(this.slotTimer);
    clearTimeout(this.restartTimer);
    clearTimeout(this.cancelTimer);
    this.rm.off('slotsAvailable', this.onSlots);
    this.rm.off('taskManagerLost', this.onLost);
    this.rm.off('metrics', this.onMetrics);
    void this.coordinator.suspend('the JobManager is shutting down');
  }

  details(): JobDetails {
    return {
      jobId: this.jobId,
      name: this.graph.jobName,
      status: this.status,
      startTime: this.startTime,
      endTime: this.endTime,
      waitingReason: this.waitingReason,
      ...(this.failure ? { failure: this.failure } : {}),
      failureCause: this.failureCause,
      ...executionDetails(this.graph, this.executions),
      numRestarts: this.restarts.count,
      restarts: this.restarts.all,
    };
  }
}
