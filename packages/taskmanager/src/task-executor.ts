import type * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { rmdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  HealthReporter,
  bindServer,
  controlProto,
  createClient,
  createLogger,
  createServer,
  dataProto,
  shutdownServer,
  unary,
  type ConsumerMessage__Output,
  type DataExchangeClient,
  type DataExchangeHandlers,
  type JobManagerGatewayClient,
  type JobManagerHeartbeat__Output,
  type Logger,
  type ProducerMessage,
  type TaskDeploymentDescriptor__Output,
  type TaskExecutorGatewayHandlers,
  type TaskExecutionStateUpdate,
  type TaskManagerHeartbeat,
  type TaskMetrics,
  type RegisterTaskManagerResponse__Output,
  s3StorageSettings,
  type S3Key,
  type Settings,
} from '@weir/core';
import type { SlotWorkerData } from './slot-worker.js';
import type { RocksDBSettings } from './state/keyed-state-backend.js';
import type { NetworkSettings } from './task/stream-task.js';
import type { FrameKind, FromWorker, ToWorker } from './worker-protocol.js';

/** The registry settings a TaskManager reads, complete: the process's (`resolveConfig().settings`) or `defaultSettings()`. */
export type TaskManagerSettings = Pick<
  Settings,
  | 'state.backend.rocksdb.block.cache-size'
  | 'state.backend.rocksdb.writebuffer.size'
  | 'task.cancellation.timeout'
  | 'log.level'
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
   * RocksDB memory per database; task.cancellation.timeout: a task that has not ended this long
   * after it was told to cancel (user code stuck in a loop) gets its slot's worker thread
   * terminated, like Flink's task cancellation watchdog but without taking the whole
   * TaskManager down; the S3 settings go to every slot's worker thread.
   */
  settings: TaskManagerSettings;
}

interface Slot {
  index: number;
  worker?: Worker;
  jobId?: string;
  tasks: Set<string>;
}

type ConsumerRoute =
  | { local: true; worker: Worker; executionId: string; channel: number }
  | { local: false; call: grpc.ServerDuplexStream<ConsumerMessage__Output, ProducerMessage> };

type ChannelRoute =
  | { local: true; partitionId: string; subpartition: number }
  | {
      local: false;
      call: grpc.ClientDuplexStream<ConsumerMessage__Output, ProducerMessage>;
      closed: boolean;
    };

const DEFAULT_NETWORK: NetworkSettings = { creditsPerChannel: 4, maxBacklog: 4, bufferTimeoutMs: 100 };
const WORKER_ENTRY = new URL('./slot-worker.js', import.meta.url);

/**
 * The TaskManager process: registers its slots with the JobManager, runs each slot's tasks
 * in a worker thread, and routes frames and credits between workers, and between this and
 * other TaskManagers over gRPC streams (one per input channel).
 */
export class TaskExecutor {
  readonly id: string;
  readonly log: Logger;
  private readonly server = createServer();
  /** grpc.health.v1.Health: SERVING only while registered with the JobManager */
  readonly health = new HealthReporter(this.server, ['weir.TaskExecutorGateway', 'weir.DataExchange']);
  private address = '';
  private registrationId = '';
  private jm: JobManagerGatewayClient;
  private heartbeat: grpc.ClientDuplexStream<TaskManagerHeartbeat, JobManagerHeartbeat__Output> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly slots: Slot[];
  private readonly bundles = new Map<string, Promise<string>>();
  private readonly network: NetworkSettings;
  /** the local state directory of this TaskManager and RocksDB's memory bounds */
  readonly rocksdb: RocksDBSettings;
  private readonly producers = new Map<string, Worker>();
  private readonly pendingRequests = new Map<
    string,
    Array<{ subpartition: number; credit: number; route: ConsumerRoute }>
  >();
  private readonly consumers = new Map<string, ConsumerRoute>();
  private readonly channels = new Map<string, ChannelRoute>();
  private readonly dataClients = new Map<string, DataExchangeClient>();
  private readonly metrics = new Map<string, TaskMetrics>();
  private readonly executionSlot = new Map<string, Slot>();
  /** collected records of each execution, reported in order and before its final state */
  private readonly collectReports = new Map<string, Promise<void>>();
  private stopping = false;

