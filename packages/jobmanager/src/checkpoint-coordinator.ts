import * as grpc from '@grpc/grpc-js';
/*
 * Why this file is longer than ~400 lines: trigger, acknowledge, complete, abort, discard and stop
 * all read and change the same three things (the pending checkpoints, the retained list and the
 * durable job-store state) under the ordering rules below; split apart they would need those
 * shared as mutable state between modules, which is where ordering bugs hide. The pure parts live
 * elsewhere (payload parsing in core/checkpoint, the shared-state registry).
 */
import type { CheckpointSettings } from '@weir/api/internal';
import {
  childLocation,
  sharedFilesOfHandle,
  parseCheckpointMetadata,
  storageUri,
  type CheckpointMetadata,
  type CheckpointStats,
  type CheckpointStatsSnapshot,
  type CheckpointStorage,
  type Logger,
  type OperatorState,
  type TaskStateSnapshot,
} from '@weir/core';
import type { JobHistory, RestoredCheckpoint } from './job-history.js';
import { SharedStateRegistry, sharedFilesOf, type SharedFileRef } from './shared-state-registry.js';

/** What the coordinator needs from its job. */
export interface CheckpointedJob {
  jobId: string;
  /** all tasks (id, vertex, subtask, operator ids, whether a source) if all are RUNNING, else undefined */
  maxParallelism: number;
  runningTasks():
    | Array<{
        executionId: string;
        vertex: string;
        subtask: number;
        isSource: boolean;
        operatorIds: string[];
        parallelism: number;
      }>
    | undefined;
  trigger(
    executionId: string,
    checkpointId: number,
    timestamp: number,
    location: CheckpointLocation,
  ): Promise<void>;
  notify(executionId: string, checkpointId: number, completed: boolean, final: boolean): void;
  /** too many checkpoints failed in a row: the job fails over (or fails, per its restart strategy) */
  failover(cause: string): void;
  /** a checkpoint (not a savepoint) completed and is now the latest to restore from */
  completed?(checkpointId: number, path: string): void;
  /**
   * Records the retained checkpoints and the highest checkpoint id handed out durably (for a
   * restarted JobManager). Called before a checkpoint id is used and before tasks hear of a
   * completion, one call at a time; a failure fails that checkpoint.
   */
  persist?(retained: RetainedCheckpoint[], highestCheckpointId: number): Promise<void>;
  /** a checkpoint was triggered, completed or failed: statistics changed (the job keeps them) */
  statsChanged?(): void;
  /**
   * The source coordinators' state for `checkpointId`, by operator id: taken synchronously when
   * the checkpoint is triggered, before any source task hears of it.
   */
  snapshotCoordinators?(checkpointId: number): Record<string, unknown>;
}

/** A completed checkpoint the job can restore from. */
export interface RetainedCheckpoint {
  id: number;
  /** storage root URI and directory, e.g. file:///var/weir/checkpoints/<job>/chk-7 */
  path: string;
}

/** Where a checkpoint's files go: a storage root and a directory under it. */
export interface CheckpointLocation {
  storage: CheckpointStorage;
  directory: string;
  isSavepoint: boolean;
}

interface PendingCheckpoint {
  stats: CheckpointStats;
  location: CheckpointLocation;
  tasks: NonNullable<ReturnType<CheckpointedJob['runningTasks']>>;
  savepoint?: { resolve: (path: string) => void; reject: (err: Error) => void };
  notYetAcknowledged: Set<string>;
  /** triggered after every source ended: its completion lets the tasks finish */
  final: boolean;
  states: Map<string, { subtask: number; state: TaskStateSnapshot }>;
  coordinatorStates: Record<string, unknown>;
  timer: NodeJS.Timeout;
}

/** What the job store holds, or is about to once the write in progress lands. */
interface DurableState {
  retained: RetainedCheckpoint[];
  highestId: number;
}

