import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, freePort, startWeirProcess, tempDir, until, weir } from '../helpers/cli.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Ids of the chk-* directories of a job's checkpoint storage. */
function checkpointDirs(checkpoints: string, jobId: string): number[] {
  const dir = path.join(checkpoints, jobId);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((n) => Number(/^chk-(\d+)$/.exec(n)?.[1] ?? NaN))
    .filter((n) => !Number.isNaN(n))
    .sort((a, b) => a - b);
}

describe('checkpoint coordination on a real cluster', () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  const work = tempDir();
  before(async () => {
    cluster = await new TestCluster({ taskManagers: 2, slots: 2 }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  test('a declined savepoint releases the alignment downstream (periodic checkpoints off)', async () => {
    const progress = path.join(work, 'progress.json');
    const r = await cluster.run([
      'run',
      path.join(ROOT, 'test/jobs/declining-source.ts'),
      '--detached',
      '--',
      progress,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    const seen = (): number[] => {
      if (!existsSync(progress)) return [0, 0]; // not written yet
      return JSON.parse(readFileSync(progress, 'utf8')) as number[];
    };
    try {
      await until('records of both source subtasks arrive', async () =>
        seen().every((n) => n > 200) ? true : undefined,
      );
      await assert.rejects(
        client.savepoint(jobId, path.join(work, 'sp-declined'), false),
        /declining this checkpoint on purpose/,
      );
      // the sink had barrier n from source subtask 1 and none from subtask 0: without the cancel
      // marker that channel stays blocked until another barrier comes, which here never would
      const before = seen();
      await sleep(2_500);
      const later = seen();
      for (const i of [0, 1])
        assert.ok(
          later[i]! - before[i]! > 500,
          `records of source subtask ${i} keep arriving after the declined savepoint: ${before[i]} -> ${later[i]}`,
        );
      const t0 = Date.now();
      const sp = await client.savepoint(jobId, path.join(work, 'sp-ok'), false);
      assert.ok(Date.now() - t0 < 10_000, `the next savepoint completes promptly (${Date.now() - t0} ms)`);
      assert.ok(existsSync(path.join(sp.replace(/^file:\/\//, ''), '_metadata')));
    } finally {
      await client.cancel(jobId);
    }
  });

  test('a job resumed from a savepoint continues its checkpoint ids after the savepoint', async () => {
    const job = path.join(ROOT, 'test/jobs/exactly-once.ts');
    const args = (out: string): string[] => ['--', '10000000', '2000', out, 'EXACTLY_ONCE', '', '200'];
    const r = await cluster.run(['run', job, '--detached', ...args(path.join(work, 'ids-1'))]);
    assert.equal(r.code, 0, r.stderr);
    const first = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('a few completed checkpoints', async () =>
      ((await client.checkpoints(first)).counts?.completed ?? 0) >= 3 ? true : undefined,
    );
    const savepoint = await client.savepoint(first, path.join(work, 'ids-sp'), true);
    const savepointId = Number(/-(\d+)$/.exec(savepoint)![1]);
    assert.ok(savepointId >= 3);
    const r2 = await cluster.run([
      'run',
      job,
      '--detached',
      '--from-savepoint',
      savepoint.replace(/^file:\/\//, ''),
      ...args(path.join(work, 'ids-2')),
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    const second = /submitted with id (\w+)/.exec(r2.stdout)![1]!;
    try {
      const stats = await until('a completed checkpoint of the resumed job', async () => {
        const s = await client.checkpoints(second);
        return s.latestCompleted ? s : undefined;
      });
      const ids = (stats.history ?? []).map((h) => Number(h.id));
      assert.ok(
        ids.every((id) => id > savepointId),
        `checkpoint ids ${ids.join(', ')} continue after the savepoint's ${savepointId}`,
      );
    } finally {
      await client.cancel(second);
    }
  });
});

describe('a JobManager killed while checkpoints are in flight', () => {
  const dir = tempDir('weir-jm-inflight-');
  const checkpoints = path.join(dir, 'checkpoints');
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  test('the restarted JobManager reuses no checkpoint id and leaves no orphaned checkpoint directory', async () => {
    const port = await freePort();
    const jmArgs = [
      'jobmanager',
      '--port',
      String(port),
      '--checkpoint-dir',
      checkpoints,
      '--job-store',
      path.join(dir, 'ha'),
    ];
    const jm = await startWeirProcess(jmArgs, path.join(dir, 'jobmanager.log'));
    children.push(jm.child);
    const tm = await startWeirProcess(
      [
        'taskmanager',
        '--jobmanager',
        jm.address,
        '--slots',
        '2',
        '--id',
        'tm-a',
        '--work-dir',
        path.join(dir, 'tm-a'),
      ],
      path.join(dir, 'tm-a.log'),
    );
    children.push(tm.child);
    const r = await weir([
      'run',
      path.join(ROOT, 'test/jobs/slow-checkpoints.ts'),
      '--jobmanager',
      jm.address,
      '--detached',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    let client = await ClusterClient.connect(jm.address);
    // kill -9 at a moment when a checkpoint newer than the latest completed one is in flight and
    // some of its files are written already
    const highestBefore = await until(
      'a completed checkpoint and a newer one in flight with files written',
      async () => {
        const s = await client.checkpoints(jobId);
        const done = Number(s.latestCompleted?.id ?? 0);
        const inFlight = (s.history ?? []).filter((h) => h.status === 'IN_PROGRESS' && Number(h.id) > done);
        const written = checkpointDirs(checkpoints, jobId);
        if (done === 0 || !inFlight.some((h) => written.includes(Number(h.id)))) return undefined;
        jm.child.kill('SIGKILL');
        // the ids tasks have seen: those with files (an id in the history whose job-store write had
        // not landed yet was never triggered, and handing it out again harms nothing)
        return Math.max(done, ...checkpointDirs(checkpoints, jobId));
      },
      60_000,
    );
    client.close();
    await sleep(1_000);
    // the new JobManager shows the old one's checkpoints too (kept with the job store): its own are those triggered from now on
    const restartedAt = Date.now();
    const jm2 = await startWeirProcess(jmArgs, path.join(dir, 'jobmanager.log'));
    children.push(jm2.child);
    client = await ClusterClient.connect(jm2.address);
    try {
      const stats = await until(
        'a checkpoint completed by the new JobManager',
        async () => {
          const s = await client.checkpoints(jobId).catch(() => undefined);
          return Number(s?.latestCompleted?.triggerTime ?? 0) >= restartedAt ? s : undefined;
        },
        90_000,
      );
      const ids = (stats.history ?? [])
        .filter((h) => Number(h.triggerTime) >= restartedAt)
        .map((h) => Number(h.id));
      assert.ok(ids.length > 0);
      assert.ok(
        ids.every((id) => id > highestBefore),
        `the new JobManager's checkpoint ids ${ids.join(', ')} are all above ${highestBefore}, the highest the killed one used`,
      );
      // the subsumed checkpoint is deleted after the new one completes, not with it: give it a moment
      const orphans = await until(
        "the killed JobManager's checkpoints deleted",
        async () => {
          const left = checkpointDirs(checkpoints, jobId).filter((id) => id <= highestBefore);
          return left.length === 0 ? left : undefined;
        },
        10_000,
      ).catch(() => checkpointDirs(checkpoints, jobId).filter((id) => id <= highestBefore));
      assert.deepEqual(orphans, [], 'checkpoints the killed JobManager never completed are deleted');
      await client.cancel(jobId);
      await until('canceled', async () =>
        (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
      );
      await until('no checkpoint directory left', async () =>
        checkpointDirs(checkpoints, jobId).length === 0 ? true : undefined,
      );
    } finally {
      client.close();
    }
  });
});
