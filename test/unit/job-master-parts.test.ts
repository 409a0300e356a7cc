import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, type JobGraph, type TaskFailure } from '../../packages/core/src/index.js';
import {
  createDeploymentDescriptor,
  createExecutions,
  executionDetails,
  type Execution,
} from '../../packages/jobmanager/src/execution-graph.js';
import {
  ExecutionFailureHandler,
  damagedCheckpointCause,
} from '../../packages/jobmanager/src/execution-failure-handler.js';
import { JobRestarts } from '../../packages/jobmanager/src/job-restarts.js';
import { RestartBackoff } from '../../packages/jobmanager/src/restart-backoff.js';

process.env.WEIR_LOG_LEVEL ??= 'silent';
const log = createLogger('test');

const graph: JobGraph = {
  jobName: 'j',
  maxParallelism: 128,
  checkpoint: {},
  vertices: [
    {
      id: 'src',
      name: 'Source',
      parallelism: 2,
      maxParallelism: 128,
      operators: [{ id: 'src', name: 'Source', kind: 'source', keyed: false }],
      isSource: true,
    },
    {
      id: 'map',
      name: 'Map',
      parallelism: 2,
      maxParallelism: 128,
      operators: [{ id: 'map', name: 'Map', kind: 'map', keyed: false }],
      isSource: false,
    },
    {
      id: 'sum',
      name: 'Sum',
      parallelism: 3,
      maxParallelism: 128,
      operators: [{ id: 'sum', name: 'Sum', kind: 'process', keyed: true }],
      isSource: false,
    },
  ],
  edges: [
    {
      sourceVertexId: 'src',
      targetVertexId: 'map',
      sourceOperatorId: 'src',
      targetOperatorId: 'map',
      partitioner: 'forward',
    },
    {
      sourceVertexId: 'map',
      targetVertexId: 'sum',
      sourceOperatorId: 'map',
      targetOperatorId: 'sum',
      partitioner: 'hash',
    },
  ],
} as never;

function placed(): Execution[] {
  const executions = createExecutions('0123456789abcdef', graph, 2);
  executions.forEach((e, i) => {
    e.slot = {
      slotIndex: e.subtaskIndex,
      taskManager: { id: `tm${i % 2}`, address: `h${i % 2}:1` },
    } as never;
  });
  return executions;
}

const settings = {
  jobContextJson: '{}',
  checkpointStorage: 'file:///c',
  checkpointingMode: 'EXACTLY_ONCE',
  unalignedCheckpoints: false,
  alignedCheckpointTimeoutMs: 0,
  stateBackend: 'heap',
  incrementalCheckpoints: false,
  finalCheckpoint: true,
  restore: undefined,
};

describe('execution graph', () => {
  test('one execution per subtask, ids unique and naming job, vertex and subtask', () => {
    const executions = createExecutions('0123456789abcdef', graph, 2);
    assert.equal(executions.length, 7);
    assert.equal(new Set(executions.map((e) => e.executionId)).size, 7);
    assert.match(executions[3]!.executionId, /^01234567-map-1-[0-9a-f]{4}$/);
    assert.ok(executions.every((e) => e.attempt === 2 && e.state === 'CREATED'));
  });

  test('deployment descriptors: forward edges connect the same subtask, others every producer subtask', () => {
    const executions = placed();
    const map1 = executions.find((e) => e.vertex.id === 'map' && e.subtaskIndex === 1)!;
    const src1 = executions.find((e) => e.vertex.id === 'src' && e.subtaskIndex === 1)!;
    const tdd = createDeploymentDescriptor('j1', graph, executions, map1, settings);
    assert.deepEqual(tdd.inputChannels, [
      {
        partitionId: `${src1.executionId}>map`,
        subpartitionIndex: 1,
        producerAddress: src1.slot!.taskManager.address,
        producerTaskManagerId: src1.slot!.taskManager.id,
      },
    ]);
    assert.deepEqual(tdd.resultPartitions, [
      {
        partitionId: `${map1.executionId}>sum`,
        numberOfSubpartitions: 3,
        partitioner: 'hash',
        consumerVertexId: 'sum',
        consumerExecutionIds: [0, 1, 2].map(
          (i) => executions.find((e) => e.vertex.id === 'sum' && e.subtaskIndex === i)!.executionId,
        ),
      },
    ]);
    const sum2 = executions.find((e) => e.vertex.id === 'sum' && e.subtaskIndex === 2)!;
    const sumTdd = createDeploymentDescriptor('j1', graph, executions, sum2, settings);
    assert.deepEqual(
      sumTdd.inputChannels!.map((c) => [c.partitionId!.split('>')[1], c.subpartitionIndex]),
      [
        ['sum', 2],
        ['sum', 2],
      ],
    );
    assert.equal(sumTdd.restoreJson, '');
    assert.equal(sumTdd.attemptNumber, 2);
  });

  test('status view: records in at the sources, out at the sinks', () => {
    const executions = placed();
    for (const e of executions) [e.recordsIn, e.recordsOut] = [10, 20];
    const d = executionDetails(graph, executions);
    assert.equal(d.recordsIn, 20); // two source subtasks
    assert.equal(d.recordsOut, 30); // what the three sink subtasks took in
    assert.deepEqual(
      d.vertices!.map((v) => v.subtasks!.length),
      [2, 2, 3],
    );
  });
});

