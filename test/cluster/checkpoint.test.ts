import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { decodeRecords } from '../../packages/core/src/codec.js';
import { ROOT, TestCluster, until, weir } from '../helpers/cli.js';

const job = path.join(ROOT, 'test/jobs/checkpointed-count.ts');

interface Metadata {
  checkpointId: number;
  operators: Record<
    string,
    {
      subtasks: Record<
        string,
        {
          operatorState?: Array<{ next: number }>;
          keyed?: { path: string; sha256: string; size: number; index: Record<string, [number, number]> };
        }
      >;
    }
  >;
}

describe('checkpoints to file:// storage', () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  before(async () => {
    cluster = await new TestCluster({ taskManagers: 2, slots: 1 }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  test('exactly-once snapshots are consistent, retained count holds, cancel deletes them', async () => {
    const r = await cluster.run(['run', job, '--detached', '--', '100', '3', 'EXACTLY_ONCE']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('twenty completed checkpoints', async () => {
      const s = await client.checkpoints(jobId);
      return (s.counts?.completed ?? 0) >= 20 ? s : undefined;
    });
    const listing = await weir(['checkpoints', jobId, '--jobmanager', cluster.address]);
    assert.match(listing.stdout, /#\d+ COMPLETED/);
    assert.match(listing.stdout, /alignment \d+ ms/);
    const s = await client.checkpoints(jobId);
    const latest = s.latestCompleted!;
    assert.equal(latest.subtasks.length, 4);
    assert.ok(latest.subtasks.every((t) => t.acknowledged));

    const jobDir = path.join(cluster.dir, 'checkpoints', jobId);
    // storage holds the job directory and the retained checkpoints (plus at most one in flight)
    assert.deepEqual(readdirSync(path.join(cluster.dir, 'checkpoints')), [jobId]);
    // (sampled until no subsumed checkpoint is mid-deletion)
    const { chks, complete } = await until(
      'exactly three completed checkpoints in storage',
      async () => {
        const dirs = readdirSync(jobDir);
        const done = dirs.filter((d) => existsSync(path.join(jobDir, d, '_metadata')));
        return done.length === 3 ? { chks: dirs, complete: done } : undefined;
      },
      5_000,
    );
    assert.ok(
      chks.every((d) => /^chk-\d+$/.test(d)),
      `unexpected entries: ${chks}`,
    );
    assert.ok(chks.length - complete.length <= 1, `in flight: ${chks}`);

    // consistency: the counts in keyed state equal the records the sources had emitted at the barrier
    for (const chk of complete) {
      const md = JSON.parse(readFileSync(path.join(jobDir, chk, '_metadata'), 'utf8')) as Metadata;
      const gen = md.operators['uid-generator']!.subtasks;
      const emitted = Object.entries(gen).reduce(
        (sum, [i, st]) => sum + (st.operatorState![0]!.next - Number(i)) / 2,
        0,
      );
      let counted = 0;
      for (const st of Object.values(md.operators['uid-count']!.subtasks)) {
        const data = readFileSync(path.join(jobDir, chk, st.keyed!.path));
        assert.equal(createHash('sha256').update(data).digest('hex'), st.keyed!.sha256);
        for (const [off, len] of Object.values(st.keyed!.index)) {
          for (const [name, , value] of decodeRecords(data.subarray(off, off + len)) as Array<
            [string, number, number]
          >) {
            if (name === 'count') counted += value;
          }
        }
      }
      assert.ok(emitted > 0);
      assert.equal(
        counted,
        emitted,
        `checkpoint ${md.checkpointId}: state counts ${counted} records, sources emitted ${emitted}`,
      );
    }

    const c = await weir(['cancel', jobId, '--jobmanager', cluster.address]);
    assert.equal(c.code, 0, c.stderr);
    await until('job canceled', async () =>
      (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
    );
    await until(
      "the job's checkpoint directory removed on cancellation",
      async () => (existsSync(jobDir) ? undefined : true),
      5_000,
    );
  });

  test('a checkpoint that times out is aborted and leaves no files behind', async () => {
    const r = await cluster.run(['run', path.join(ROOT, 'test/jobs/stuck-barriers.ts'), '--detached']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    try {
      const s = await until('three expired checkpoints', async () => {
        const st = await client.checkpoints(jobId);
        return (st.counts?.failed ?? 0) >= 3 ? st : undefined;
      });
      const expired = (s.history ?? []).filter((c) => c.status === 'FAILED');
      assert.ok(
        expired.every((c) => /expired after 50 ms/.test(c.failureReason ?? '')),
        expired.map((c) => c.failureReason).join('; '),
      );
      assert.equal(s.counts!.completed, 0);
      assert.equal(
        (await client.status(jobId)).status,
        'JOB_RUNNING',
        'the job keeps running within the tolerable failures',
      );
      // an aborted checkpoint's directory is deleted; only the one in flight may exist
      await new Promise((res) => setTimeout(res, 300));
      const jobDir = path.join(cluster.dir, 'checkpoints', jobId);
      const dirs = existsSync(jobDir) ? readdirSync(jobDir) : [];
      const abortedIds = expired.map((c) => `chk-${c.id}`);
      assert.deepEqual(
        dirs.filter((d) => abortedIds.includes(d)),
        [],
        `aborted checkpoints left files: ${dirs}`,
      );
    } finally {
      await weir(['cancel', jobId, '--jobmanager', cluster.address]);
      await until('job canceled', async () =>
        (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
      );
    }
  });

  test('at-least-once mode checkpoints too, and a job without checkpointing says so', async () => {
    const r = await cluster.run(['run', job, '--detached', '--', '200', '1', 'AT_LEAST_ONCE']);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('a completed checkpoint', async () =>
      (await client.checkpoints(jobId)).counts!.completed >= 2 ? true : undefined,
    );
    await weir(['cancel', jobId, '--jobmanager', cluster.address]);
    await until('job canceled', async () =>
      (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
    );
  });
});
