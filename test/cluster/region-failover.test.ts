import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { JobDetails__Output as JobDetails } from '../../packages/core/src/index.js';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, until, untilJobFinished } from '../helpers/cli.js';

const job = path.join(ROOT, 'test/jobs/two-pipelines.ts');
const RECORDS = 24_000;
const RATE = 3_000;
const KEYS = 100;

/** Every key of a FileSink directory: counts 1..n with no gap or repeat, and the exact last sum. */
function assertExactlyOnce(dir: string): void {
  const per = new Map<number, Array<[number, number]>>();
  for (const f of readdirSync(dir).filter((n) => n.startsWith('part-'))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const [k, c, s] = JSON.parse(line) as [number, number, number];
      let l = per.get(k);
      if (!l) per.set(k, (l = []));
      l.push([c, s]);
    }
  }
  assert.equal(per.size, KEYS, `${dir}: every key has output`);
  for (let k = 0; k < KEYS; k++) {
    const updates = per.get(k)!.sort((a, b) => a[0] - b[0]);
    let n = 0;
    let sum = 0;
    for (let i = k; i < RECORDS; i += KEYS) {
      n++;
      sum += i;
    }
    assert.deepEqual(
      updates.map(([c]) => c),
      Array.from({ length: n }, (_, i) => i + 1),
      `${dir} key ${k}: counts 1..${n} without gaps or repeats`,
    );
    assert.equal(updates[n - 1]![1], sum, `${dir} key ${k}: last sum`);
  }
}

describe('pipelined-region failover', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    // one slot per TaskManager: each pipeline (region) runs on its own, and a spare takes the restart
    cluster = await new TestCluster({ taskManagers: 3, slots: 1 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('kill -9 of the TaskManager of one pipeline restarts only that pipeline; both outputs are exact', async () => {
    const client = await ClusterClient.connect(cluster.address);
    try {
      const outA = path.join(work, 'a');
      const outB = path.join(work, 'b');
      const r = await cluster.run([
        'run',
        job,
        '--detached',
        '--',
        String(RECORDS),
        String(RATE),
        outA,
        outB,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      const running = await until(
        'all tasks running',
        async () => {
          const s = await client.status(jobId);
          return s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING')) ? s : undefined;
        },
        60_000,
      );
      const ofA = running.vertices.filter((v) => / a$/.test(v.name));
      const ofB = running.vertices.filter((v) => / b$/.test(v.name));
      assert.equal(ofA.length + ofB.length, running.vertices.length, 'every vertex belongs to a or b');
      const tmA = ofA[0]!.subtasks[0]!.taskManagerId;
      const tmB = ofB[0]!.subtasks[0]!.taskManagerId;
      assert.notEqual(tmA, tmB, 'the two regions run in slots of their own (on different TaskManagers)');
      const idsB = ofB.flatMap((v) => v.subtasks.map((t) => t.executionId));
      // let a few checkpoints complete, then kill pipeline a's TaskManager
      await new Promise((res) => setTimeout(res, 2_000));
      process.kill(cluster.taskManagerPid(tmA), 'SIGKILL');
      const finished = await untilJobFinished(client, jobId);
      assert.ok(finished.numRestarts >= 1, 'the kill restarted something');
      for (const rs of finished.restarts) {
        assert.match(rs.region, /^region \d\/2 \(Sequence a -> /, 'only region a restarted');
        assert.ok(Number(rs.runningAt) >= Number(rs.detectedAt), 'the region ran again');
        assert.ok(Number(rs.restoredCheckpointId) > 0, 'it restored a checkpoint');
      }
      const idsBAfter = finished.vertices
        .filter((v) => / b$/.test(v.name))
        .flatMap((v) => v.subtasks.map((t) => t.executionId));
      assert.deepEqual(idsBAfter, idsB, "pipeline b's tasks were never restarted");
      // the REST restart timeline names the region, and b's subtasks are still attempt 0
      const rest = (await (await fetch(`http://${cluster.rest}/jobs/${jobId}/restarts`)).json()) as {
        restarts: Array<{ region: string | null }>;
      };
      assert.match(rest.restarts[0]!.region ?? '', /Sequence a/);
      for (const v of ofB) {
        const view = (await (
          await fetch(`http://${cluster.rest}/jobs/${jobId}/vertices/${v.vertexId}`)
        ).json()) as {
          subtasks: Array<{ attempt: number }>;
        };
        assert.deepEqual(
          view.subtasks.map((t) => t.attempt),
          [0],
          `${v.name}: attempt 0`,
        );
      }
      assertExactlyOnce(outA);
      assertExactlyOnce(outB);
    } finally {
      client.close();
    }
  });

  test('failover-strategy full: the same kill restarts every task of the job', async () => {
    const full = await new TestCluster({
      taskManagers: 2,
      slots: 1,
      extra: ['-D', 'jobmanager.execution.failover-strategy=full'],
    }).start();
    const client = await ClusterClient.connect(full.address);
    try {
      const r = await full.run([
        'run',
        job,
        '--detached',
        '--',
        String(RECORDS),
        String(RATE),
        path.join(work, 'full-a'),
        path.join(work, 'full-b'),
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      const allRunning = async (): Promise<JobDetails | undefined> => {
        const s = await client.status(jobId);
        return s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING')) ? s : undefined;
      };
      const before = await until('all tasks running', allRunning, 60_000);
      const ids = (d: JobDetails): string[] =>
        d.vertices.flatMap((v) => v.subtasks.map((t) => t.executionId));
      // one slot holds subtask 0 of every vertex: both pipelines run on one TaskManager
      const tm = before.vertices[0]!.subtasks[0]!.taskManagerId;
      assert.ok(before.vertices.every((v) => v.subtasks[0]!.taskManagerId === tm));
      await new Promise((res) => setTimeout(res, 1_000));
      process.kill(full.taskManagerPid(tm), 'SIGKILL');
      const restarted = await until(
        'every task running again',
        async () => {
          const s = await allRunning();
          return s && s.numRestarts >= 1 ? s : undefined;
        },
        30_000,
      );
      assert.equal(restarted.restarts[0]!.region, '', 'a full restart names no region');
      const old = new Set(ids(before));
      assert.ok(
        ids(restarted).every((id) => !old.has(id)),
        'every task of both pipelines runs in a new execution',
      );
      await client.cancel(jobId);
    } finally {
      client.close();
      await full.stop();
    }
  });
});
