import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, type JobEdge, type JobGraph, type JobVertex } from '../../packages/core/src/index.js';
import { pipelinedRegions } from '../../packages/jobmanager/src/pipelined-regions.js';
import { ResourceManager } from '../../packages/jobmanager/src/resource-manager.js';
import { JobRestarts } from '../../packages/jobmanager/src/job-restarts.js';

process.env.WEIR_LOG_LEVEL ??= 'silent';
const log = createLogger('test');

function vertex(id: string, parallelism: number): JobVertex {
  return {
    id,
    name: id,
    parallelism,
    maxParallelism: 128,
    operators: [{ id, name: id, kind: 'map', keyed: false }],
    isSource: id.startsWith('src'),
  } as JobVertex;
}

function edge(from: string, to: string, typeNumber?: number): JobEdge {
  return {
    sourceVertexId: from,
    targetVertexId: to,
    sourceOperatorId: from,
    targetOperatorId: to,
    partitioner: 'hash',
    ...(typeNumber !== undefined ? { typeNumber } : {}),
  } as JobEdge;
}

function graph(vertices: JobVertex[], edges: JobEdge[]): JobGraph {
  return { jobName: 'j', maxParallelism: 128, checkpoint: {}, vertices, edges } as JobGraph;
}

describe('pipelined regions', () => {
  test('two independent pipelines are two regions, each needing its widest vertex in slots', () => {
    const regions = pipelinedRegions(
      graph(
        [vertex('srcA', 1), vertex('srcB', 2), vertex('sinkA', 3), vertex('sinkB', 1)],
        [edge('srcA', 'sinkA'), edge('srcB', 'sinkB')],
      ),
    );
    assert.deepEqual(
      regions.map((r) => [r.vertices.map((v) => v.id), r.slots, r.name]),
      [
        [['srcA', 'sinkA'], 3, 'region 1/2 (srcA -> sinkA)'],
        [['srcB', 'sinkB'], 2, 'region 2/2 (srcB -> sinkB)'],
      ],
    );
  });

  test('a two-input operator joins its inputs into one region; a lone vertex is a region', () => {
    const regions = pipelinedRegions(
      graph(
        [vertex('src1', 1), vertex('src2', 1), vertex('join', 2), vertex('sink', 1), vertex('srcLone', 1)],
        [edge('src1', 'join', 0), edge('src2', 'join', 1), edge('join', 'sink')],
      ),
    );
    assert.deepEqual(
      regions.map((r) => r.vertices.map((v) => v.id)),
      [['src1', 'src2', 'join', 'sink'], ['srcLone']],
    );
  });
});

describe('ResourceManager slots for a restarting region', () => {
  test('a restart prefers the slots its tasks had, falls back when their TaskManager is gone, frees only its own', () => {
    const rm = new ResourceManager(log, 1_000, 10_000, 'jm');
    try {
      const a = rm.register('tm-a', '127.0.0.1:1', 2, 's-a');
      rm.register('tm-b', '127.0.0.1:2', 2, 's-b');
      const first = rm.allocate('job', 3)!;
      assert.equal(first.length, 3);
      // the region on tm-a's second slot restarts: its slot is freed and taken again
      const onA = first.filter((s) => s.taskManager === a);
      rm.releaseSlots('job', onA);
      assert.equal(rm.freeSlots(), 1 + onA.length);
      const again = rm.allocate('job', onA.length, onA)!;
      assert.deepEqual(
        again.map((s) => [s.taskManager.id, s.slotIndex]),
        onA.map((s) => [s.taskManager.id, s.slotIndex]),
      );
      // releasing another job's slot does nothing; nor does a slot of a TaskManager that left
      rm.releaseSlots('other', again);
      assert.equal(rm.freeSlots(), 1);
      rm.release('job');
      // a TaskManager restarted with the same id is preferred (its local directory survived)
      const again2 = rm.register('tm-a', '127.0.0.1:3', 2, 's-a2');
      const restarted = rm.allocate('job', 1, [{ taskManager: a, slotIndex: 1 }])!;
      assert.deepEqual([restarted[0]!.taskManager, restarted[0]!.slotIndex], [again2, 1]);
      // one that is gone is not waited for
      const gone = rm.allocate('job', 1, [{ taskManager: { ...a, id: 'tm-gone' }, slotIndex: 0 }]);
      assert.equal(gone?.length, 1);
    } finally {
      rm.close();
    }
  });
});

describe('ResourceManager slots for a new job', () => {
  test('the free slot freed longest ago goes first (its blank worker has had time to load); never used ones before that', () => {
    const rm = new ResourceManager(log, 1_000, 10_000, 'jm');
    try {
      rm.register('tm-a', '127.0.0.1:1', 3, 's-a');
      const slotOf = (job: string): number => rm.allocate(job, 1)![0]!.slotIndex;
      assert.equal(slotOf('j1'), 0);
      rm.release('j1');
      // slot 0 was just freed: slots 1 and 2 were never used
      assert.equal(slotOf('j2'), 1);
      rm.release('j2');
      assert.equal(slotOf('j3'), 2);
      rm.release('j3');
      // all used once: the one freed longest ago
      assert.equal(slotOf('j4'), 0);
      assert.equal(slotOf('j5'), 1);
      rm.release('j4');
      rm.release('j5');
      assert.equal(slotOf('j6'), 2);
      // a region's slots freed by releaseSlots count too
      const [s7] = rm.allocate('j7', 1)!;
      assert.equal(s7!.slotIndex, 0);
      rm.releaseSlots('j7', [s7!]);
      assert.equal(slotOf('j8'), 1);
    } finally {
      rm.close();
    }
  });
});

describe('JobRestarts with regions', () => {
  test('two regions failing over at once: each restart keeps its own timings and names its region', () => {
    const r = new JobRestarts(log);
    r.begin(1, 'a failed', 'region 1/2 (a)');
    r.begin(2, 'b failed', 'region 2/2 (b)');
    r.deployed(1);
    r.allRunning(1);
    assert.ok(r.of(1)!.runningAt > 0, 'the older failover is found by its attempt');
    assert.equal(r.of(2)!.runningAt, 0);
    r.allRunning(2);
    r.checkpointCompleted(7);
    assert.ok(r.of(1)!.firstCheckpointAt > 0 && r.of(2)!.firstCheckpointAt > 0);
    assert.deepEqual(
      r.all.map((x) => x.region),
      ['region 1/2 (a)', 'region 2/2 (b)'],
    );
  });
});
