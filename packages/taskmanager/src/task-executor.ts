import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { rmdirSync } from 'node:fs';
import path from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
import {
  HealthReporter,
  JOBMANAGER_SESSION_HEADER,
  bindServer,
  controlProto,
  createLogger,
  createServer,
  dataProto,
  shutdownServer,
  type DataExchangeHandlers,
  type Logger,
  type TaskDeploymentDescriptor__Output,
  type TaskExecutorGatewayHandlers,
  s3StorageSettings,
  type S3Key,
  type Settings,
} from '@weir/core';
import { JobManagerConnection } from './job-manager-connection.js';
import { TaskManagerMetrics } from './task-manager-metrics.js';
import { ExchangeRouter } from './network/exchange-router.js';
import { DEFAULT_BUFFER_DEBLOAT } from './network/buffer-debloater.js';
import type { SlotWorkerData } from './slot-worker.js';
import type { RocksDBSettings } from './state/keyed-state-backend.js';
import { managedMemoryPerSlot } from './state/rocksdb/memory-budget.js';
import { dropLocalCheckpointsOfEndedJobs } from './state/local-recovery-storage.js';
import { resolveProcessMemory, type ProcessMemory } from './process-memory.js';
import type { NetworkSettings } from './task/stream-task.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

/** The registry settings a TaskManager reads, complete: the process's (`resolveConfig().settings`) or `defaultSettings()`. */
export type TaskManagerSettings = Pick<
  Settings,
  | 'taskmanager.memory.process.size'
  | 'taskmanager.memory.managed.size'
  | 'taskmanager.memory.managed.fraction'
  | 'state.backend.rocksdb.read-cache.size'
  | 'state.backend.rocksdb.block.cache-size'
  | 'state.backend.rocksdb.writebuffer.size'
  | 'task.cancellation.timeout'
  | 'taskmanager.slot.prewarm'
  | 'pipeline.auto-watermark-interval'
  | 'taskmanager.network.memory.buffer-debloat.enabled'
  | 'taskmanager.network.memory.buffer-debloat.target'
  | 'taskmanager.network.memory.buffer-debloat.period'
  | 'taskmanager.network.memory.buffer-debloat.samples'
  | 'taskmanager.network.memory.buffer-debloat.threshold-percentages'
  | 'taskmanager.memory.min-segment-size'
  | 'log.level'
  | 'state.backend.local-recovery'
  | 'state.backend.rocksdb.native-checkpoints'
  | 'taskmanager.state.local.root-dirs'
  | S3Key
>;

export interface TaskManagerOptions {
  jobManagerAddress: string;
  slots: number;
  /** interface to bind the TaskManager's gRPC server to */
  host: string;
  port: number;
  /** address other processes use to reach this TaskManager (defaults to host) */
  advertisedHost?: string;
  workDir: string;
  network?: Partial<NetworkSettings>;
  taskManagerId?: string;
  /**
   * Local state directory root (RocksDB working state): this TaskManager uses
   * `<stateDir>/<taskManagerId>` (the CLI's default is `<cwd>/.weir/tm-state`).
   */
  stateDir: string;
  /**
   * managed memory and RocksDB memory (see state/rocksdb/memory-budget.ts); task.cancellation.timeout: a task that has not ended this long
   * after it was told to cancel (user code stuck in a loop) gets its slot's worker thread
   * terminated, like Flink's task cancellation watchdog but without taking the whole
   * TaskManager down; the S3 settings go to every slot's worker thread.
   */
  settings: TaskManagerSettings;
  /** serve Prometheus metrics at GET /metrics on this port (0: any free port; unset: none) */
  prometheusPort?: number;
  /**
   * Slot worker threads started before this TaskManager had an identity (a standby's, from
   * startSpareSlotWorkers), their task code loaded: the slots take them instead of starting new ones.
   */
  spareWorkers?: Worker[];
}

