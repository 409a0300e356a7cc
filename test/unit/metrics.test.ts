import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import {
  NO_RATES,
  TaskRateTracker,
  createLogger,
  fileStorageUri,
  taskRates,
  type CheckpointStats,
  type TaskMetrics__Output,
} from '../../packages/core/src/index.js';
import { createRegistry, registerTaskMetrics } from '../../packages/core/src/metrics/prometheus.js';
import { TaskIOMetrics } from '../../packages/taskmanager/src/task/task-io-metrics.js';
import { InputGate } from '../../packages/taskmanager/src/network/input-gate.js';
import { ResultPartition } from '../../packages/taskmanager/src/network/result-partition.js';
import { JobStore } from '../../packages/jobmanager/src/job-store.js';
import type { JobHistory } from '../../packages/jobmanager/src/job-history.js';
import { tempDir } from '../helpers/cli.js';

function sample(at: number, m: Partial<TaskMetrics__Output> = {}): TaskMetrics__Output {
  return {
    executionId: 'e1',
    recordsIn: 0,
    recordsOut: 0,
    bytesOut: 0,
    bytesIn: 0,
    backpressuredRatio: 0,
    busyMs: 0,
    backpressuredMs: 0,
    sampledAt: at,
    inputBufferUsage: 0,
    outputBufferUsage: 0,
    numLateRecordsDropped: 0,
    currentInputWatermark: 0,
    hasInputWatermark: false,
    ...m,
  };
}

describe('task rates (Flink busy/back-pressured/idle time per second)', () => {
  test('two samples two seconds apart give per-second figures that add up to 1000 ms', () => {
    const r = taskRates(
      sample(1000, { recordsIn: 100, recordsOut: 50, busyMs: 10, backpressuredMs: 0 }),
      sample(3000, { recordsIn: 4100, recordsOut: 2050, busyMs: 610, backpressuredMs: 1000 }),
    )!;
    assert.equal(r.recordsInPerSecond, 2000);
    assert.equal(r.recordsOutPerSecond, 1000);
    assert.equal(r.busyTimeMsPerSecond, 300);
    assert.equal(r.backPressuredTimeMsPerSecond, 500);
    assert.equal(r.idleTimeMsPerSecond, 200);
  });

  test('busy and back-pressured time are clamped to the interval; idle is never negative', () => {
    const r = taskRates(sample(0), sample(1000, { busyMs: 800, backpressuredMs: 900 }))!;
    assert.deepEqual(
      [r.busyTimeMsPerSecond, r.backPressuredTimeMsPerSecond, r.idleTimeMsPerSecond],
      [800, 200, 0],
    );
  });

  test('fractions of a millisecond: the rounded figures still add up to 1000 (both halves once made 1001)', () => {
    for (const [busyMs, backpressuredMs] of [
      [0.5, 0.5],
      [333.5, 333.5],
      [1.4999, 998.5],
      [499.5, 500.4],
    ] as const) {
      const r = taskRates(sample(0), sample(1000, { busyMs, backpressuredMs }))!;
      assert.equal(r.busyTimeMsPerSecond + r.backPressuredTimeMsPerSecond + r.idleTimeMsPerSecond, 1000);
      assert.ok(r.idleTimeMsPerSecond >= 0 && Number.isInteger(r.idleTimeMsPerSecond));
    }
  });

  test('the same sample sent twice (heartbeat and state report) keeps the rates of the last real interval', () => {
    const t = new TaskRateTracker();
    assert.deepEqual(t.update(sample(0)).rates, NO_RATES);
    const second = t.update(sample(1000, { recordsIn: 500 }));
    assert.equal(second.rates.recordsInPerSecond, 500);
    assert.equal(taskRates(second.sample, sample(1000, { recordsIn: 500 })), undefined);
    assert.equal(t.update(sample(1000, { recordsIn: 500 })).rates.recordsInPerSecond, 500);
  });
});

describe('TaskIOMetrics', () => {
  test('back-pressured time counts the waits for output credit, the current one up to now', async () => {
    const m = new TaskIOMetrics();
    m.backPressureBegins(performance.now());
    await new Promise((r) => setTimeout(r, 30));
    const during = m.sample('e1', undefined, [], 4);
    assert.ok(Number(during.backpressuredMs) >= 25, `a wait under way counts: ${during.backpressuredMs}`);
    m.backPressureEnds(performance.now());
    const ended = m.backPressuredMs;
    assert.ok(ended >= 25);
    // a second begin while waiting does not restart the clock; an end without a begin adds nothing
    m.backPressureEnds(performance.now());
    assert.equal(m.backPressuredMs, ended);
  });

  test('buffer usage: queued input frames over credits, and the fullest subpartition over the backlog', () => {
    const m = new TaskIOMetrics();
    const gate = new InputGate(2, () => {});
    gate.onFrame(0, 'event', new Uint8Array(1));
    gate.onFrame(0, 'event', new Uint8Array(1));
    gate.onFrame(1, 'event', new Uint8Array(1));
    const partition = new ResultPartition({
      partitionId: 'p',
      numberOfSubpartitions: 2,
      maxBacklog: 4,
      send: () => {},
      onAvailable: () => {},
    });
    const s = m.sample('e1', gate, [partition], 4);
    assert.equal(s.inputBufferUsage, 3 / 8);
    assert.equal(s.outputBufferUsage, 0);
    assert.equal(s.hasInputWatermark, undefined, 'no watermark until event time registers one');
    m.currentInputWatermark = 1234;
    assert.equal(m.sample('e1', gate, [partition], 4).currentInputWatermark, 1234);
  });
});