const HISTORY = 50;
/** a refused delete is tried this many times in all, after 0.25, 0.5, 1, ... s */
const DISCARD_ATTEMPTS = 6;
const DISCARD_BACKOFF_MS = 250;

/**
 * Triggers checkpoints at the sources, collects acknowledgements and declines, completes a
 * checkpoint by writing its `_metadata` last, and discards what is subsumed or aborted,
 * after Flink's CheckpointCoordinator.
 *
 * Ordering rules: a checkpoint id is recorded in the job store before any task sees it
 * (Flink's CheckpointIDCounter); completions run one at a time in the order their last
 * acknowledgement arrived, and completing checkpoint n aborts every pending checkpoint with a
 * lower id, so the latest completed id only grows and tasks are notified of completions in
 * increasing order; job store writes run one at a time, each writing the newest state.
 */
export class CheckpointCoordinator {
  private nextId = 1;
  /** completions, one after another */
  private completions: Promise<void> = Promise.resolve();
  /** job store writes, one after another */
  private storeWrites: Promise<void> = Promise.resolve();
  private readonly durable: DurableState = { retained: [], highestId: 0 };
  private readonly pending = new Map<number, PendingCheckpoint>();
  private readonly retained: RetainedCheckpoint[] = [];
  private readonly history: CheckpointStats[] = [];
  private consecutiveFailures = 0;
  private lastTrigger = 0;
  private lastCompletion = 0;
  private timer: NodeJS.Timeout | undefined;
  private counts = { completed: 0, failed: 0, restored: 0 };
  private latestRestored: RestoredCheckpoint | undefined;
  /** all sources reached the end of their input: take the final checkpoint without waiting */
  private finalRequested = false;
  /** deletes still being tried again */
  private readonly discards = new Set<Promise<void>>();
  /** set by a savepoint that ends the job: no periodic checkpoint may follow it */
  private periodicStopped = false;
  /** the final checkpoint is completing or completed: the tasks finish, nothing more is triggered */
  private finalCompleted = false;
  private readonly abortedWhileSuspending: CheckpointLocation[] = [];
  /** reference counts of the shared files of incremental checkpoints */
  readonly sharedState: SharedStateRegistry;
  /** after a JobManager restart: the registry is rebuilt from the retained checkpoints' metadata */
  private sharedStateReady: Promise<void> = Promise.resolve();

  constructor(
    private readonly job: CheckpointedJob,
    readonly settings: CheckpointSettings,
    private readonly storage: CheckpointStorage,
    private readonly log: Logger,
  ) {
    this.sharedState = new SharedStateRegistry(storage, log);
  }