/** The process's memory split, when taskmanager.memory.process.size is set. */
function processMemoryOf(s: TaskManagerSettings, slots: number): ProcessMemory | undefined {
  const processSize = s['taskmanager.memory.process.size'];
  return processSize === undefined
    ? undefined
    : resolveProcessMemory(
        processSize,
        s['taskmanager.memory.managed.size'],
        s['taskmanager.memory.managed.fraction'],
        slots,
        s['state.backend.rocksdb.read-cache.size'],
      );
}

function newSlotWorker(workerData: SlotWorkerData | null, pm: ProcessMemory | undefined): Worker {
  return new Worker(WORKER_ENTRY, {
    workerData,
    stdout: false,
    stderr: false,
    ...(pm ? { resourceLimits: { maxOldGenerationSizeMb: pm.workerHeapMb } } : {}),
  });
}

/**
 * Slot worker threads for a TaskManager that has no identity yet (a local cluster's standby):
 * they load the task code now and learn the TaskManager's id and directories when it adopts
 * them, so the tasks of a TaskManager that died start without waiting for that code to load.
 */
export function startSpareSlotWorkers(settings: TaskManagerSettings, slots: number): Worker[] {
  const pm = processMemoryOf(settings, slots);
  return Array.from({ length: slots }, () => {
    const w = newSlotWorker(null, pm);
    // a spare that dies while waiting is replaced when the TaskManager starts (TaskExecutor.start)
    w.on('error', () => {});
    return w;
  });
}

interface Slot {
  index: number;
  worker?: Worker;
  jobId?: string;
  tasks: Set<string>;
  /** tasks of `tasks` that were asked to cancel */
  canceling: Set<string>;
  /** the worker was started ahead of any task, with `jobId`'s bundle planned (slot prewarming) */
  prewarmed?: boolean;
  /** a prewarm of this slot is fetching its bundle */
  warming?: boolean;
  /**
   * a blank worker (task code loaded, no job) started when the slot's tasks ended, for the next
   * job deployed here while the old worker still routes its last frames
   */
  spare?: Worker;
}

/** how long a job runs before free slots are prewarmed with its bundle */
const PREWARM_AFTER_MS = 2_000;

const DEFAULT_NETWORK: NetworkSettings = { creditsPerChannel: 4, maxBacklog: 4, bufferTimeoutMs: 100 };
const WORKER_ENTRY = new URL('./slot-worker.js', import.meta.url);

/**
 * The TaskManager process: serves the TaskExecutorGateway, keeps the slot table and runs each
 * slot's tasks in a worker thread (deployment, cancellation and its watchdog live here). Its
 * JobManagerConnection registers the slots and heartbeats; its ExchangeRouter routes frames and
 * credits between workers, and to and from other TaskManagers over gRPC streams.
 */
export class TaskExecutor {
  readonly id: string;
  readonly log: Logger;
  private readonly server = createServer();
  /** grpc.health.v1.Health: SERVING only while registered with the JobManager */
  readonly health = new HealthReporter(this.server, ['weir.TaskExecutorGateway', 'weir.DataExchange']);
  private address = '';
  private readonly jm: JobManagerConnection;
  private readonly slots: Slot[];
  private readonly network: NetworkSettings;
  /** the local state directory of this TaskManager and RocksDB's memory bounds */
  readonly rocksdb: RocksDBSettings;
  /** the process's memory split, when taskmanager.memory.process.size is set */
  readonly processMemory: ProcessMemory | undefined;
  private readonly exchange: ExchangeRouter;
  readonly metrics: TaskManagerMetrics;
  private readonly executionSlot = new Map<string, Slot>();
  /** where local recovery keeps checkpoint copies (kept across restarts of a TaskManager with this id); unset when off */
  readonly localRecoveryDir: string | undefined;
  private stopping = false;