describe('Prometheus exposition', () => {
  test('task families carry job, operator and subtask labels and parse with a real parser', async () => {
    const registry = createRegistry();
    registerTaskMetrics(registry, () => [
      {
        labels: {
          job: 'j1',
          job_name: 'wc',
          operator: 'Count "words"',
          operator_id: 'uid-count',
          subtask: '1',
        },
        sample: sample(1000, { recordsIn: 42, recordsOut: 7 }),
        rates: { ...NO_RATES, busyTimeMsPerSecond: 250, idleTimeMsPerSecond: 750 },
      },
    ]);
    const families = parsePrometheusTextFormat(await registry.metrics());
    const byName = new Map(families.map((f) => [f.name, f]));
    const records = byName.get('weir_task_num_records_in_total')!;
    assert.equal(records.type, 'COUNTER');
    assert.deepEqual(records.metrics[0], {
      labels: {
        job: 'j1',
        job_name: 'wc',
        operator: 'Count "words"',
        operator_id: 'uid-count',
        subtask: '1',
      },
      value: '42',
    });
    assert.equal(byName.get('weir_task_busy_time_ms_per_second')!.metrics[0]!.value, '250');
    assert.equal(byName.get('weir_task_current_input_watermark')?.metrics.length ?? 0, 0);
    assert.ok(byName.has('weir_process_resident_memory_bytes'), 'the process figures are there');
    for (const f of families) assert.match(f.name, /^weir_/);
  });
});

describe('job history in the job store', () => {
  test('history.json round-trips through recoverJobs beside the job', async () => {
    const dir = tempDir('weir-history-');
    const store = new JobStore(fileStorageUri(dir), createLogger('test', {}, 'silent'));
    await store.putJob({
      jobId: 'abc',
      graph: { jobName: 'j', vertices: [], edges: [], maxParallelism: 128 } as never,
      jobContextJson: '{}',
      bundle: Buffer.from('x'),
      restorePath: '',
      allowNonRestoredState: false,
      submittedAt: 1,
    });
    const stats: CheckpointStats = {
      id: 3,
      savepoint: false,
      status: 'FAILED',
      triggerTime: 10,
      stateSizeBytes: 0,
      failureReason: 'declined by x',
      maxSyncDurationMs: 0,
      maxAsyncDurationMs: 0,
      maxAlignmentDurationMs: 0,
      path: 'file:///c/chk-3',
      subtasks: [],
    };
    const history: JobHistory = {
      checkpoints: { counts: { completed: 2, failed: 1, restored: 0 }, history: [stats] },
      restarts: [],
      exceptions: [
        {
          timestamp: 5,
          message: 'boom',
          stack: 'Error: boom',
          taskName: 'Map (1)',
          location: 'tm-1',
          restarted: true,
        },
      ],
    };
    await store.putHistory('abc', history);
    const [job] = await store.recoverJobs();
    assert.deepEqual(job!.history, history);
  });
});

describe('checkpoint statistics after a JobManager restart', () => {
  test('a checkpoint in progress when the JobManager died is shown as failed, with the reason', async () => {
    const { CheckpointCoordinator } = await import('../../packages/jobmanager/src/checkpoint-coordinator.js');
    const { DEFAULT_CHECKPOINT_SETTINGS } = await import('../../packages/api/src/internal.js');
    const { createCheckpointStorage } = await import('../../packages/core/src/index.js');
    const coordinator = new CheckpointCoordinator(
      {
        jobId: 'j',
        maxParallelism: 128,
        runningTasks: () => undefined,
        trigger: async () => {},
        notify: () => {},
        failover: () => {},
      },
      DEFAULT_CHECKPOINT_SETTINGS,
      createCheckpointStorage(fileStorageUri(tempDir('weir-stats-'))),
      createLogger('test', {}, 'silent'),
    );
    const entry = (id: number, status: CheckpointStats['status']): CheckpointStats => ({
      id,
      savepoint: false,
      status,
      triggerTime: id,
      stateSizeBytes: 10,
      maxSyncDurationMs: 0,
      maxAsyncDurationMs: 0,
      maxAlignmentDurationMs: 0,
      path: '',
      subtasks: [],
    });
    coordinator.recoverStats({
      counts: { completed: 4, failed: 0, restored: 1 },
      history: [entry(4, 'COMPLETED'), entry(5, 'IN_PROGRESS')],
    });
    coordinator.restoredFrom({ id: 4, path: '/c/chk-4/_metadata', savepoint: false });
    const s = coordinator.snapshotStats();
    assert.deepEqual(s.counts, { completed: 4, failed: 1, restored: 2, inProgress: 0 });
    assert.equal(s.history[1]!.status, 'FAILED');
    assert.equal(s.history[1]!.failureReason, 'the JobManager was restarted');
    assert.equal(s.latestCompleted!.id, 4);
    assert.equal(s.latestRestored!.id, 4);
  });
});
