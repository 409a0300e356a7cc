import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, until } from '../helpers/cli.js';
import { reference } from '../jobs/two-input-data.js';

const job = path.join(ROOT, 'test/jobs/two-input.ts');
const RECORDS = 6000;

/** Every committed line of a FileSink directory, sorted. */
function lines(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('part-')))
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(line);
  return out.sort();
}

/** Every output equals the reference exactly: nothing lost, nothing twice. */
function assertExact(out: string): void {
  const ref = reference(RECORDS, 2);
  assert.ok(ref.late!.length > 3, `the input has late left records (${ref.late!.length})`);
  for (const [dir, expected] of Object.entries(ref)) {
    assert.ok(expected.length > 0, `${dir}: the reference is not empty`);
    assert.deepEqual(lines(path.join(out, dir)), [...expected].sort(), dir);
  }
}

async function runJob(
  cluster: TestCluster,
  out: string,
  rate: number,
  backend: string,
  kills: number,
): Promise<number> {
  const client = await ClusterClient.connect(cluster.address);
  try {
    const r = await cluster.run([
      'run',
      job,
      '--detached',
      '--',
      String(RECORDS),
      String(rate),
      out,
      backend,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    let hits = 0;
    for (let round = 0; round < kills; round++) {
      const d = await until(
        'all tasks running',
        async () => {
          const s = await client.status(jobId);
          if (s.status === 'JOB_FINISHED' || s.status === 'JOB_FAILED') return s;
          return s.status === 'JOB_RUNNING' &&
            s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING'))
            ? s
            : undefined;
        },
        60_000,
      );
      if (d.status !== 'JOB_RUNNING') break;
      await new Promise((res) => setTimeout(res, 700 + Math.random() * 700));
      const busy = [...new Set(d.vertices.flatMap((v) => v.subtasks.map((t) => t.taskManagerId)))];
      const victim = busy[Math.floor(Math.random() * busy.length)]!;
      process.kill(cluster.taskManagerPid(victim), 'SIGKILL');
      const after = await until(
        'the job noticed the kill',
        async () => {
          const s = await client.status(jobId);
          return s.numRestarts > d.numRestarts || s.status !== 'JOB_RUNNING' ? s : undefined;
        },
        15_000,
      );
      if (after.numRestarts > d.numRestarts) hits++;
    }
    await until(
      'job finished',
      async () => {
        const s = await client.status(jobId);
        if (s.status === 'JOB_FAILED') throw new Error(`job failed: ${s.failureCause}`);
        return s.status === 'JOB_FINISHED' ? s : undefined;
      },
      90_000,
    ).catch(async (e: unknown) => {
      const s = await client.status(jobId);
      const states = s.vertices.map((v) => `${v.name}: ${v.subtasks.map((t) => t.state).join(',')}`);
      throw new Error(`${(e as Error).message}\n${states.join('\n')}`);
    });
    return hits;
  } finally {
    client.close();
  }
}

describe('two-input operators on a cluster: connect, joins, broadcast state, exactly once', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    cluster = await new TestCluster({ taskManagers: 3, slots: 2 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('undisturbed run equals the reference (heap)', async () => {
    const out = path.join(work, 'plain');
    await runJob(cluster, out, 100_000, 'heap', 0);
    assertExact(out);
  });

  test('kill -9 of TaskManagers mid-run: output still equals the reference (rocksdb)', async () => {
    const out = path.join(work, 'killed');
    const hits = await runJob(cluster, out, 1500, 'rocksdb', 2);
    assert.ok(hits >= 1, 'at least one kill hit the running job');
    assertExact(out);
  });
});