  constructor(private readonly opts: TaskManagerOptions) {
    this.id = opts.taskManagerId ?? `tm-${randomUUID().slice(0, 8)}`;
    this.log = createLogger('taskmanager', { taskManagerId: this.id }, opts.settings['log.level']);
    this.slots = Array.from({ length: opts.slots }, (_, index) => ({ index, tasks: new Set<string>() }));
    this.network = { ...DEFAULT_NETWORK, ...opts.network };
    this.rocksdb = {
      localDir: path.join(path.resolve(opts.stateDir), this.id),
      blockCacheSize: opts.settings['state.backend.rocksdb.block.cache-size'],
      writeBufferSize: opts.settings['state.backend.rocksdb.writebuffer.size'],
    };
    this.jm = createClient(controlProto.JobManagerGateway, opts.jobManagerAddress);
  }

  get boundAddress(): string {
    return this.address;
  }

  async start(): Promise<void> {
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
    this.server.addService(controlProto.TaskExecutorGateway.service, gateway);
    const exchange: DataExchangeHandlers = { Exchange: (call) => this.serveExchange(call) };
    this.server.addService(dataProto.DataExchange.service, exchange);
    const port = await bindServer(this.server, this.opts.host, this.opts.port);
    this.address = `${this.opts.advertisedHost ?? this.opts.host}:${port}`;
    this.log.info({ address: this.address, slots: this.opts.slots }, 'TaskManager listening');
    await this.register();
  }

  // ---- JobManager connection

