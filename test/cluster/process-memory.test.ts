import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { resolveProcessMemory } from '../../packages/taskmanager/src/process-memory.js';
import { ROOT, TestCluster, tempDir } from '../helpers/cli.js';

const PROCESS_SIZE = 640 << 20;

describe('a TaskManager bounded by taskmanager.memory.process.size', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await new TestCluster({
      taskManagers: 1,
      slots: 2,
      env: { WEIR_TASKMANAGER_MEMORY_PROCESS_SIZE: String(PROCESS_SIZE) },
    }).start();
  });
  after(() => cluster.stop());

  test("a task that outgrows its slot's heap fails with the limit and the settings named; the TaskManager runs the next job", async () => {
    const expected = resolveProcessMemory(PROCESS_SIZE, undefined, 0.4, 2);
    const report = path.join(tempDir('weir-heap-hog-'), 'heap-limit');
    const client = await ClusterClient.connect(cluster.address);
    try {
      const r = await cluster.run(['run', path.join(ROOT, 'test/jobs/heap-hog.ts'), report], {
        timeoutMs: 120_000,
      });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      // V8 enforces the worker's limit: the heap limit the task saw is its share, not the process's
      const limitMb = Number(readFileSync(report, 'utf8')) / (1 << 20);
      assert.ok(
        limitMb >= expected.workerHeapMb && limitMb < expected.workerHeapMb + 64,
        `worker heap limit ${limitMb} MiB, expected about ${expected.workerHeapMb} MiB`,
      );
      const job = (await client.list()).jobs.find((j) => j.name === 'heap-hog')!;
      const d = await client.status(job.jobId);
      assert.equal(d.status, 'JOB_FAILED');
      assert.match(d.failureCause, /memory limit/);
      assert.match(
        d.failureCause,
        new RegExp(
          `${expected.workerHeapMb} MiB of JavaScript heap from taskmanager\\.memory\\.process\\.size`,
        ),
      );
      // the TaskManager survived, and its slot got a fresh worker (the word count needs both slots)
      const next = await cluster.run(['run', path.join(ROOT, 'examples/wordcount.ts')], {
        timeoutMs: 120_000,
      });
      assert.equal(next.code, 0, next.stdout + next.stderr);
    } finally {
      client.close();
    }
  });
});
