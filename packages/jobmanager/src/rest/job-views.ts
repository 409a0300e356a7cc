import { NO_RATES, type CheckpointStats, type JobGraph, type JobVertex, type TaskRates } from '@weir/core';
import type { JobMaster } from '../job-master.js';
import type { Execution } from '../execution-graph.js';
import type { JobRestart } from '../job-restarts.js';
import type { RegisteredTaskManager } from '../resource-manager.js';

/*
 * The JSON of the REST API, in the shapes of Flink's REST API where Flink has the resource
 * (field names included, kebab-case or snake_case as Flink spells them), with weir's additions
 * (per-second figures, the recovery timeline) beside them.
 */

type Json = Record<string, unknown>;

const EXECUTION_STATES = [
  'CREATED',
  'SCHEDULED',
  'DEPLOYING',
  'RUNNING',
  'FINISHED',
  'CANCELING',
  'CANCELED',
  'FAILED',
] as const;

/** JOB_RUNNING -> RUNNING, as Flink names job states. */
export function jobState(job: JobMaster): string {
  return String(job.status).replace(/^JOB_/, '');
}

function duration(start: number, end: number): number {
  return (end > 0 ? end : Date.now()) - start;
}

function stateCounts(executions: readonly Execution[]): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(EXECUTION_STATES.map((s) => [s, 0]));
  for (const e of executions) counts[e.state] = (counts[e.state] ?? 0) + 1;
  return counts;
}

/** `tasks` of /jobs/overview: lower-case state names and the total. */
function taskCounts(executions: readonly Execution[]): Json {
  const c = stateCounts(executions);
  return {
    total: executions.length,
    ...Object.fromEntries(Object.entries(c).map(([k, v]) => [k.toLowerCase(), v])),
  };
}

/** A vertex's state from its subtasks' (Flink's ExecutionJobVertex.getAggregateState). */
function vertexState(executions: readonly Execution[]): string {
  const has = (s: string): boolean => executions.some((e) => e.state === s);
  if (has('FAILED')) return 'FAILED';
  if (has('CANCELING')) return 'CANCELING';
  if (executions.length > 0 && executions.every((e) => e.state === 'CANCELED')) return 'CANCELED';
  if (has('RUNNING')) return 'RUNNING';
  if (executions.length > 0 && executions.every((e) => e.state === 'FINISHED')) return 'FINISHED';
  if (has('DEPLOYING')) return 'DEPLOYING';
  if (has('SCHEDULED')) return 'SCHEDULED';
  return executions.some((e) => e.state === 'CANCELED') ? 'CANCELED' : 'CREATED';
}

export function jobOverview(job: JobMaster): Json {
  const executions = job.executionsOfAttempt();
  return {
    jid: job.jobId,
    name: job.name,
    state: jobState(job),
    'start-time': job.startTime,
    'end-time': job.endTime > 0 ? job.endTime : -1,
    duration: duration(job.startTime, job.endTime),
    'last-modification': job.endTime || Date.now(),
    tasks: taskCounts(executions),
  };
}

interface SubtaskFigures {
  sample: {
    bytesIn: number;
    bytesOut: number;
    recordsIn: number;
    recordsOut: number;
    inputBufferUsage: number;
    outputBufferUsage: number;
    busyMs: number;
    backpressuredMs: number;
  };
  rates: TaskRates;
}

function figures(job: JobMaster, e: Execution): SubtaskFigures {
  const m = job.taskMetrics.get(e.executionId);
  const s = m?.sample;
  return {
    sample: {
      bytesIn: Number(s?.bytesIn ?? 0),
      bytesOut: Number(s?.bytesOut ?? 0),
      recordsIn: e.recordsIn,
      recordsOut: e.recordsOut,
      inputBufferUsage: s?.inputBufferUsage ?? 0,
      outputBufferUsage: s?.outputBufferUsage ?? 0,
      busyMs: s?.busyMs ?? 0,
      backpressuredMs: s?.backpressuredMs ?? 0,
    },
    rates: m?.rates ?? NO_RATES,
  };
}

