import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, until } from '../helpers/cli.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('checkpoints under backpressure (buffer debloating, default configuration)', () => {
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

  test('a keyed operator with 1 ms of work per record checkpoints in well under a second, and records flow', async () => {
    // a fast source into 1 ms of CPU per record: without debloating, full 32 KiB buffers of
    // small numbers queue ahead of every barrier (minutes of work) and no checkpoint completes
    const r = await cluster.run([
      'run',
      path.join(ROOT, 'test/jobs/slow-keyed.ts'),
      '--detached',
      '--',
      '1000',
      '1000',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    try {
      const done = await until(
        'six completed checkpoints',
        async () => {
          const s = await client.checkpoints(jobId);
          const c = (s.history ?? []).filter((h) => h.status === 'COMPLETED');
          return c.length >= 6 ? c : undefined;
        },
        40_000,
      );
      // the first checkpoint may come while the tasks are still starting
      const durations = done
        .sort((a, b) => a.id - b.id)
        .slice(1)
        .map((c) => c.durationMs!);
      const m = median(durations);
      console.log(`checkpoint durations under backpressure: ${durations.join(', ')} ms (median ${m} ms)`);
      assert.ok(m < 1000, `median checkpoint duration ${m} ms (${durations.join(', ')})`);
      // records still flow: the sinks keep receiving
      const before = Number((await client.status(jobId)).recordsOut);
      const after = await until(
        'more records at the sinks',
        async () => {
          const n = Number((await client.status(jobId)).recordsOut);
          return n > before + 200 ? n : undefined;
        },
        10_000,
      );
      assert.ok(after > before);
    } finally {
      await client.cancel(jobId);
    }
  });
});