  constructor(private readonly opts: TaskManagerOptions) {
    this.id = opts.taskManagerId ?? `tm-${randomUUID().slice(0, 8)}`;
    this.log = createLogger('taskmanager', { taskManagerId: this.id }, opts.settings['log.level']);
    this.slots = Array.from({ length: opts.slots }, (_, index) => ({
      index,
      tasks: new Set<string>(),
      canceling: new Set<string>(),
    }));
    const s = opts.settings;
    this.network = {
      ...DEFAULT_NETWORK,
      debloat: {
        ...DEFAULT_BUFFER_DEBLOAT,
        enabled: s['taskmanager.network.memory.buffer-debloat.enabled'],
        targetMs: s['taskmanager.network.memory.buffer-debloat.target'],
        periodMs: s['taskmanager.network.memory.buffer-debloat.period'],
        samples: s['taskmanager.network.memory.buffer-debloat.samples'],
        thresholdPercentages: s['taskmanager.network.memory.buffer-debloat.threshold-percentages'],
        minBufferSize: Math.min(
          s['taskmanager.memory.min-segment-size'],
          DEFAULT_BUFFER_DEBLOAT.maxBufferSize,
        ),
      },
      ...opts.network,
    };
    this.processMemory = processMemoryOf(s, opts.slots);
    this.rocksdb = {
      localDir: path.join(path.resolve(opts.stateDir), this.id),
      memory: {
        perSlot: managedMemoryPerSlot(
          this.processMemory?.managed ?? s['taskmanager.memory.managed.size'],
          s['taskmanager.memory.managed.fraction'],
          opts.slots,
        ),
        readCacheSize: opts.settings['state.backend.rocksdb.read-cache.size'],
        blockCacheSize: opts.settings['state.backend.rocksdb.block.cache-size'],
        writeBufferSize: opts.settings['state.backend.rocksdb.writebuffer.size'],
      },
      nativeCheckpoints: opts.settings['state.backend.rocksdb.native-checkpoints'],
    };
    const localRoot = opts.settings['taskmanager.state.local.root-dirs'];
    this.localRecoveryDir = opts.settings['state.backend.local-recovery']
      ? localRoot
        ? path.join(path.resolve(localRoot), this.id)
        : path.join(this.rocksdb.localDir, 'local-recovery')
      : undefined;
    this.exchange = new ExchangeRouter(this.id);
    this.metrics = new TaskManagerMetrics(this.rocksdb.localDir, this.log);
    this.jm = new JobManagerConnection({
      jobManagerAddress: opts.jobManagerAddress,
      taskManagerId: this.id,
      slots: opts.slots,
      address: () => this.address,
      metrics: this.metrics.samples,
      processMetrics: () => this.metrics.processSample(),
      metricsAddress: () => this.metrics.address,
      health: this.health,
      log: this.log,
      onLost: () => this.cancelAll(),
      onRunningJobs: (jobs) => {
        this.prewarmSlots(jobs);
        this.dropLocalStateOfEndedJobs(jobs);
      },
    });
  }

  get boundAddress(): string {
    return this.address;
  }

