import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, until } from '../helpers/cli.js';

/**
 * 10M keys x 100-byte values (about 1 GB of state) in RocksDB on a TaskManager whose JavaScript
 * heap is limited to 256 MB. WEIR_LARGE_STATE_KEYS changes the size (see bench/README.md for
 * how long what size takes on the 2-core machine).
 */
const KEYS = Number(process.env.WEIR_LARGE_STATE_KEYS ?? 10_000_000);
const HEAP_MB = 256;

describe(`large RocksDB state: ${KEYS.toLocaleString('en-US')} keys of 100 bytes, TaskManager heap limited to ${HEAP_MB} MB`, () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  before(async () => {
    cluster = await new TestCluster({
      taskManagers: 1,
      slots: 1,
      extra: [`--taskmanager-node-args=--max-old-space-size=${HEAP_MB}`],
    }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  test('runs to the end with checkpoints, without running out of memory', { timeout: 600_000 }, async () => {
    const t0 = Date.now();
    const r = await cluster.run([
      'run',
      path.join(ROOT, 'test/jobs/large-state.ts'),
      '--detached',
      '--',
      String(KEYS),
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
    const summary = `${KEYS} keys in ${((Date.now() - t0) / 1000).toFixed(1)} s; checkpoints: ${completed.map((c) => `#${c.id} ${(Number(c.stateSizeBytes) / 1e6).toFixed(0)} MB in ${c.durationMs} ms`).join(', ')}`;
    console.log(summary);
    assert.equal(done.status, 'JOB_FINISHED', `${done.failureCause ?? ''}\n${summary}`);
    assert.equal(
      done.numRestarts,
      0,
      `no TaskManager died (out of memory): ${done.restarts.map((x) => x.cause).join(' | ')}`,
    );
    assert.equal(Number(done.recordsIn) >= KEYS, true);
    // the final checkpoint holds every key: about 100 bytes of value plus key and framing each
    const last = completed[completed.length - 1]!;
    assert.ok(completed.length >= 1, summary);
    assert.ok(Number(last.stateSizeBytes) > 0, summary);
  });
});