/** Flink's IOMetricsInfo plus weir's per-second figures. */
function ioMetrics(list: SubtaskFigures[]): Json {
  const sum = (f: (x: SubtaskFigures) => number): number => list.reduce((a, x) => a + f(x), 0);
  const max = (f: (x: SubtaskFigures) => number): number => list.reduce((a, x) => Math.max(a, f(x)), 0);
  return {
    'read-bytes': sum((x) => x.sample.bytesIn),
    'read-bytes-complete': true,
    'write-bytes': sum((x) => x.sample.bytesOut),
    'write-bytes-complete': true,
    'read-records': sum((x) => x.sample.recordsIn),
    'read-records-complete': true,
    'write-records': sum((x) => x.sample.recordsOut),
    'write-records-complete': true,
    'accumulated-busy-time': sum((x) => x.sample.busyMs),
    'accumulated-backpressured-time': sum((x) => x.sample.backpressuredMs),
    'accumulated-idle-time': 0,
    'read-records-per-second': sum((x) => x.rates.recordsInPerSecond),
    'write-records-per-second': sum((x) => x.rates.recordsOutPerSecond),
    // the busiest and most back-pressured subtask colour the vertex, as in Flink's web UI
    'busy-time-ms-per-second': max((x) => x.rates.busyTimeMsPerSecond),
    'backpressured-time-ms-per-second': max((x) => x.rates.backPressuredTimeMsPerSecond),
    'idle-time-ms-per-second':
      list.length === 0 ? 0 : Math.min(...list.map((x) => x.rates.idleTimeMsPerSecond)),
    'input-buffer-usage': max((x) => x.sample.inputBufferUsage),
    'output-buffer-usage': max((x) => x.sample.outputBufferUsage),
  };
}

function shipStrategy(partitioner: string): string {
  return partitioner.toUpperCase();
}

function plan(graph: JobGraph, jobId: string): Json {
  return {
    jid: jobId,
    name: graph.jobName,
    type: 'STREAMING',
    nodes: graph.vertices.map((v) => ({
      id: v.id,
      parallelism: v.parallelism,
      operator: '',
      operator_strategy: '',
      description: v.operators.map((o) => o.name).join(' -> '),
      ...(v.isSource
        ? {}
        : {
            inputs: graph.edges
              .filter((e) => e.targetVertexId === v.id)
              .map((e, num) => ({
                num,
                id: e.sourceVertexId,
                ship_strategy: shipStrategy(e.partitioner),
                exchange: 'pipelined_bounded',
              })),
          }),
      optimizer_properties: {},
    })),
  };
}

function vertexOf(job: JobMaster, v: JobVertex): Json {
  const executions = job.executionsOfAttempt().filter((e) => e.vertex.id === v.id);
  return {
    id: v.id,
    name: v.name,
    maxParallelism: v.maxParallelism,
    parallelism: v.parallelism,
    status: vertexState(executions),
    'start-time': job.startTime,
    'end-time': -1,
    duration: duration(job.startTime, job.endTime),
    tasks: stateCounts(executions),
    metrics: ioMetrics(executions.map((e) => figures(job, e))),
    operators: v.operators.map((o) => ({ id: o.id, name: o.name })),
  };
}

export function jobDetails(job: JobMaster): Json {
  const executions = job.executionsOfAttempt();
  return {
    jid: job.jobId,
    name: job.name,
    isStoppable: false,
    state: jobState(job),
    'start-time': job.startTime,
    'end-time': job.endTime > 0 ? job.endTime : -1,
    duration: duration(job.startTime, job.endTime),
    maxParallelism: job.graph.maxParallelism,
    now: Date.now(),
    timestamps: { CREATED: job.startTime, ...(job.endTime ? { [jobState(job)]: job.endTime } : {}) },
    vertices: job.graph.vertices.map((v) => vertexOf(job, v)),
    'status-counts': stateCounts(executions),
    plan: plan(job.graph, job.jobId),
    'waiting-reason': job.waitingReason,
    'failure-cause': job.failureCause,
    'num-restarts': job.restarts.count,
  };
}