  private async register(): Promise<void> {
    let delay = 200;
    while (!this.stopping) {
      try {
        const res = await unary<RegisterTaskManagerResponse__Output>(
          this.jm.RegisterTaskManager.bind(this.jm),
          {
            taskManagerId: this.id,
            address: this.address,
            slots: this.opts.slots,
            pid: process.pid,
            hostname: os.hostname(),
          },
          5_000,
        );
        if (!res.accepted) throw new Error(res.reason || 'registration refused');
        this.registrationId = res.registrationId;
        this.log.info(
          { jobManager: this.opts.jobManagerAddress, registrationId: res.registrationId },
          'registered at JobManager',
        );
        this.startHeartbeat(Number(res.heartbeatIntervalMs) || 1000);
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

  private startHeartbeat(intervalMs: number): void {
    const stream = this.jm.Heartbeat();
    this.heartbeat = stream;
    const beat = (): void => {
      const mem = process.memoryUsage();
      stream.write({
        taskManagerId: this.id,
        registrationId: this.registrationId,
        metrics: [...this.metrics.values()],
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
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
      this.cancelAll();
      void this.register();
    };
    stream.on('data', () => {});
    stream.on('error', (err: Error) => onLost(err.message));
    stream.on('end', () => onLost('heartbeat stream closed by the JobManager'));
  }

  private reportState(
    update: Required<Pick<TaskExecutionStateUpdate, 'jobId' | 'executionId' | 'state'>> &
      Pick<TaskExecutionStateUpdate, 'failure' | 'endOfData' | 'restoreDurationMs'>,
  ): void {
    const metrics = this.metrics.get(update.executionId);
    unary(
      this.jm.UpdateTaskExecutionState.bind(this.jm),
      { ...update, taskManagerId: this.id, ...(metrics ? { metrics } : {}) },
      10_000,
    ).catch((err: Error) =>
      this.log.warn({ executionId: update.executionId, err: err.message }, 'could not report task state'),
    );
  }

  // ---- task deployment

  private fetchBundle(jobId: string): Promise<string> {
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

  private async submitTask(tdd: TaskDeploymentDescriptor__Output): Promise<void> {
    const slot = this.slots[tdd.slotIndex];
    if (!slot) throw new Error(`TaskManager ${this.id} has no slot ${tdd.slotIndex}`);
    if (slot.jobId && slot.jobId !== tdd.jobId && slot.tasks.size > 0) {
      throw new Error(`Slot ${tdd.slotIndex} of ${this.id} is busy with job ${slot.jobId}`);
    }
    const bundle = await this.fetchBundle(tdd.jobId);
    if (!slot.worker || slot.jobId !== tdd.jobId) {
      slot.worker?.terminate().catch(() => {});
      slot.worker = this.spawnWorker(slot);
      slot.jobId = tdd.jobId;
    }
    slot.tasks.add(tdd.executionId);
    this.executionSlot.set(tdd.executionId, slot);
    this.log.info(
      {
        jobId: tdd.jobId,
        executionId: tdd.executionId,
        task: `${tdd.vertexName} (${tdd.subtaskIndex + 1}/${tdd.parallelism})`,
        slot: slot.index,
      },
      'deploying task',
    );
    slot.worker.postMessage({ t: 'deploy', tdd, bundle } satisfies ToWorker);
  }

  private spawnWorker(slot: Slot): Worker {
    const data: SlotWorkerData = {
      taskManagerId: this.id,
      bundleCacheDir: path.join(this.opts.workDir, 'bundles'),
      network: this.network,
      rocksdb: this.rocksdb,
      s3: s3StorageSettings(this.opts.settings),
    };
    const worker = new Worker(WORKER_ENTRY, { workerData: data, stdout: false, stderr: false });
    worker.on('message', (msg: FromWorker) => this.onWorkerMessage(worker, msg));
    worker.on('error', (err) => {
      this.log.error({ slot: slot.index, err: err.message }, 'slot worker crashed');
      for (const executionId of slot.tasks) {
        this.reportState({
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
      slot.worker = undefined;
    });
    return worker;
  }

  private cancelTask(executionId: string): void {
    const slot = this.executionSlot.get(executionId);
    const worker = slot?.worker;
    if (!slot || !worker) return;
    worker.postMessage({ t: 'cancel', executionId } satisfies ToWorker);
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
      const jobId = slot.jobId ?? '';
      slot.tasks.clear();
      slot.worker = undefined;
      slot.jobId = undefined;
      void worker.terminate();
      this.forgetWorker(worker);
      for (const id of stuck) {
        this.executionSlot.delete(id);
        this.reportState({ jobId, executionId: id, state: 'CANCELED' });
      }
    }, timeoutMs).unref();
  }

  /** Routes to and from a terminated worker go, so consumers see their channels end. */
  private forgetWorker(worker: Worker): void {
    for (const [partitionId, w] of this.producers) {
      if (w !== worker) continue;
      this.producers.delete(partitionId);
      for (const [key, route] of this.consumers) {
        if (!key.startsWith(`${partitionId}/`)) continue;
        this.consumers.delete(key);
        if (!route.local) route.call.end();
      }
    }
    for (const [key, route] of this.consumers)
      if (route.local && route.worker === worker) this.consumers.delete(key);
  }

  // ---- messages from slot workers

  private onWorkerMessage(worker: Worker, msg: FromWorker): void {
    switch (msg.t) {
      case 'frame':
        this.routeFrame(msg.partitionId, msg.subpartition, msg.kind, msg.bytes);
        break;
      case 'credit': {
        const route = this.channels.get(`${msg.executionId}/${msg.channel}`);
        if (!route) return;
        if (route.local) {
          this.producers.get(route.partitionId)?.postMessage({
            t: 'credit',
            partitionId: route.partitionId,
            subpartition: route.subpartition,
            credit: msg.credit,
          } satisfies ToWorker);
        } else if (!route.closed) {
          route.call.write({ credit: msg.credit });
        }
        break;
      }
      case 'openChannel':
        this.openChannel(worker, msg);
        break;
      case 'closeChannel':
        this.closeChannel(`${msg.executionId}/${msg.channel}`);
        break;
      case 'partitionReady': {
        this.producers.set(msg.partitionId, worker);
        const pending = this.pendingRequests.get(msg.partitionId);
        this.pendingRequests.delete(msg.partitionId);
        for (const r of pending ?? [])
          this.attachConsumer(msg.partitionId, r.subpartition, r.credit, r.route);
        break;
      }
      case 'partitionReleased':
        this.producers.delete(msg.partitionId);
        for (const [key, route] of this.consumers) {
          if (key.startsWith(`${msg.partitionId}/`)) {
            this.consumers.delete(key);
            if (!route.local) route.call.end();
          }
        }
        break;
      case 'collected': {
        const jobId = this.executionSlot.get(msg.executionId)?.jobId ?? '';
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
        break;
      }
      case 'checkpointAck':
      case 'checkpointDecline': {
        const jobId = this.executionSlot.get(msg.executionId)?.jobId ?? '';
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
        break;
      }
      case 'metrics':
        for (const m of msg.metrics) this.metrics.set(m.executionId!, m);
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
        const collected = this.collectReports.get(msg.executionId);
        if (collected && msg.state !== 'RUNNING') {
          this.collectReports.delete(msg.executionId);
          void collected.then(() => this.reportState(update));
        } else {
          this.reportState(update);
        }
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
          this.executionSlot.delete(msg.executionId);
          setTimeout(() => this.metrics.delete(msg.executionId), 5_000).unref();
          if (slot.tasks.size === 0) this.releaseWorker(slot);
        }
        break;
      }
    }
  }

  private releaseWorker(slot: Slot): void {
    const worker = slot.worker;
    // give frames already posted by the worker time to be routed before it goes
    setTimeout(() => {
      if (slot.worker === worker && slot.tasks.size === 0) {
        slot.worker = undefined;
        slot.jobId = undefined;
        void worker?.terminate();
      }
    }, 1_000).unref();
  }

  private routeFrame(partitionId: string, subpartition: number, kind: FrameKind, bytes: Uint8Array): void {
    const route = this.consumers.get(`${partitionId}/${subpartition}`);
    if (!route) return;
    if (route.local) {
      route.worker.postMessage(
        {
          t: 'frame',
          executionId: route.executionId,
          channel: route.channel,
          kind,
          bytes,
        } satisfies ToWorker,
        [bytes.buffer as ArrayBuffer],
      );
    } else {
      const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      route.call.write(kind === 'buffer' ? { buffer: buf } : { event: buf });
    }
  }

  /** A consumer (local or remote) asks for a subpartition; wait for the producer if needed. */
  private attachConsumer(
    partitionId: string,
    subpartition: number,
    credit: number,
    route: ConsumerRoute,
  ): void {
    const producer = this.producers.get(partitionId);
    if (!producer) {
      const list = this.pendingRequests.get(partitionId) ?? [];
      list.push({ subpartition, credit, route });
      this.pendingRequests.set(partitionId, list);
      return;
    }
    this.consumers.set(`${partitionId}/${subpartition}`, route);
    producer.postMessage({ t: 'subpartitionRequest', partitionId, subpartition, credit } satisfies ToWorker);
  }

  private openChannel(worker: Worker, msg: Extract<FromWorker, { t: 'openChannel' }>): void {
    const key = `${msg.executionId}/${msg.channel}`;
    if (msg.producerTaskManagerId === this.id) {
      this.channels.set(key, { local: true, partitionId: msg.partitionId, subpartition: msg.subpartition });
      this.attachConsumer(msg.partitionId, msg.subpartition, msg.credit, {
        local: true,
        worker,
        executionId: msg.executionId,
        channel: msg.channel,
      });
      return;
    }
    let client = this.dataClients.get(msg.producerAddress);
    if (!client) {
      client = createClient(dataProto.DataExchange, msg.producerAddress);
      this.dataClients.set(msg.producerAddress, client);
    }
    const call = client.Exchange();
    const route: ChannelRoute = { local: false, call, closed: false };
    this.channels.set(key, route);
    call.write({
      request: {
        partitionId: msg.partitionId,
        subpartitionIndex: msg.subpartition,
        initialCredit: msg.credit,
        consumerExecutionId: msg.executionId,
      },
    });
    call.on('data', (m: { buffer?: Buffer; event?: Buffer; error?: string }) => {
      if (m.error) {
        worker.postMessage({
          t: 'channelError',
          executionId: msg.executionId,
          channel: msg.channel,
          message: m.error,
        } satisfies ToWorker);
        return;
      }
      const src = (m.buffer ?? m.event)!;
      const bytes = new Uint8Array(src); // own ArrayBuffer, so it can be transferred
      worker.postMessage(
        {
          t: 'frame',
          executionId: msg.executionId,
          channel: msg.channel,
          kind: m.buffer ? 'buffer' : 'event',
          bytes,
        } satisfies ToWorker,
        [bytes.buffer],
      );
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (route.closed) return;
      route.closed = true;
      worker.postMessage({
        t: 'channelError',
        executionId: msg.executionId,
        channel: msg.channel,
        message: `Lost the input channel from TaskManager ${msg.producerTaskManagerId} at ${msg.producerAddress}: ${err.details || err.message}`,
      } satisfies ToWorker);
    });
    call.on('end', () => {
      route.closed = true;
    });
  }

  private closeChannel(key: string): void {
    const route = this.channels.get(key);
    if (!route) return;
    this.channels.delete(key);
    if (route.local) {
      const ckey = `${route.partitionId}/${route.subpartition}`;
      if (this.consumers.has(ckey)) {
        this.consumers.delete(ckey);
        this.producers.get(route.partitionId)?.postMessage({
          t: 'subpartitionReleased',
          partitionId: route.partitionId,
          subpartition: route.subpartition,
        } satisfies ToWorker);
      }
    } else if (!route.closed) {
      route.closed = true;
      route.call.end();
    }
  }

  /** The producer side of a remote input channel. */
  private serveExchange(call: grpc.ServerDuplexStream<ConsumerMessage__Output, ProducerMessage>): void {
    let key: string | undefined;
    let partitionId = '';
    let subpartition = 0;
    let pendingCredit = 0;
    call.on('data', (m: ConsumerMessage__Output) => {
      if (m.request) {
        partitionId = m.request.partitionId;
        subpartition = m.request.subpartitionIndex;
        key = `${partitionId}/${subpartition}`;
        this.attachConsumer(partitionId, subpartition, m.request.initialCredit + pendingCredit, {
          local: false,
          call,
        });
        pendingCredit = 0;
      } else if (m.credit) {
        const producer = this.producers.get(partitionId);
        if (key && producer && this.consumers.has(key)) {
          producer.postMessage({
            t: 'credit',
            partitionId,
            subpartition,
            credit: m.credit,
          } satisfies ToWorker);
        } else if (key) {
          const pending = this.pendingRequests.get(partitionId)?.find((r) => r.subpartition === subpartition);
          if (pending) pending.credit += m.credit;
        }
      }
    });
    const release = (): void => {
      if (!key) return;
      const route = this.consumers.get(key);
      if (route && !route.local && route.call === call) {
        this.consumers.delete(key);
        this.producers
          .get(partitionId)
          ?.postMessage({ t: 'subpartitionReleased', partitionId, subpartition } satisfies ToWorker);
      }
      const pending = this.pendingRequests.get(partitionId);
      if (pending)
        this.pendingRequests.set(
          partitionId,
          pending.filter((r) => r.route.local || r.route.call !== call),
        );
      key = undefined;
    };
    call.on('end', () => {
      release();
      call.end();
    });
    call.on('error', release);
    call.on('cancelled', release);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.health.set('NOT_SERVING');
    this.log.info('TaskManager stopping');
    this.cancelAll();
    clearInterval(this.heartbeatTimer);
    await new Promise((r) => setTimeout(r, 200));
    this.heartbeat?.end();
    await Promise.all(this.slots.map((s) => s.worker?.terminate()));
    // each task attempt deletes its own database; the TaskManager's directory goes if empty
    try {
      rmdirSync(this.rocksdb.localDir);
    } catch {
      /* absent, or holds what another process with this id still uses */
    }
    await shutdownServer(this.server, 1_000);
    for (const c of this.dataClients.values()) c.close();
    this.jm.close();
  }
}
