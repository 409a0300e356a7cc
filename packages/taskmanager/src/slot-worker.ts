import { parentPort, workerData } from 'node:worker_threads';
import type { StreamGraph } from '@weir/api/internal';
import {
  configureS3Storage,
  createLogger,
  parseJobContext,
  planJobBundle,
  type S3StorageSettings,
  type TaskDeploymentDescriptor__Output,
} from '@weir/core/runtime';
import type { ResultPartition } from './network/result-partition.js';
import type { RocksDBSettings } from './state/keyed-state-backend.js';
import { StreamTask, type NetworkSettings, type TaskHost } from './task/stream-task.js';
import { configureLocalRecovery } from './state/local-recovery-storage.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

/**
 * Entry of a slot's worker thread. It plans the job bundle once, runs the tasks deployed
 * to the slot, and exchanges frames and credits with the main thread, which owns gRPC.
 */
export interface SlotWorkerData {
  taskManagerId: string;
  bundleCacheDir: string;
  network: NetworkSettings;
  rocksdb: RocksDBSettings;
  /** the TaskManager's S3 settings: a worker thread has its own module state */
  s3: S3StorageSettings;
  /** pipeline.auto-watermark-interval, for jobs that do not set their own */
  autoWatermarkIntervalMs: number;
  /** state.backend.local-recovery: where checkpoint copies are kept; unset when off */
  localRecoveryDir?: string;
}

const port = parentPort!;
const tasks = new Map<string, StreamTask>();
const partitions = new Map<string, ResultPartition>();
let graph: Promise<StreamGraph> | undefined;
/** the TaskManager's identity and settings: from workerData, or for a spare worker its first message */
let data: SlotWorkerData;
let host: TaskHost;

function configure(d: SlotWorkerData): void {
  data = d;
  configureS3Storage(d.s3);
  configureLocalRecovery(d.localRecoveryDir, createLogger('taskmanager', { taskManagerId: d.taskManagerId }));
  host = {
    post: (msg: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(msg, transfer ?? []),
    registerPartition: (p) => void partitions.set(p.partitionId, p),
    unregisterPartition: (id) => {
      partitions.delete(id);
      port.postMessage({ t: 'partitionReleased', partitionId: id } satisfies FromWorker);
    },
    taskEnded: (task) => {
      tasks.delete(task.executionId);
    },
    network: d.network,
    taskManagerId: d.taskManagerId,
    rocksdb: d.rocksdb,
    autoWatermarkIntervalMs: d.autoWatermarkIntervalMs,
  };
}

if (workerData) configure(workerData as SlotWorkerData);

function plan(bundle: string, jobContextJson: string): Promise<StreamGraph> {
  graph ??= planJobBundle(
    bundle,
    { workingDirectory: process.cwd(), args: [], ...parseJobContext(jobContextJson, 'the job context') },
    data.bundleCacheDir,
  );
  return graph;
}

async function deploy(tdd: TaskDeploymentDescriptor__Output, bundle: string): Promise<void> {
  let g: StreamGraph;
  try {
    g = await plan(bundle, tdd.jobContextJson);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    port.postMessage({
      t: 'taskState',
      executionId: tdd.executionId,
      state: 'FAILED',
      failure: {
        vertexName: tdd.vertexName,
        subtaskIndex: tdd.subtaskIndex,
        taskManagerId: data.taskManagerId,
        message: `Loading the job bundle failed: ${e.message}`,
        stack: e.stack ?? '',
        domain: 'user',
      },
    } satisfies FromWorker);
    return;
  }
  const task = new StreamTask(tdd, g, host);
  tasks.set(task.executionId, task);
  await task.start();
}

port.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'identity':
      configure(msg.data);
      break;
    case 'deploy':
      void deploy(msg.tdd, msg.bundle);
      break;
    case 'prewarm':
      // a failure here is reported by the deployment that awaits the same plan
      try {
        plan(msg.bundle, msg.jobContextJson).catch(() => {});
      } catch {
        graph = undefined;
      }
      break;
    case 'cancel':
      void tasks.get(msg.executionId)?.cancel();
      break;
    case 'frame':
      tasks.get(msg.executionId)?.onFrame(msg.channel, msg.kind, msg.bytes);
      break;
    case 'subpartitionRequest':
      partitions.get(msg.partitionId)?.onRequest(msg.subpartition, msg.credit, msg.bufferSize);
      break;
    case 'credit':
      partitions.get(msg.partitionId)?.onCredit(msg.subpartition, msg.credit, msg.bufferSize);
      break;
    case 'subpartitionReleased':
      partitions.get(msg.partitionId)?.onRelease(msg.subpartition);
      break;
    case 'triggerCheckpoint':
      tasks.get(msg.executionId)?.triggerCheckpoint({
        type: 'CheckpointBarrier',
        checkpointId: msg.checkpointId,
        timestamp: msg.timestamp,
        isSavepoint: msg.isSavepoint,
        storage: msg.storage,
        directory: msg.directory,
      });
      break;
    case 'notifyCheckpoint':
      tasks.get(msg.executionId)?.notifyCheckpoint(msg.checkpointId, msg.completed, msg.final);
      break;
    case 'splitAssignment':
      tasks.get(msg.executionId)?.onSplitAssignment(msg);
      break;
    case 'channelError':
      void tasks.get(msg.executionId)?.fail(new Error(msg.message));
      break;
  }
});

setInterval(() => {
  if (tasks.size === 0) return;
  port.postMessage({
    t: 'metrics',
    metrics: [...tasks.values()].map((t) => t.metrics()),
  } satisfies FromWorker);
}, 1000).unref();