export function vertexDetails(job: JobMaster, v: JobVertex): Json {
  const executions = job.executionsOfAttempt().filter((e) => e.vertex.id === v.id);
  return {
    id: v.id,
    name: v.name,
    parallelism: v.parallelism,
    maxParallelism: v.maxParallelism,
    now: Date.now(),
    subtasks: executions.map((e) => {
      const f = figures(job, e);
      return {
        subtask: e.subtaskIndex,
        status: e.state,
        attempt: e.attempt,
        host: e.slot?.taskManager.address ?? '',
        'taskmanager-id': e.slot?.taskManager.id ?? '',
        'start-time': job.startTime,
        'end-time': -1,
        duration: duration(job.startTime, job.endTime),
        metrics: ioMetrics([f]),
      };
    }),
  };
}

/** Flink's levels: up to 10% of the time back-pressured is ok, up to 50% low, above high. */
function level(ratio: number): 'ok' | 'low' | 'high' {
  return ratio <= 0.1 ? 'ok' : ratio <= 0.5 ? 'low' : 'high';
}

export function backpressure(job: JobMaster, v: JobVertex): Json {
  const executions = job.executionsOfAttempt().filter((e) => e.vertex.id === v.id);
  const subtasks = executions.map((e) => {
    const r = figures(job, e).rates;
    const ratio = r.backPressuredTimeMsPerSecond / 1000;
    return {
      subtask: e.subtaskIndex,
      attemptNumber: e.attempt,
      backpressureLevel: level(ratio),
      ratio,
      idleRatio: r.idleTimeMsPerSecond / 1000,
      busyRatio: r.busyTimeMsPerSecond / 1000,
    };
  });
  const worst = subtasks.reduce((a, s) => Math.max(a, s.ratio), 0);
  return { status: 'ok', backpressureLevel: level(worst), 'end-timestamp': Date.now(), subtasks };
}

// ---- checkpoints

function vertexIdByName(graph: JobGraph, name: string): string {
  return graph.vertices.find((v) => v.name === name)?.id ?? name;
}

function checkpointEntry(c: CheckpointStats): Json {
  const acked = c.subtasks.filter((s) => s.acknowledged);
  const latestAck = acked.reduce((a, s) => Math.max(a, s.ackTime ?? 0), 0);
  return {
    className:
      c.status === 'COMPLETED'
        ? '.CompletedCheckpointStatistics'
        : c.status === 'FAILED'
          ? '.FailedCheckpointStatistics'
          : '.PendingCheckpointStatistics',
    id: c.id,
    status: c.status,
    is_savepoint: c.savepoint,
    savepointFormat: c.savepoint ? 'CANONICAL' : null,
    trigger_timestamp: c.triggerTime,
    latest_ack_timestamp: latestAck || -1,
    state_size: c.stateSizeBytes,
    checkpointed_size: c.stateSizeBytes,
    end_to_end_duration: c.durationMs ?? Date.now() - c.triggerTime,
    alignment_buffered: 0,
    processed_data: 0,
    persisted_data: c.persistedDataBytes ?? 0,
    unaligned_checkpoint: !!c.unaligned,
    num_subtasks: c.subtasks.length,
    num_acknowledged_subtasks: acked.length,
    checkpoint_type: c.savepoint ? 'SAVEPOINT' : 'CHECKPOINT',
    external_path: c.status === 'COMPLETED' ? c.path : null,
    discarded: false,
    // weir: the largest per-subtask figures
    alignment_duration: c.maxAlignmentDurationMs,
    sync_duration: c.maxSyncDurationMs,
    async_duration: c.maxAsyncDurationMs,
    ...(c.status === 'FAILED'
      ? { failure_timestamp: c.endTime ?? -1, failure_message: c.failureReason ?? '' }
      : {}),
  };
}