  /** Starts (or, after a restart, resumes) periodic checkpoints once every task runs. */
  start(): void {
    this.lastTrigger = Date.now();
    this.finalRequested = false;
    this.finalCompleted = false;
    // tasks of the failed attempt may have written files after the abort; they have all ended now
    for (const l of this.abortedWhileSuspending.splice(0))
      void l.storage.deleteDir(l.directory).catch(() => {});
    if (this.settings.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(100, this.settings.intervalMs / 4)));
    this.timer.unref();
  }

  /**
   * The job is restarting: periodic triggering pauses and checkpoints in flight are aborted
   * without counting as failures (they failed because the job did).
   */
  async suspend(reason: string): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const [id, p] of [...this.pending]) {
      this.abortedWhileSuspending.push(p.location);
      await this.abort(id, reason, false);
    }
  }

  /** Every source reached its end: the next checkpoint is the final one, taken at once. */
  requestFinalCheckpoint(): void {
    this.finalRequested = true;
    this.tick();
  }

  private tick(): void {
    if (this.periodicStopped || this.finalCompleted) return;
    const now = Date.now();
    if (this.pending.size >= this.settings.maxConcurrentCheckpoints) return;
    if (!this.finalRequested) {
      if (now - this.lastTrigger < this.settings.intervalMs) return;
      if (now - this.lastCompletion < this.settings.minPauseBetweenCheckpointsMs) return;
    } else if (this.pending.size > 0) {
      return;
    }
    const tasks = this.job.runningTasks();
    if (!tasks) return;
    this.trigger(tasks, now);
  }

  /**
   * After a JobManager restart: checkpoints found in storage are retained again and new ids
   * continue above every id used before, so files of an earlier attempt are never reused.
   */
  recover(retained: RetainedCheckpoint[], highestIdUsed: number): void {
    this.retained.splice(0, this.retained.length, ...retained.sort((a, b) => a.id - b.id));
    this.nextId = Math.max(this.nextId, highestIdUsed + 1, ...retained.map((r) => r.id + 1));
    this.durable.retained = [...this.retained];
    this.durable.highestId = this.nextId - 1;
    this.sharedStateReady = this.rebuildSharedState(this.nextId - 1);
    void this.sweepOrphanedCheckpoints(this.nextId - 1);
  }

  /**
   * A job restored from a savepoint or retained checkpoint continues that lineage's ids, so
   * ids (and names derived from them, such as sink files) never start again at 1.
   */
  continueAfter(restoredCheckpointId: number): void {
    this.nextId = Math.max(this.nextId, restoredCheckpointId + 1);
  }

  /**
   * Deletes the directories of checkpoints the previous JobManager triggered (ids up to
   * `highestIdUsed`, recorded before triggering) but never completed; newer ids are this
   * JobManager's own.
   */
  private async sweepOrphanedCheckpoints(
    highestIdUsed: number,
    why = 'deleting checkpoints the previous JobManager never completed',
  ): Promise<void> {
    const kept = new Set([...this.retained.map((r) => r.id), ...this.pending.keys()]);
    const orphans = (await this.storage.list(this.job.jobId).catch(() => [] as string[])).filter((name) => {
      const id = Number(/^chk-(\d+)$/.exec(name)?.[1] ?? NaN);
      return id <= highestIdUsed && !kept.has(id);
    });
    if (orphans.length > 0) this.log.info({ directories: orphans }, why);
    await Promise.all(orphans.map((name) => this.discard(this.storage, `${this.job.jobId}/${name}`)));
  }

  /**
   * Deletes a checkpoint directory, trying again with backoff (Flink's CheckpointsCleaner): a
   * delete refused once (S3 answering 503, say) must not leave a checkpoint behind for good.
   * The job's end waits for deletes still being retried.
   */
  private discard(storage: CheckpointStorage, directory: string): Promise<void> {
    const run = async (): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          await storage.deleteDir(directory);
          return;
        } catch (err) {
          if (attempt >= DISCARD_ATTEMPTS - 1) {
            this.log.warn(
              { directory, err: (err as Error).message },
              'could not discard a checkpoint directory',
            );
            return;
          }
          await new Promise((r) => setTimeout(r, DISCARD_BACKOFF_MS * 2 ** attempt).unref());
        }
      }
    };
    const d = run().finally(() => this.discards.delete(d));
    this.discards.add(d);
    return d;
  }

  /** Resolves once no completion and no job store write is in progress (failover waits for it). */
  async settled(): Promise<void> {
    for (;;) {
      const c = this.completions;
      const w = this.storeWrites;
      await Promise.all([c, w]);
      if (c === this.completions && w === this.storeWrites) return;
    }
  }

  /**
   * Writes the job store's record after `update` changed it, after every earlier write, so a
   * slower older write can never land after (and over) a newer one. On failure the update is
   * undone, so the next write records the state as it was.
   */
  private record(update: (d: DurableState) => void): Promise<void> {
    const persist = this.job.persist;
    if (!persist) return Promise.resolve();
    const write = this.storeWrites.then(async () => {
      const before = { retained: this.durable.retained, highestId: this.durable.highestId };
      update(this.durable);
      try {
        await persist([...this.durable.retained], this.durable.highestId);
      } catch (err) {
        this.durable.retained = before.retained;
        throw err;
      }
    });
    this.storeWrites = write.catch(() => {});
    return write;
  }

  /**
   * Registers the shared files of every retained checkpoint (read from its _metadata), so none
   * still referenced is deleted, then deletes shared files that checkpoints of the previous
   * JobManager wrote but never completed (ids up to `highestIdUsed`; newer ones are being written now).
   */
  private async rebuildSharedState(highestIdUsed: number): Promise<void> {
    for (const r of this.retained) {
      const directory = `${this.job.jobId}/chk-${r.id}`;
      try {
        const md = parseCheckpointMetadata(
          (await this.storage.read(`${directory}/_metadata`)).toString('utf8'),
          `checkpoint ${r.id} _metadata`,
        );
        this.sharedState.register(r.id, sharedFilesOf(md.operators, directory));
      } catch (err) {
        this.log.warn(
          { checkpointId: r.id, err: (err as Error).message },
          'cannot read a retained checkpoint to count its shared state; not sweeping shared files',
        );
        return;
      }
    }
    const dir = `${this.job.jobId}/shared`;
    const orphans = (await this.storage.list(dir).catch(() => [] as string[])).filter(
      (name) =>
        Number(/^(\d+)-/.exec(name)?.[1] ?? Infinity) <= highestIdUsed &&
        !this.sharedState.isReferenced(`${dir}/${name}`),
    );
    if (orphans.length > 0)
      this.log.info(
        { files: orphans.length },
        'deleting shared state files no retained checkpoint references',
      );
    await Promise.all(orphans.map((name) => this.storage.delete(`${dir}/${name}`).catch(() => {})));
  }

  /** The shared files that the acknowledgements of a checkpoint reference. */
  private sharedFilesOfAcks(p: PendingCheckpoint): SharedFileRef[] {
    const operators: Record<string, Pick<OperatorState, 'subtasks'>> = {};
    for (const { subtask, state } of p.states.values()) {
      for (const [op, entry] of Object.entries(state))
        (operators[op] ??= { subtasks: {} }).subtasks[subtask] = entry;
    }
    return sharedFilesOf(operators, p.location.directory);
  }

  /** Resolves when the shared state registry is rebuilt after recover() (for tests). */
  sharedStateRecovered(): Promise<void> {
    return this.sharedStateReady;
  }

  /** The newest completed checkpoint, if any. */
  latestCompleted(): RetainedCheckpoint | undefined {
    return this.retained[this.retained.length - 1];
  }

  /** The retained checkpoint before the newest, if any (named in errors as an explicit way back). */
  previousRetained(): RetainedCheckpoint | undefined {
    return this.retained[this.retained.length - 2];
  }

  get highestId(): number {
    return this.nextId - 1;
  }

  /**
   * A savepoint into `target` (a storage root URI); resolves to its directory when complete.
   * `terminate`: the job ends after it (stop/cancel with savepoint), so periodic checkpoints stop
   * first, as Flink's stop-with-savepoint does: a checkpoint triggered after the savepoint would
   * commit sink output past the savepoint's position, which the resumed job then writes again.
   * They resume if the savepoint fails.
   */
  triggerSavepoint(target: CheckpointStorage, opts: { terminate?: boolean } = {}): Promise<string> {
    const tasks = this.job.runningTasks();
    if (!tasks) return Promise.reject(new Error('A savepoint needs every task of the job RUNNING'));
    if (this.settings.unaligned && this.settings.mode !== 'AT_LEAST_ONCE')
      this.log.info(
        { checkpointId: this.nextId },
        'the savepoint is taken aligned although the job uses unaligned checkpoints: savepoints are always aligned (no in-flight data), so they restore at any parallelism',
      );
    if (opts.terminate) this.periodicStopped = true;
    const done = new Promise<string>((resolve, reject) =>
      this.trigger(tasks, Date.now(), { target, resolve, reject }),
    );
    if (!opts.terminate) return done;
    return done.catch((err: unknown) => {
      this.periodicStopped = false;
      throw err;
    });
  }

  private trigger(
    tasks: NonNullable<ReturnType<CheckpointedJob['runningTasks']>>,
    now: number,
    savepoint?: { target: CheckpointStorage; resolve: (path: string) => void; reject: (err: Error) => void },
  ): void {
    const id = this.nextId++;
    if (!savepoint) this.lastTrigger = now;
    const location: CheckpointLocation = savepoint
      ? {
          storage: savepoint.target,
          directory: `savepoint-${this.job.jobId.slice(0, 6)}-${id}`,
          isSavepoint: true,
        }
      : { storage: this.storage, directory: `${this.job.jobId}/chk-${id}`, isSavepoint: false };
    const stats: CheckpointStats = {
      id,
      savepoint: !!savepoint,
      status: 'IN_PROGRESS',
      triggerTime: now,
      stateSizeBytes: 0,
      maxSyncDurationMs: 0,
      maxAsyncDurationMs: 0,
      maxAlignmentDurationMs: 0,
      path: storageUri(childLocation(location.storage.location, location.directory)),
      subtasks: tasks.map((t) => ({
        executionId: t.executionId,
        vertex: t.vertex,
        subtask: t.subtask,
        acknowledged: false,
      })),
    };
    const p: PendingCheckpoint = {
      stats,
      location,
      tasks,
      ...(savepoint ? { savepoint: { resolve: savepoint.resolve, reject: savepoint.reject } } : {}),
      notYetAcknowledged: new Set(tasks.map((t) => t.executionId)),
      final: this.finalRequested && !savepoint,
      states: new Map(),
      coordinatorStates: this.job.snapshotCoordinators?.(id) ?? {},
      timer: setTimeout(
        () =>
          void this.abort(id, `expired after ${this.settings.timeoutMs} ms before all tasks acknowledged`),
        this.settings.timeoutMs,
      ),
    };
    this.pending.set(id, p);
    this.remember(stats);
    // the id is durable before any task sees it: a restarted JobManager never hands it out again
    // and knows which checkpoint directories are orphans
    this.record((d) => (d.highestId = Math.max(d.highestId, id))).then(
      () => {
        if (this.pending.get(id) !== p) return; // aborted meanwhile
        for (const t of tasks.filter((x) => x.isSource)) {
          this.job.trigger(t.executionId, id, now, location).catch(
            (err: Error & { code?: number }) =>
              // a TaskManager that cannot be reached is a task failure, which failure detection
              // handles (region or full failover); counting it as a failed checkpoint as well
              // would add a global restart on top of that failover
              void this.abort(
                id,
                `triggering ${t.vertex} (${t.subtask}) failed: ${err.message}`,
                err.code !== grpc.status.UNAVAILABLE,
              ),
          );
        }
      },
      (err: Error) =>
        void this.abort(id, `cannot record checkpoint id ${id} in the job store: ${err.message}`),
    );
  }

  private remember(stats: CheckpointStats): void {
    this.history.push(stats);
    if (this.history.length > HISTORY) this.history.shift();
    this.job.statsChanged?.();
  }

  /** The job restored `checkpoint` (Flink counts restores with the checkpoint statistics). */
  restoredFrom(checkpoint: Omit<RestoredCheckpoint, 'restoreTimestamp'>): void {
    this.counts.restored++;
    this.latestRestored = { ...checkpoint, restoreTimestamp: Date.now() };
    this.job.statsChanged?.();
  }

  /**
   * After a JobManager restart: the statistics its predecessor kept. Checkpoints that were in
   * progress then can never complete; they are shown as failed, with that reason.
   */
  recoverStats(stats: JobHistory['checkpoints']): void {
    const now = Date.now();
    for (const s of stats.history) {
      if (s.status !== 'IN_PROGRESS') continue;
      Object.assign(s, { status: 'FAILED', endTime: now, failureReason: 'the JobManager was restarted' });
      stats.counts.failed++;
    }
    this.history.splice(0, this.history.length, ...stats.history.slice(-HISTORY));
    this.counts = { ...stats.counts };
    this.latestRestored = stats.latestRestored;
  }

  /** What the job store keeps of the statistics. */
  statsForHistory(): JobHistory['checkpoints'] {
    return {
      counts: { ...this.counts },
      history: this.history,
      ...(this.latestRestored ? { latestRestored: this.latestRestored } : {}),
    };
  }

  acknowledge(
    executionId: string,
    id: number,
    state: TaskStateSnapshot,
    m: {
      syncDurationMs: number;
      asyncDurationMs: number;
      alignmentDurationMs: number;
      stateSizeBytes: number;
      persistedDataBytes?: number;
      unaligned?: boolean;
    },
  ): void {
    const p = this.pending.get(id);
    if (!p) {
      // too late (the checkpoint was aborted): new shared files it wrote are nobody's
      if (Object.values(state).some((s) => s.keyed && sharedFilesOfHandle(s.keyed).length > 0))
        void this.discardLateAck(id, state);
      return;
    }
    if (!p.notYetAcknowledged.delete(executionId)) return;
    const st = p.stats.subtasks.find((s) => s.executionId === executionId)!;
    Object.assign(st, { acknowledged: true, ackTime: Date.now(), ...m });
    p.stats.stateSizeBytes += m.stateSizeBytes;
    p.stats.maxSyncDurationMs = Math.max(p.stats.maxSyncDurationMs, m.syncDurationMs);
    p.stats.maxAsyncDurationMs = Math.max(p.stats.maxAsyncDurationMs, m.asyncDurationMs);
    p.stats.maxAlignmentDurationMs = Math.max(p.stats.maxAlignmentDurationMs, m.alignmentDurationMs);
    p.stats.persistedDataBytes = (p.stats.persistedDataBytes ?? 0) + (m.persistedDataBytes ?? 0);
    if (m.unaligned) p.stats.unaligned = true;
    p.states.set(executionId, { subtask: st.subtask, state });
    if (p.notYetAcknowledged.size === 0) {
      // fully acknowledged: no timeout any more; completes after the completions before it
      clearTimeout(p.timer);
      this.completions = this.completions
        .then(() => this.complete(id, p))
        .catch((err: Error) =>
          this.log.error({ checkpointId: id, err: err.message }, 'completing a checkpoint failed'),
        );
    }
  }

  private async discardLateAck(id: number, state: TaskStateSnapshot): Promise<void> {
    try {
      const operators = Object.fromEntries(
        Object.entries(state).map(([op, entry]) => [op, { subtasks: { 0: entry } }]),
      );
      await this.sharedStateReady;
      await this.sharedState.discardUnreferenced(
        sharedFilesOf(operators, `${this.job.jobId}/chk-${id}`).filter((f) => f.checkpointId === id),
      );
    } catch {
      /* nothing to discard */
    }
  }

  decline(executionId: string, id: number, reason: string): void {
    if (!this.pending.has(id)) return;
    void this.abort(id, `declined by ${executionId}: ${reason}`);
  }

  /** A task that ends before acknowledging can never acknowledge; its failure is the job's, not the checkpoint's. */
  taskEnded(executionId: string): void {
    for (const [id, p] of this.pending) {
      if (p.notYetAcknowledged.has(executionId))
        void this.abort(id, `task ${executionId} ended before acknowledging`, false);
    }
  }

  private async complete(id: number, p: PendingCheckpoint): Promise<void> {
    // aborted while waiting for its turn (subsumed by a newer completion, the job failed over, ...)
    if (this.pending.get(id) !== p) return;
    // from here until the tasks report FINISHED they still look running: a checkpoint triggered
    // meanwhile (while this one is written and recorded, out of `pending`) would reach sources
    // that are ending, and their decline would count as a failed checkpoint
    if (p.final) this.finalCompleted = true;
    const operators: Record<string, OperatorState> = {};
    for (const t of p.tasks)
      for (const op of t.operatorIds) operators[op] ??= { parallelism: t.parallelism, subtasks: {} };
    for (const { subtask, state } of p.states.values()) {
      for (const [op, entry] of Object.entries(state)) operators[op]!.subtasks[subtask] = entry;
    }
    for (const [op, c] of Object.entries(p.coordinatorStates))
      if (operators[op]) operators[op].coordinatorState = c;
    const metadata = {
      version: 1,
      jobId: this.job.jobId,
      checkpointId: id,
      savepoint: p.location.isSavepoint,
      timestamp: p.stats.triggerTime,
      maxParallelism: this.job.maxParallelism,
      operators,
    } satisfies CheckpointMetadata;
    const { storage, directory } = p.location;
    // incremental checkpoints: every shared file an earlier checkpoint wrote must still be retained
    await this.sharedStateReady;
    const shared = p.location.isSavepoint ? [] : sharedFilesOf(operators, directory);
    const gone = this.sharedState.missing(id, shared);
    if (gone) {
      await this.abort(
        id,
        `shared state file ${gone.path} of checkpoint ${gone.checkpointId} is no longer retained`,
      );
      return;
    }
    try {
      await storage.write(`${directory}/_metadata`, Buffer.from(JSON.stringify(metadata)));
    } catch (err) {
      await this.abort(id, (err as Error).message);
      return;
    }
    if (!this.pending.delete(id)) {
      // aborted while the metadata was written: leave nothing behind
      await storage.deleteDir(directory).catch(() => {});
      return;
    }
    if (!p.savepoint) {
      // the pointer to the new checkpoint is durable before any task may commit on its account
      const retained = [...this.retained, { id, path: p.stats.path }];
      const kept = retained.slice(Math.max(0, retained.length - this.settings.retainedCheckpoints));
      try {
        await this.record((d) => (d.retained = kept));
      } catch (err) {
        this.pending.set(id, p);
        await this.abort(id, `cannot record the checkpoint for recovery: ${(err as Error).message}`);
        return;
      }
      this.sharedState.register(id, shared);
      // older checkpoints still pending can never complete now: their completion would go back
      // in time (abort takes them out of `pending` and tells their tasks at once; files go later)
      for (const [older, q] of [...this.pending]) {
        if (older < id && !q.savepoint)
          void this.abort(older, `subsumed by the completed checkpoint ${id}`, false);
      }
    }
    const now = Date.now();
    Object.assign(p.stats, { status: 'COMPLETED', endTime: now, durationMs: now - p.stats.triggerTime });
    this.counts.completed++;
    this.consecutiveFailures = 0;
    this.lastCompletion = now;
    this.log.info(
      { checkpointId: id, durationMs: p.stats.durationMs, sizeBytes: p.stats.stateSizeBytes },
      'checkpoint completed',
    );
    this.job.statsChanged?.();
    if (p.savepoint) {
      // savepoints belong to the user: never retained, never discarded, and they must not let
      // sinks commit, since failover does not restore them (as in Flink 1.15+)
      p.savepoint.resolve(p.stats.path);
      return;
    }
    this.retained.push({ id, path: p.stats.path });
    for (const s of p.stats.subtasks) this.job.notify(s.executionId, id, true, p.final);
    this.job.completed?.(id, p.stats.path);
    while (this.retained.length > this.settings.retainedCheckpoints) {
      const old = this.retained.shift()!.id;
      await this.discard(this.storage, `${this.job.jobId}/chk-${old}`);
      // shared files only the subsumed checkpoint used go with it
      await this.sharedState.unregister(old);
    }
    // directories of older checkpoints that are neither retained nor pending are orphans: state
    // files a task wrote after its checkpoint was aborted (a TaskManager cut off from the
    // JobManager keeps writing until it notices), or a delete that failed for good
    void this.sweepOrphanedCheckpoints(id, 'deleting directories of checkpoints that were aborted');
  }

  private async abort(id: number, reason: string, countsAsFailure = true): Promise<void> {
    const p = this.pending.get(id);
    if (!p) return;
    if (p.final) this.finalCompleted = false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    Object.assign(p.stats, {
      status: 'FAILED',
      endTime: Date.now(),
      durationMs: Date.now() - p.stats.triggerTime,
      failureReason: reason,
    });
    this.counts.failed++;
    if (countsAsFailure) this.consecutiveFailures++;
    this.job.statsChanged?.();
    this.log.warn({ checkpointId: id, reason }, 'checkpoint aborted');
    for (const s of p.stats.subtasks) this.job.notify(s.executionId, id, false, false);
    await this.discard(p.location.storage, p.location.directory);
    // shared files this checkpoint wrote, unless a retained checkpoint took them over
    await this.sharedStateReady;
    await this.sharedState.discardUnreferenced(
      this.sharedFilesOfAcks(p).filter((f) => f.checkpointId === id),
    );
    if (p.savepoint) {
      p.savepoint.reject(new Error(`Savepoint ${id} failed: ${reason}`));
      return;
    }
    if (countsAsFailure && this.consecutiveFailures > this.settings.tolerableFailedCheckpoints) {
      this.consecutiveFailures = 0;
      this.job.failover(
        `Exceeded the tolerable number of failed checkpoints (${this.settings.tolerableFailedCheckpoints}); last: checkpoint ${id}: ${reason}`,
      );
    }
  }

  /** Stops triggering; discards pending checkpoints, and completed ones unless they are kept. */
  async stop(jobStatus: string): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const [id, p] of [...this.pending]) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      Object.assign(p.stats, { status: 'FAILED', endTime: Date.now(), failureReason: `job ${jobStatus}` });
      p.savepoint?.reject(new Error(`Savepoint ${id} failed: the job ended (${jobStatus})`));
      await p.location.storage.deleteDir(p.location.directory).catch(() => {});
      await this.sharedState
        .discardUnreferenced(this.sharedFilesOfAcks(p).filter((f) => f.checkpointId === id))
        .catch(() => {});
    }
    // a completion past its metadata finishes first, so what it retains is discarded or kept below
    await this.settled();
    const keep =
      jobStatus === 'JOB_FAILED' ||
      (jobStatus === 'JOB_CANCELED' && this.settings.externalizedRetention === 'RETAIN_ON_CANCELLATION');
    if (!keep) {
      for (const { id } of this.retained.splice(0)) await this.sharedState.unregister(id).catch(() => {});
      // the job's whole directory: retained checkpoints, shared files, and whatever tasks of
      // aborted checkpoints left behind
      await this.discard(this.storage, this.job.jobId);
    } else {
      await this.sweepOrphanedCheckpoints(
        Number.MAX_SAFE_INTEGER,
        'deleting directories of checkpoints that were not completed',
      );
    }
    await Promise.all([...this.discards]);
  }

  snapshotStats(): CheckpointStatsSnapshot & {
    counts: NonNullable<CheckpointStatsSnapshot['counts']> & { restored: number };
    history: CheckpointStats[];
    settings: CheckpointSettings;
    latestRestored?: RestoredCheckpoint;
  } {
    const latest = [...this.history].reverse().find((s) => s.status === 'COMPLETED');
    return {
      counts: { ...this.counts, inProgress: this.pending.size },
      ...(this.latestRestored ? { latestRestored: this.latestRestored } : {}),
      ...(latest ? { latestCompleted: latest } : {}),
      history: this.history,
      settings: this.settings,
    };
  }
}