describe('ExecutionFailureHandler', () => {
  const failure = (domain: string, reason = ''): TaskFailure => ({
    vertexName: 'Sum',
    subtaskIndex: 1,
    taskManagerId: 'tm',
    message: 'boom',
    stack: '',
    domain,
    reason,
  });
  const latest = { id: 7, path: 'file:///c/j/chk-7' };

  test('a restore that finds the restored latest checkpoint damaged is not restarted; anything else is', () => {
    const h = new ExecutionFailureHandler(
      new RestartBackoff({ type: 'fixed-delay', attempts: 3, delayMs: 5 }),
      log,
    );
    assert.deepEqual(h.taskFailure(failure('restore', 'CORRUPT'), 3, 7, latest), {
      cause: 'Sum (2/3) failed: boom',
      damaged: latest,
    });
    assert.equal(h.taskFailure(failure('restore', 'UNAVAILABLE'), 3, 7, latest).damaged, undefined);
    assert.equal(h.taskFailure(failure('user', 'CORRUPT'), 3, 7, latest).damaged, undefined);
    // a newer checkpoint completed since: restarting restores that one
    assert.equal(h.taskFailure(failure('restore', 'NOT_FOUND'), 3, 6, latest).damaged, undefined);
    assert.equal(h.taskFailure(failure('restore', 'NOT_FOUND'), 3, 0, undefined).damaged, undefined);
  });

  test('restart delay: from the strategy until it is exhausted; never with noRestart', () => {
    const h = new ExecutionFailureHandler(
      new RestartBackoff({ type: 'fixed-delay', attempts: 1, delayMs: 5 }),
      log,
    );
    assert.equal(h.restartDelay('c', true, 0), undefined);
    assert.equal(h.restartDelay('c', false, 0), 5);
    assert.equal(h.restartDelay('c', false, 1), undefined);
  });

  test('the damaged-checkpoint cause names the checkpoint and the older one to resume from', () => {
    const m = damagedCheckpointCause(latest, { id: 6, path: 'file:///c/j/chk-6' }, 'x failed');
    assert.match(m, /^Checkpoint 7 \(file:\/\/\/c\/j\/chk-7\) is damaged and cannot be restored: x failed\./);
    assert.match(
      m,
      /--from-savepoint file:\/\/\/c\/j\/chk-6 \(the retained checkpoint 6, kept since the job failed\)\.$/,
    );
    assert.match(damagedCheckpointCause(latest, undefined, 'x'), /--from-savepoint an older savepoint\.$/);
  });
});

describe('JobRestarts', () => {
  test('timings are recorded once per attempt, and only for the current attempt', () => {
    const r = new JobRestarts(log);
    r.deployed(1); // no failover yet: nothing to record
    assert.equal(r.count, 0);
    r.begin(1, 'boom');
    r.checkpointCompleted(3); // not running yet: not the first checkpoint after the restart
    assert.equal(r.latest()!.firstCheckpointAt, 0);
    r.deployed(0); // a report of the old attempt
    assert.equal(r.latest()!.deployedAt, 0);
    r.deployed(1);
    r.stateRestored(1, 40);
    r.stateRestored(1, 25);
    r.allRunning(1);
    const running = r.latest()!.runningAt;
    r.allRunning(1);
    r.checkpointCompleted(4);
    const restart = r.all[0]!;
    assert.ok(restart.deployedAt >= restart.detectedAt);
    assert.equal(restart.stateRestoreMs, 40);
    assert.equal(restart.runningAt, running);
    assert.ok(restart.firstCheckpointAt >= running);
    assert.equal(restart.cause, 'boom');
  });
});
