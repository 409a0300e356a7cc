import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, until } from './cli.js';

/**
 * `keys` keys x 100-byte values in RocksDB on a TaskManager whose JavaScript heap is limited to
 * `heapMb`, so the state is several times larger than the heap: `npm test` runs a size that
 * takes under a minute, `npm run chaos` the 10M keys (1.1 GB) of the large-state figures.
 */
export function largeStateSuite(keys: number, heapMb: number): void {
  describe(`large RocksDB state: ${keys.toLocaleString('en-US')} keys of 100 bytes, TaskManager heap limited to ${heapMb} MB`, () => {
    let cluster: TestCluster;
    let client: ClusterClient;
    before(async () => {
      cluster = await new TestCluster({
        taskManagers: 1,
        slots: 1,
        extra: [`--taskmanager-node-args=--max-old-space-size=${heapMb}`],
      }).start();
      client = await ClusterClient.connect(cluster.address);
    });
    after(async () => {
      client?.close();
      await cluster?.stop();
    });

    test(
      'runs to the end with checkpoints, without running out of memory',
      { timeout: 600_000 },
      async () => {
        const t0 = Date.now();
        const r = await cluster.run([
          'run',
          path.join(ROOT, 'test/jobs/large-state.ts'),
          '--detached',
          '--',
          String(keys),
          '15000',
        ]);
        assert.equal(r.code, 0, r.stderr);
        const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
        const done = await until(
          'the job ended',
          async () => {
            const s = await client.status(jobId);
            return ['JOB_FINISHED', 'JOB_FAILED', 'JOB_CANCELED'].includes(s.status) ? s : undefined;
          },
          580_000,
        );
        const cps = await client.checkpoints(jobId);
        const completed = (cps.history ?? []).filter((c) => c.status === 'COMPLETED');
        const summary = `${keys} keys in ${((Date.now() - t0) / 1000).toFixed(1)} s; checkpoints: ${completed.map((c) => `#${c.id} ${(Number(c.stateSizeBytes) / 1e6).toFixed(0)} MB in ${c.durationMs} ms`).join(', ')}`;
        console.log(summary);
        assert.equal(done.status, 'JOB_FINISHED', `${done.failureCause ?? ''}\n${summary}`);
        assert.equal(
          done.numRestarts,
          0,
          `no TaskManager died (out of memory): ${done.restarts.map((x) => x.cause).join(' | ')}`,
        );
        assert.equal(Number(done.recordsIn) >= keys, true);
        // the final checkpoint holds every key: about 100 bytes of value plus key and framing each
        const last = completed[completed.length - 1]!;
        assert.ok(completed.length >= 1, summary);
        assert.ok(Number(last.stateSizeBytes) > 0, summary);
      },
    );
  });
}