function summary(values: number[]): Json {
  if (values.length === 0) return { min: 0, max: 0, avg: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return {
    min: sorted[0],
    max: sorted[sorted.length - 1],
    avg: Math.round(values.reduce((a, b) => a + b, 0) / values.length),
    p50: q(0.5),
    p90: q(0.9),
    p95: q(0.95),
    p99: q(0.99),
    p999: q(0.999),
  };
}

export function checkpoints(job: JobMaster): Json {
  const s = job.coordinator.snapshotStats();
  const history = [...s.history].reverse();
  const completed = history.filter((c) => c.status === 'COMPLETED');
  const latest = (pred: (c: CheckpointStats) => boolean): Json | null => {
    const c = history.find(pred);
    return c ? checkpointEntry(c) : null;
  };
  return {
    counts: {
      restored: s.counts.restored,
      total: s.counts.completed + s.counts.failed + s.counts.inProgress,
      in_progress: s.counts.inProgress,
      completed: s.counts.completed,
      failed: s.counts.failed,
    },
    summary: {
      checkpointed_size: summary(completed.map((c) => c.stateSizeBytes)),
      state_size: summary(completed.map((c) => c.stateSizeBytes)),
      end_to_end_duration: summary(completed.map((c) => c.durationMs ?? 0)),
      alignment_buffered: summary([]),
      processed_data: summary([]),
      persisted_data: summary([]),
      alignment_duration: summary(completed.map((c) => c.maxAlignmentDurationMs)),
    },
    latest: {
      completed: latest((c) => c.status === 'COMPLETED' && !c.savepoint),
      savepoint: latest((c) => c.status === 'COMPLETED' && c.savepoint),
      failed: latest((c) => c.status === 'FAILED'),
      restored: s.latestRestored
        ? {
            id: s.latestRestored.id,
            restore_timestamp: s.latestRestored.restoreTimestamp,
            is_savepoint: s.latestRestored.savepoint,
            external_path: s.latestRestored.path,
          }
        : null,
    },
    history: history.map(checkpointEntry),
  };
}

/** One checkpoint: Flink's details with per-vertex figures, plus every subtask's (weir). */
export function checkpointDetails(job: JobMaster, c: CheckpointStats): Json {
  const tasks: Record<string, Json> = {};
  for (const v of job.graph.vertices) {
    const subs = c.subtasks.filter((s) => vertexIdByName(job.graph, s.vertex) === v.id);
    if (subs.length === 0) continue;
    const acked = subs.filter((s) => s.acknowledged);
    tasks[v.id] = {
      id: v.id,
      status: c.status,
      latest_ack_timestamp: acked.reduce((a, s) => Math.max(a, s.ackTime ?? 0), 0) || -1,
      state_size: acked.reduce((a, s) => a + (s.stateSizeBytes ?? 0), 0),
      checkpointed_size: acked.reduce((a, s) => a + (s.stateSizeBytes ?? 0), 0),
      end_to_end_duration: acked.reduce(
        (a, s) => Math.max(a, (s.ackTime ?? c.triggerTime) - c.triggerTime),
        0,
      ),
      num_subtasks: subs.length,
      num_acknowledged_subtasks: acked.length,
    };
  }
  return { ...checkpointEntry(c), tasks, subtasks: checkpointSubtasks(job, c) };
}

function checkpointSubtasks(job: JobMaster, c: CheckpointStats): Json[] {
  return c.subtasks.map((s) => ({
    vertex: vertexIdByName(job.graph, s.vertex),
    'vertex-name': s.vertex,
    index: s.subtask,
    status: s.acknowledged ? 'completed' : 'pending_or_failed',
    ack_timestamp: s.ackTime ?? -1,
    end_to_end_duration: s.ackTime ? s.ackTime - c.triggerTime : -1,
    state_size: s.stateSizeBytes ?? 0,
    checkpoint: { sync: s.syncDurationMs ?? -1, async: s.asyncDurationMs ?? -1 },
    alignment: { buffered: 0, duration: s.alignmentDurationMs ?? -1, persisted: s.persistedDataBytes ?? 0 },
    unaligned_checkpoint: !!s.unaligned,
  }));
}

/** Flink's /checkpoints/details/:id/subtasks/:vid. */
export function checkpointVertexSubtasks(job: JobMaster, c: CheckpointStats, vertexId: string): Json {
  const details = checkpointDetails(job, c);
  const task = (details.tasks as Record<string, Json>)[vertexId] ?? {};
  return {
    ...task,
    subtasks: checkpointSubtasks(job, c).filter((s) => s.vertex === vertexId),
  };
}

// ---- failures and restarts

export function exceptions(job: JobMaster): Json {
  const entries = [...job.exceptions].reverse().map((e) => ({
    exceptionName: e.restarted ? 'JobFailover' : 'JobFailure',
    stacktrace: e.stack,
    message: e.message,
    timestamp: e.timestamp,
    taskName: e.taskName || null,
    location: e.location || null,
    taskManagerId: e.location || null,
    failureLabels: {},
    concurrentExceptions: [],
  }));
  const root = entries[0];
  return {
    'root-exception': root?.stacktrace ?? null,
    timestamp: root?.timestamp ?? null,
    'all-exceptions': [],
    truncated: false,
    exceptionHistory: { entries, truncated: false },
  };
}

/** The recovery timeline of each restart (weir): when each step happened and how long after detection. */
export function restarts(job: JobMaster): Json {
  const steps = (r: JobRestart): Json[] => {
    const list: Array<[string, number]> = [
      ['detected', r.detectedAt],
      ['cancelled', r.canceledAt],
      ['deployed', r.deployedAt],
      ['state-restored', r.stateRestoreMs && r.deployedAt ? r.deployedAt + r.stateRestoreMs : 0],
      ['running', r.runningAt],
      ['first-checkpoint', r.firstCheckpointAt],
    ];
    return list.map(([name, at]) => ({
      name,
      timestamp: at > 0 ? at : null,
      'since-detection-ms': at > 0 ? at - r.detectedAt : null,
    }));
  };
  return {
    restarts: job.restarts.all.map((r) => ({
      attempt: r.attempt,
      cause: r.cause,
      region: r.region || null,
      'restored-checkpoint-id': r.restoredCheckpointId || null,
      'restored-from': r.restoredFrom || null,
      'state-restore-ms': r.stateRestoreMs,
      'recovery-ms': r.runningAt ? r.runningAt - r.detectedAt : null,
      steps: steps(r),
    })),
  };
}

// ---- TaskManagers

export function taskManager(tm: RegisteredTaskManager, detailed: boolean): Json {
  const p = tm.process;
  const free = tm.allocations.filter((a) => a === undefined).length;
  const port = Number(tm.address.slice(tm.address.lastIndexOf(':') + 1));
  return {
    id: tm.id,
    path: tm.address,
    dataPort: port,
    timeSinceLastHeartbeat: tm.lastHeartbeat,
    slotsNumber: tm.slots,
    freeSlots: free,
    'prometheus-address': tm.metricsAddress || null,
    metrics: {
      heapUsed: Number(p?.heapUsedBytes ?? tm.heapUsedBytes),
      heapCommitted: Number(p?.heapTotalBytes ?? 0),
      rss: Number(p?.rssBytes ?? tm.rssBytes),
      external: Number(p?.externalBytes ?? 0),
      eventLoopDelayP99Ms: p?.eventLoopDelayP99Ms ?? 0,
      eventLoopDelayMaxMs: p?.eventLoopDelayMaxMs ?? 0,
      garbageCollections: Number(p?.gcCount ?? 0),
      garbageCollectionTimeMs: p?.gcTimeMs ?? 0,
      cpuUserMs: p?.cpuUserMs ?? 0,
      cpuSystemMs: p?.cpuSystemMs ?? 0,
      rocksdbDiskBytes: Number(p?.rocksdbDiskBytes ?? 0),
    },
    ...(detailed
      ? {
          slots: tm.allocations.map((jobId, slot) => ({ slot, 'job-id': jobId ?? null })),
          registered: tm.registeredAt,
        }
      : {}),
  };
}