  /**
   * The gateway's calls come only from the JobManager this TaskManager registered with (it
   * presents the registration's session); any other caller, a cluster member included, gets
   * PERMISSION_DENIED and nothing happens.
   */
  private fromJobManager<Req, Res>(
    method: string,
    handler: grpc.handleUnaryCall<Req, Res>,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, cb) => {
      if (!this.jm.acceptsJobManager(call.metadata.get(JOBMANAGER_SESSION_HEADER)[0]))
        return cb({
          code: grpc.status.PERMISSION_DENIED,
          details: `TaskManager ${this.id} takes ${method} only from the JobManager it registered with (${this.opts.jobManagerAddress}); this call does not carry that registration's session`,
        });
      handler(call, cb);
    };
  }

  async start(): Promise<void> {
    // a standby's spare workers (code loaded) become the slots' workers; a slot whose spare died
    // starts one as it would without
    const spares = this.opts.spareWorkers ?? [];
    spares.forEach((spare, i) => {
      const slot = this.slots[i];
      if (slot && spare.threadId >= 0) slot.worker = this.adoptWorker(slot, spare);
      else void spare.terminate();
    });
    // with prewarming, every slot's worker thread starts first, loading the task code while the
    // TaskManager binds and registers: the first tasks deployed here (after a crash, the ones
    // that restore from its local state) find it loaded
    if (this.opts.settings['taskmanager.slot.prewarm'])
      for (const slot of this.slots) slot.worker ??= this.spawnWorker(slot);
    const gateway: TaskExecutorGatewayHandlers = {
      SubmitTask: (call, cb) => {
        this.submitTask(call.request).then(
          () => cb(null, { ok: true }),
          (err: Error) => cb(null, { ok: false, message: err.message }),
        );
      },
      CancelTask: (call, cb) => {
        this.cancelTask(call.request.executionId);
        cb(null, { ok: true });
      },
      TriggerCheckpoint: (call, cb) => {
        const r = call.request;
        const worker = this.executionSlot.get(r.executionId)?.worker;
        if (!worker) return cb(null, { ok: false, message: `no task ${r.executionId} on ${this.id}` });
        worker.postMessage({
          t: 'triggerCheckpoint',
          executionId: r.executionId,
          checkpointId: Number(r.checkpointId),
          timestamp: Number(r.timestamp),
          storage: r.storage,
          directory: r.directory,
          isSavepoint: r.isSavepoint,
        } satisfies ToWorker);
        cb(null, { ok: true });
      },
      NotifyCheckpoint: (call, cb) => {
        const r = call.request;
        this.executionSlot.get(r.executionId)?.worker?.postMessage({
          t: 'notifyCheckpoint',
          executionId: r.executionId,
          checkpointId: Number(r.checkpointId),
          completed: r.completed,
          final: r.final,
        } satisfies ToWorker);
        cb(null, { ok: true });
      },
    };
    const guarded: TaskExecutorGatewayHandlers = {
      SubmitTask: this.fromJobManager('SubmitTask', gateway.SubmitTask),
      CancelTask: this.fromJobManager('CancelTask', gateway.CancelTask),
      TriggerCheckpoint: this.fromJobManager('TriggerCheckpoint', gateway.TriggerCheckpoint),
      NotifyCheckpoint: this.fromJobManager('NotifyCheckpoint', gateway.NotifyCheckpoint),
    };
    this.server.addService(controlProto.TaskExecutorGateway.service, guarded);
    const exchange: DataExchangeHandlers = { Exchange: (call) => this.exchange.serveExchange(call) };
    this.server.addService(dataProto.DataExchange.service, exchange);
    const port = await bindServer(this.server, this.opts.host, this.opts.port);
    this.address = `${this.opts.advertisedHost ?? this.opts.host}:${port}`;
    const pm = this.processMemory;
    this.log.info(
      {
        address: this.address,
        slots: this.opts.slots,
        managedMemoryPerSlot: this.rocksdb.memory.perSlot,
        // how long the process took to get here (a restarted TaskManager's tasks wait for it)
        startedInMs: Math.round(process.uptime() * 1000),
        ...(pm ? { processSize: pm.processSize, overhead: pm.overhead, workerHeapMb: pm.workerHeapMb } : {}),
      },
      'TaskManager listening',
    );
    if (this.opts.prometheusPort !== undefined)
      await this.metrics.serve(
        this.opts.host,
        this.opts.prometheusPort,
        this.opts.advertisedHost ?? this.opts.host,
      );
    await this.jm.register();
  }

  // ---- task deployment

  private async submitTask(tdd: TaskDeploymentDescriptor__Output): Promise<void> {
    const slot = this.slots[tdd.slotIndex];
    if (!slot) throw new Error(`TaskManager ${this.id} has no slot ${tdd.slotIndex}`);
    if (slot.jobId && slot.jobId !== tdd.jobId && slot.tasks.size > 0) {
      throw new Error(`Slot ${tdd.slotIndex} of ${this.id} is busy with job ${slot.jobId}`);
    }
    const bundle = await this.jm.fetchBundle(tdd.jobId);
    const prewarmed = !!slot.prewarmed && slot.jobId === tdd.jobId && !!slot.worker;
    // a worker started with the TaskManager, its code loaded and no job yet: any job takes it
    const blank = !!slot.worker && slot.jobId === undefined && slot.tasks.size === 0;
    slot.prewarmed = false;
    const spare = !blank && slot.jobId !== tdd.jobId && slot.spare !== undefined;
    if (!slot.worker || (!blank && slot.jobId !== tdd.jobId)) {
      if (slot.worker) this.stopWorker(slot.worker);
      slot.worker = slot.spare ?? this.spawnWorker(slot);
      slot.spare = undefined;
    }
    slot.jobId = tdd.jobId;
    slot.tasks.add(tdd.executionId);
    this.metrics.taskDeployed(tdd.executionId, tdd);
    this.executionSlot.set(tdd.executionId, slot);
    for (const rp of tdd.resultPartitions)
      this.exchange.expectConsumers(rp.partitionId, rp.consumerExecutionIds);
    this.log.info(
      {
        jobId: tdd.jobId,
        executionId: tdd.executionId,
        task: `${tdd.vertexName} (${tdd.subtaskIndex + 1}/${tdd.parallelism})`,
        slot: slot.index,
        prewarmed,
        ...(blank || spare ? { blankWorker: true } : {}),
      },
      'deploying task',
    );
    slot.worker.postMessage({ t: 'deploy', tdd, bundle } satisfies ToWorker);
  }

  /** With local recovery: the local RocksDB checkpoints of jobs that ended go (they hold disk space). */
  private dropLocalStateOfEndedJobs(jobs: { jobId: string }[]): void {
    const dir = this.localRecoveryDir;
    if (!dir || this.stopping) return;
    const keep = new Set(jobs.map((j) => j.jobId));
    for (const slot of this.slots) if (slot.jobId && slot.tasks.size > 0) keep.add(slot.jobId);
    void dropLocalCheckpointsOfEndedJobs(dir, keep).then((ended) => {
      if (ended.length > 0)
        this.log.info({ jobs: ended }, 'local recovery: local checkpoints of ended jobs removed');
    });
  }

  /**
   * Slot prewarming: a task moved to a spare slot on failover spends most of its small-state
   * recovery starting the slot's worker thread and planning the job bundle (running the job's
   * code to rebuild its graph). With each JobManager heartbeat every free slot gets a worker with
   * the bundle of a running job planned, so a deployment there finds both done; a prewarmed
   * worker of a job that has ended is stopped. Jobs share the free slots in turn.
   */
  private prewarmSlots(all: { jobId: string; jobContextJson: string; runningMs: number }[]): void {
    if (this.stopping) return;
    const running = new Set(all.map((j) => j.jobId));
    // a job is prewarmed for once it has run PREWARM_AFTER_MS: a short job ends before a
    // failover could use the warm slot, and warming a worker (loading the task code, planning
    // the bundle) takes CPU that the job's own tasks wait for on a small machine (jobs
    // submitted one after another: 1.2 s each against 0.7 s without prewarming)
    const jobs = all.filter((j) => j.runningMs >= PREWARM_AFTER_MS);
    for (const slot of this.slots) {
      if (slot.prewarmed && slot.tasks.size === 0 && slot.worker && !running.has(slot.jobId ?? '')) {
        this.log.info({ jobId: slot.jobId, slot: slot.index }, 'prewarmed slot released');
        this.stopWorker(slot.worker);
        slot.jobId = undefined;
        slot.prewarmed = false;
        slot.worker = this.blankWorker(slot);
      }
    }
    if (!this.opts.settings['taskmanager.slot.prewarm'] || jobs.length === 0) return;
    let next = 0;
    // a slot without a worker, or with a blank one (started with the TaskManager)
    const free = (slot: Slot): boolean =>
      (!slot.worker || slot.jobId === undefined) && !slot.warming && slot.tasks.size === 0;
    for (const slot of this.slots) {
      if (!free(slot)) continue;
      const job = jobs[next++ % jobs.length]!;
      slot.warming = true;
      this.jm.fetchBundle(job.jobId).then(
        (bundle) => {
          slot.warming = false;
          // a deployment may have taken the slot meanwhile
          if (this.stopping || !free(slot)) return;
          slot.worker ??= this.spawnWorker(slot);
          slot.jobId = job.jobId;
          slot.prewarmed = true;
          slot.worker.postMessage({
            t: 'prewarm',
            bundle,
            jobContextJson: job.jobContextJson,
          } satisfies ToWorker);
          this.log.info({ jobId: job.jobId, slot: slot.index }, 'slot prewarmed');
        },
        (err: Error) => {
          slot.warming = false;
          this.log.debug({ jobId: job.jobId, err: err.message }, 'could not prewarm a slot');
        },
      );
    }
  }

  /** What a slot worker that ran out of JavaScript heap was given, and which settings change it. */
  private outOfMemoryHint(): string {
    const pm = this.processMemory;
    if (!pm)
      return `; the slot's worker thread has the process's JavaScript heap limit (${Math.round(getHeapStatistics().heap_size_limit / (1 << 20))} MiB): raise it with --max-old-space-size, or bound the process with taskmanager.memory.process.size`;
    return (
      `; each slot's worker thread has ${pm.workerHeapMb} MiB of JavaScript heap from taskmanager.memory.process.size ` +
      `(${Math.round(pm.processSize / (1 << 20))} MiB for ${this.slots.length} slot${this.slots.length === 1 ? '' : 's'}, ` +
      `managed memory ${Math.round(pm.managed / (1 << 20))} MiB): raise taskmanager.memory.process.size, lower taskmanager.memory.managed.fraction or use fewer slots`
    );
  }

  private stopWorker(worker: Worker): void {
    worker.terminate().catch(() => {});
  }

  private spawnWorker(slot: Slot): Worker {
    return this.watchWorker(slot, newSlotWorker(this.slotWorkerData(), this.processMemory));
  }

  /** A spare worker (see startSpareSlotWorkers) told this TaskManager's identity first. */
  private adoptWorker(slot: Slot, worker: Worker): Worker {
    worker.removeAllListeners('error');
    worker.postMessage({ t: 'identity', data: this.slotWorkerData() } satisfies ToWorker);
    return this.watchWorker(slot, worker);
  }

  private slotWorkerData(): SlotWorkerData {
    return {
      taskManagerId: this.id,
      bundleCacheDir: path.join(this.opts.workDir, 'bundles'),
      network: this.network,
      rocksdb: this.rocksdb,
      s3: s3StorageSettings(this.opts.settings),
      autoWatermarkIntervalMs: this.opts.settings['pipeline.auto-watermark-interval'],
      ...(this.localRecoveryDir ? { localRecoveryDir: this.localRecoveryDir } : {}),
    };
  }

  private watchWorker(slot: Slot, worker: Worker): Worker {
    worker.on('message', (msg: FromWorker) => this.onWorkerMessage(worker, msg));
    worker.on('error', (err: Error & { code?: string }) => {
      if (slot.spare === worker) {
        // a blank worker with no tasks: the next job gets a fresh one
        this.log.error({ slot: slot.index, err: err.message }, 'blank slot worker crashed');
        slot.spare = undefined;
        return;
      }
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') err.message += this.outOfMemoryHint();
      this.log.error({ slot: slot.index, err: err.message }, 'slot worker crashed');
      for (const executionId of slot.tasks) {
        this.jm.reportState({
          jobId: slot.jobId ?? '',
          executionId,
          state: 'FAILED',
          failure: {
            vertexName: '',
            subtaskIndex: 0,
            taskManagerId: this.id,
            message: `Slot worker crashed: ${err.message}`,
            stack: err.stack ?? '',
            domain: 'internal',
          },
        });
      }
      slot.tasks.clear();
      slot.canceling.clear();
      slot.worker = undefined;
    });
    return worker;
  }

  private cancelTask(executionId: string): void {
    const slot = this.executionSlot.get(executionId);
    const worker = slot?.worker;
    if (!slot || !worker) return;
    worker.postMessage({ t: 'cancel', executionId } satisfies ToWorker);
    slot.canceling.add(executionId);
    this.watchCancellation(slot, worker, executionId);
  }

  private cancelAll(): void {
    for (const slot of this.slots) for (const executionId of [...slot.tasks]) this.cancelTask(executionId);
  }

  /**
   * A worker thread blocked in user code never reads the cancel message; terminating it stops
   * the code where it is (V8 interrupts even a busy loop), and the slot gets a fresh worker.
   */
  private watchCancellation(slot: Slot, worker: Worker, executionId: string): void {
    const timeoutMs = this.opts.settings['task.cancellation.timeout'];
    setTimeout(() => {
      if (slot.worker !== worker || !slot.tasks.has(executionId)) return;
      this.log.error(
        { executionId, slot: slot.index, timeoutMs },
        "task did not react to cancellation; terminating its slot's worker thread",
      );
      const stuck = [...slot.tasks];
      const canceling = new Set(slot.canceling);
      const jobId = slot.jobId ?? '';
      slot.tasks.clear();
      slot.canceling.clear();
      slot.worker = undefined;
      slot.jobId = undefined;
      void worker.terminate();
      this.exchange.forgetWorker(worker);
      for (const id of stuck) {
        this.executionSlot.delete(id);
        if (canceling.has(id)) {
          this.jm.reportState({ jobId, executionId: id, state: 'CANCELED' });
          continue;
        }
        // a task that shared the thread but was never asked to cancel (deployed into the slot
        // while the stuck one hung on): it ends here too, and the JobManager must hear that it
        // failed, or it would wait for it for ever
        this.jm.reportState({
          jobId,
          executionId: id,
          state: 'FAILED',
          failure: {
            vertexName: '',
            subtaskIndex: 0,
            taskManagerId: this.id,
            message: `Its slot's worker thread was terminated because task ${executionId} of the same slot did not react to cancellation within ${timeoutMs} ms`,
            stack: '',
            domain: 'internal',
            reason: '',
          },
        });
      }
    }, timeoutMs).unref();
  }

  // ---- messages from slot workers

  private onWorkerMessage(worker: Worker, msg: FromWorker): void {
    switch (msg.t) {
      case 'frame':
        this.exchange.routeFrame(msg.partitionId, msg.subpartition, msg.kind, msg.bytes);
        break;
      case 'credit':
        this.exchange.credit(msg.executionId, msg.channel, msg.credit, msg.bufferSize);
        break;
      case 'openChannel':
        this.exchange.openChannel(worker, msg);
        break;
      case 'closeChannel':
        this.exchange.closeChannel(`${msg.executionId}/${msg.channel}`);
        break;
      case 'partitionReady':
        this.exchange.partitionReady(msg.partitionId, worker);
        break;
      case 'partitionReleased':
        this.exchange.partitionReleased(msg.partitionId);
        break;
      case 'collected':
        this.jm.reportCollected(this.executionSlot.get(msg.executionId)?.jobId ?? '', msg);
        break;
      case 'checkpointAck':
      case 'checkpointDecline': {
        // a task already gone (canceled, failed over): the JobManager dropped its checkpoints
        const jobId = this.executionSlot.get(msg.executionId)?.jobId;
        if (jobId) this.jm.reportCheckpoint(jobId, msg);
        break;
      }
      case 'splitRequest':
        void this.jm
          .requestSplits(this.executionSlot.get(msg.executionId)?.jobId ?? '', msg)
          .then(
            (a) => ({ ...a, error: undefined }),
            (err: Error) => ({ splitsJson: '[]', noMoreSplits: false, error: err.message }),
          )
          .then(({ splitsJson, noMoreSplits, error }) =>
            worker.postMessage({
              t: 'splitAssignment',
              executionId: msg.executionId,
              requestId: msg.requestId,
              splitsJson,
              noMoreSplits,
              ...(error !== undefined ? { error } : {}),
            } satisfies ToWorker),
          );
        break;
      case 'metrics':
        for (const m of msg.metrics) this.metrics.update(m);
        break;
      case 'taskState': {
        const slot = this.executionSlot.get(msg.executionId);
        const update = {
          jobId: slot?.jobId ?? '',
          executionId: msg.executionId,
          state: msg.state,
          ...(msg.failure ? { failure: msg.failure } : {}),
          ...(msg.endOfData ? { endOfData: true } : {}),
          ...(msg.restoreDurationMs ? { restoreDurationMs: msg.restoreDurationMs } : {}),
        };
        this.jm.reportFinalState(update);
        if (msg.state === 'RUNNING') this.log.debug({ executionId: msg.executionId }, 'task running');
        if (msg.state !== 'RUNNING' && slot) {
          this.log.info(
            {
              executionId: msg.executionId,
              state: msg.state,
              ...(msg.failure ? { cause: msg.failure.message } : {}),
            },
            'task ended',
          );
          slot.tasks.delete(msg.executionId);
          slot.canceling.delete(msg.executionId);
          this.executionSlot.delete(msg.executionId);
          this.metrics.taskEnded(msg.executionId);
          if (slot.tasks.size === 0) this.releaseWorker(slot, msg.state);
        }
        break;
      }
    }
  }

  private releaseWorker(slot: Slot, lastState: string): void {
    const worker = slot.worker;
    // a job that finished: the next one may come at once. A canceled or failed task is most
    // often a restart of its job, which comes back to this worker: a blank one started now
    // would take CPU from the restore (kill to RUNNING, 1k keys: 139 against 102 ms)
    if (lastState === 'FINISHED') slot.spare ??= this.blankWorker(slot);
    // give frames already posted by the worker time to be routed before it goes
    setTimeout(() => {
      if (slot.worker === worker && slot.tasks.size === 0) {
        slot.jobId = undefined;
        if (worker) this.stopWorker(worker);
        slot.worker = slot.spare ?? this.blankWorker(slot);
        slot.spare = undefined;
      }
    }, 1_000).unref();
  }

  /**
   * With prewarming, a slot whose job's worker goes gets a blank one at once (task code loaded,
   * no job): starting a worker thread and loading that code takes 0.5-1.3 s, which the next job
   * deployed here would otherwise spend before its task runs (20 ms with a blank worker).
   */
  private blankWorker(slot: Slot): Worker | undefined {
    return this.opts.settings['taskmanager.slot.prewarm'] && !this.stopping
      ? this.spawnWorker(slot)
      : undefined;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.health.set('NOT_SERVING');
    this.log.info('TaskManager stopping');
    this.cancelAll();
    this.jm.stopHeartbeats();
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all(this.slots.flatMap((s) => [s.worker?.terminate(), s.spare?.terminate()]));
    // each task attempt deletes its own database; the TaskManager's directory goes if empty
    try {
      rmdirSync(this.rocksdb.localDir);
    } catch {
      /* absent, or holds what another process with this id still uses */
    }
    await shutdownServer(this.server, 1_000);
    this.exchange.close();
    this.jm.close();
    await this.metrics.close();
  }
}
