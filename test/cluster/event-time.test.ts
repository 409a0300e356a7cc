import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, until } from '../helpers/cli.js';
import { KEYS, reference } from '../jobs/event-time-data.js';

const job = path.join(ROOT, 'test/jobs/event-time.ts');
const RECORDS = 24_000;

/** Every committed line of a FileSink directory, sorted. */
function lines(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('part-')))
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(line);
  return out.sort();
}

/** The job's outputs equal the reference exactly: nothing lost, nothing twice, late data included. */
function assertExact(out: string): void {
  const ref = reference(RECORDS);
  const windows = lines(path.join(out, 'windows'));
  assert.deepEqual(
    windows.filter((l) => l.startsWith('["tumbling"')),
    [...ref.tumbling].sort(),
    'tumbling windows',
  );
  assert.deepEqual(
    windows.filter((l) => l.startsWith('["sliding"')),
    [...ref.sliding].sort(),
    'sliding windows',
  );
  assert.deepEqual(
    windows.filter((l) => l.startsWith('["session"')),
    [...ref.session].sort(),
    'session windows',
  );
  assert.deepEqual(lines(path.join(out, 'timers')), [...ref.timers].sort(), 'event-time timers');
  const late = lines(path.join(out, 'late'));
  assert.ok(ref.late.length > 20, `the input has late records (${ref.late.length})`);
  assert.deepEqual(late, [...ref.late].sort(), 'late side outputs');
  const pt = lines(path.join(out, 'pt'));
  assert.deepEqual(
    pt,
    Array.from({ length: KEYS }, (_, k) => JSON.stringify(['pt', k])).sort(),
    'one processing-time timer per key',
  );
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

describe('event time on a cluster: windows, timers and late data, exactly once', () => {
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
    await runJob(cluster, out, 200_000, 'heap', 0);
    assertExact(out);
  });

  // the restored watermark keeps every lateness decision and timer firing of the undisturbed run
  for (const backend of ['heap', 'rocksdb']) {
    test(`three kill -9 of TaskManagers change nothing (${backend})`, async () => {
      const out = path.join(work, `kills-${backend}`);
      const hits = await runJob(cluster, out, 2_500, backend, 3);
      assert.ok(hits >= 2, `at least two kills hit the running job (${hits})`);
      assertExact(out);
    });
  }
});
