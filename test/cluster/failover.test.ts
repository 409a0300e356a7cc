import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import {
  ROOT,
  TestCluster,
  freePort,
  startWeirProcess,
  tempDir,
  until,
  weir,
  untilJobFinished,
} from '../helpers/cli.js';
import { TestS3Server } from '../helpers/s3.js';

const job = path.join(ROOT, 'test/jobs/exactly-once.ts');
// 10 s of input at RATE: three kill rounds (each 1-2 s of reading, less what a restore rewinds)
// take at most about 7 s of it, so every kill lands mid-stream and a dozen checkpoints complete
const RECORDS = 80_000;
const RATE = 8_000;
const KEYS = 1000;

/** Committed updates per key, in count order, from the part files of a FileSink directory. */
function committed(dir: string): Map<number, Array<[number, number]>> {
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
  for (const l of per.values()) l.sort((a, b) => a[0] - b[0]);
  return per;
}

function expectedFor(key: number): { n: number; sum: number } {
  let n = 0;
  let sum = 0;
  for (let i = key; i < RECORDS; i += KEYS) {
    n++;
    sum += i;
  }
  return { n, sum };
}

/** Every key: counts 1..n with no gap and no repeat, and the last sum exact. */
function assertExactlyOnce(dir: string): void {
  const per = committed(dir);
  assert.equal(per.size, KEYS, 'every key has output');
  for (let k = 0; k < KEYS; k++) {
    const updates = per.get(k)!;
    const { n, sum } = expectedFor(k);
    const counts = updates.map(([c]) => c);
    assert.deepEqual(
      counts,
      Array.from({ length: n }, (_, i) => i + 1),
      `key ${k}: counts must be 1..${n} without gaps or repeats`,
    );
    assert.equal(updates[n - 1]![1], sum, `key ${k}: last sum`);
  }
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('.')),
    [],
    'no in-progress files remain',
  );
}

/**
 * Kills, three times, the TaskManager process of a random running task and waits until the
 * job has restarted; returns how many kills hit the job while it was running.
 */
/** Whether a line of any TaskManager's log satisfies `pred`. */
function taskManagerLogHas(cluster: TestCluster, pred: (line: string) => boolean): boolean {
  return readdirSync(cluster.logDir())
    .filter((f) => f.startsWith('taskmanager-'))
    .some((f) => readFileSync(path.join(cluster.logDir(), f), 'utf8').split('\n').some(pred));
}

/**
 * The slots of live TaskManager processes that still hold a worker prewarmed for `jobId` (its
 * log's last word on the slot is 'slot prewarmed': no deployment took it, no release came),
 * and how many prewarms there were. A killed process's slots went with it.
 */
function prewarmedSlots(cluster: TestCluster, jobId: string): { held: string[]; prewarms: number } {
  const last = new Map<string, { msg: string; pid: number }>();
  let prewarms = 0;
  for (const f of readdirSync(cluster.logDir()).filter((n) => n.startsWith('taskmanager-')))
    for (const line of readFileSync(path.join(cluster.logDir(), f), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      const l = JSON.parse(line) as { msg: string; pid: number; jobId?: string; slot?: number };
      if (l.slot === undefined) continue;
      const slot = `${f} pid ${l.pid} slot ${l.slot}`;
      if (l.msg === 'slot prewarmed' && l.jobId === jobId) {
        prewarms++;
        last.set(slot, l);
      } else if (l.msg === 'deploying task' || l.msg === 'prewarmed slot released') last.set(slot, l);
    }
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const held = [...last].filter(([, l]) => l.msg === 'slot prewarmed' && alive(l.pid)).map(([slot]) => slot);
  return { held, prewarms };
}

async function killTaskManagers(
  cluster: TestCluster,
  client: ClusterClient,
  jobId: string,
  opts: { prewarmed?: boolean } = {},
): Promise<number> {
  let hits = 0;
  // a free slot is prewarmed once the job has run 2 s: the first kill then moves a task into it
  if (opts.prewarmed)
    await until(
      "the spare TaskManager's slot prewarmed with the job",
      async () =>
        taskManagerLogHas(cluster, (l) => l.includes('"slot prewarmed"') && l.includes(jobId))
          ? true
          : undefined,
      15_000,
    );
  for (let round = 0; round < 3; round++) {
    const d = await until(
      'all tasks running',
      async () => {
        const s = await client.status(jobId);
        if (s.status === 'JOB_FINISHED') return s;
        return s.status === 'JOB_RUNNING' &&
          s.vertices.every((v) => v.subtasks.every((t) => t.state === 'RUNNING'))
          ? s
          : undefined;
      },
      60_000,
    );
    if (d.status === 'JOB_FINISHED') break;
    await new Promise((r) => setTimeout(r, 1_000 + Math.random() * 1_000));
    const busy = [...new Set(d.vertices.flatMap((v) => v.subtasks.map((t) => t.taskManagerId)))];
    const victim = busy[Math.floor(Math.random() * busy.length)]!;
    process.kill(cluster.taskManagerPid(victim), 'SIGKILL');
    const after = await until(
      'the job noticed the kill',
      async () => {
        const s = await client.status(jobId);
        return s.numRestarts > d.numRestarts || s.status === 'JOB_FINISHED' ? s : undefined;
      },
      15_000,
    );
    if (after.numRestarts > d.numRestarts) hits++;
  }
  return hits;
}

async function runUnderFire(
  cluster: TestCluster,
  out: string,
  extra: string[],
  opts: { prewarmed?: boolean } = {},
): Promise<string> {
  const client = await ClusterClient.connect(cluster.address);
  try {
    const r = await cluster.run([
      'run',
      job,
      '--detached',
      '--',
      String(RECORDS),
      String(RATE),
      out,
      ...extra,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    const hits = await killTaskManagers(cluster, client, jobId, opts);
    assert.ok(hits >= 2, `the job ran long enough for at least two kills to hit it (${hits})`);
    if (!extra.some((a) => a.startsWith('s3://'))) {
      // checkpoints in flight at each kill were aborted and left no files: besides the retained
      // ones (with _metadata) there is at most the one in flight now
      const jobDir = path.join(cluster.dir, 'checkpoints', jobId);
      await until(
        'no directories of aborted checkpoints',
        async () => {
          if ((await client.status(jobId)).status === 'JOB_FINISHED') return true;
          const dirs = existsSync(jobDir) ? readdirSync(jobDir).filter((x) => x.startsWith('chk-')) : [];
          return dirs.filter((x) => !existsSync(path.join(jobDir, x, '_metadata'))).length <= 1
            ? true
            : undefined;
        },
        10_000,
      );
    }
    const d = await untilJobFinished(client, jobId, 120_000);
    assert.ok(
      d.numRestarts >= hits,
      `one restart per kill at least: ${d.numRestarts} restarts, ${hits} kills`,
    );
    for (const rs of d.restarts) {
      assert.match(rs.cause, /was lost|Lost the input channel/);
      assert.ok(Number(rs.runningAt) >= Number(rs.detectedAt), 'each restart got the job running again');
    }
    const s = await weir(['status', jobId, '--jobmanager', cluster.address]);
    assert.match(s.stdout, /restarts: \d+/);
    assert.match(s.stdout, /running again after \d+\.\d+ s/);
    return jobId;
  } finally {
    client.close();
  }
}

describe('failover: kill -9 of TaskManagers during a job', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    cluster = await new TestCluster({ taskManagers: 3, slots: 1 }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('exactly-once: every key counts 1..n with no gap or repeat and the exact sum', async () => {
    const out = path.join(work, 'exactly-once');
    const jobId = await runUnderFire(cluster, out, ['EXACTLY_ONCE'], { prewarmed: true });
    assertExactlyOnce(out);
    // the spare TaskManager's free slot was prewarmed, so a task moved there found its worker
    // thread started and the job bundle planned; once the job ended, prewarmed workers stopped
    const lines = readdirSync(cluster.logDir())
      .filter((f) => f.startsWith('taskmanager-'))
      .flatMap((f) => readFileSync(path.join(cluster.logDir(), f), 'utf8').split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; prewarmed?: boolean });
    const deploys = lines.filter((l) => l.msg === 'deploying task');
    assert.ok(
      deploys.some((l) => l.prewarmed === true),
      `a redeployed task found a prewarmed slot (${deploys.length} deployments)`,
    );
    const slots = await until(
      'prewarmed workers of the ended job stopped',
      async () => {
        const s = prewarmedSlots(cluster, jobId);
        return s.held.length === 0 ? s : undefined;
      },
      10_000,
    ).catch((e: Error) => assert.fail(`${e.message}: ${prewarmedSlots(cluster, jobId).held.join(', ')}`));
    assert.ok(slots.prewarms > 0, 'slots were prewarmed for the job');
  });

  test('exactly-once with the RocksDB state backend', async () => {
    const out = path.join(work, 'rocksdb');
    await runUnderFire(cluster, out, ['EXACTLY_ONCE', '', '', 'rocksdb']);
    assertExactlyOnce(out);
  });

  test('at-least-once loses nothing (repeats allowed)', async () => {
    const out = path.join(work, 'at-least-once');
    await runUnderFire(cluster, out, ['AT_LEAST_ONCE']);
    const per = committed(out);
    assert.equal(per.size, KEYS);
    for (let k = 0; k < KEYS; k++) {
      const counts = per.get(k)!.map(([c]) => c);
      const { n, sum } = expectedFor(k);
      // committed output follows the restored state, so counts stay contiguous; replays only add
      assert.ok(
        counts.length >= n && counts.every((c, i) => c === i + 1),
        `key ${k}: contiguous counts covering 1..${n}`,
      );
      assert.ok(per.get(k)![counts.length - 1]![1] >= sum, `key ${k}: nothing lost from the sum`);
    }
  });

  test('a damaged latest checkpoint fails the job naming a way back, never falling back on its own', async () => {
    const client = await ClusterClient.connect(cluster.address);
    try {
      const out = path.join(work, 'damaged');
      const r = await cluster.run([
        'run',
        job,
        '--detached',
        '--',
        '60000',
        '6000',
        out,
        'EXACTLY_ONCE',
        '',
        '2500',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      const latest = await until(
        'two completed checkpoints',
        async () => {
          const s = await client.checkpoints(jobId);
          return (s.counts?.completed ?? 0) >= 2 ? s.latestCompleted : undefined;
        },
        60_000,
      );
      const stateDir = path.join(cluster.dir, 'checkpoints', jobId, `chk-${latest!.id}`, 'uid-count-and-sum');
      for (const f of readdirSync(stateDir)) rmSync(path.join(stateDir, f));
      const d = await client.status(jobId);
      const keyedTm = d.vertices.find((v) => v.name.includes('KeyedProcess'))!.subtasks[0]!.taskManagerId;
      process.kill(cluster.taskManagerPid(keyedTm), 'SIGKILL');
      const done = await until(
        'job failed',
        async () => {
          const s = await client.status(jobId);
          if (s.status === 'JOB_FINISHED')
            throw new Error('the job finished: it fell back to an older checkpoint');
          return s.status === 'JOB_FAILED' ? s : undefined;
        },
        90_000,
      );
      // sinks were told checkpoint n completed and may have committed up to it: an older one
      // would write that output again, so no attempt restores one
      assert.ok(
        done.restarts.every((x) => Number(x.restoredCheckpointId) >= latest!.id),
        `no attempt restored an older checkpoint: ${done.restarts.map((x) => x.restoredCheckpointId).join(', ')}`,
      );
      assert.match(
        done.failureCause,
        new RegExp(`Checkpoint ${latest!.id} \\(.*chk-${latest!.id}\\) is damaged`),
      );
      assert.match(done.failureCause, /Cannot read checkpoint file .*ENOENT/);
      const older = /--from-savepoint file:\/\/(\S+) \(the retained checkpoint (\d+)/.exec(done.failureCause);
      assert.ok(
        older,
        `the cause names an older retained checkpoint to restore explicitly: ${done.failureCause}`,
      );
      assert.ok(Number(older[2]) < latest!.id);
      assert.ok(existsSync(path.join(older[1]!, '_metadata')), 'and that checkpoint is kept');
    } finally {
      client.close();
    }
  });

  test('a job that always throws exhausts its restart strategy and fails with the cause', async () => {
    const client = await ClusterClient.connect(cluster.address);
    try {
      const r = await cluster.run(['run', path.join(ROOT, 'test/jobs/always-failing.ts')], {
        timeoutMs: 60_000,
      });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /FAILED/);
      assert.match(r.stderr, /poisoned record \d+/);
      assert.match(r.stderr, /restarts: 2/);
      const jobs = await client.list();
      const failed = jobs.jobs.find((j) => j.name === 'always-failing')!;
      const d = await client.status(failed.jobId);
      assert.equal(d.status, 'JOB_FAILED');
      assert.equal(d.numRestarts, 2);
      assert.match(d.failureCause, /Map.*failed: poisoned record/);
    } finally {
      client.close();
    }
  });
});

describe('failover with checkpoints on S3 (s3rver over HTTP)', () => {
  let s3: TestS3Server;
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    s3 = await new TestS3Server().start();
    cluster = await new TestCluster({ taskManagers: 3, slots: 1, env: s3.env }).start();
  });
  after(async () => {
    await cluster?.stop();
    await s3?.stop();
  });

  test('exactly-once under kill -9 with S3 checkpoint storage', async () => {
    const out = path.join(work, 's3');
    await runUnderFire(cluster, out, ['EXACTLY_ONCE', 's3://weir/checkpoints']);
    assertExactlyOnce(out);
  });
});

describe('a JobManager killed mid-job and started again on the same job store', () => {
  const dir = tempDir('weir-jm-restart-');
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  test('the job resumes from its latest checkpoint and its result is exact', async () => {
    const port = await freePort();
    const jmArgs = [
      'jobmanager',
      '--port',
      String(port),
      '--checkpoint-dir',
      path.join(dir, 'checkpoints'),
      '--job-store',
      path.join(dir, 'ha'),
    ];
    const jm = await startWeirProcess(jmArgs, path.join(dir, 'jobmanager.log'));
    children.push(jm.child);
    for (const id of ['tm-a', 'tm-b']) {
      const tm = await startWeirProcess(
        [
          'taskmanager',
          '--jobmanager',
          jm.address,
          '--slots',
          '1',
          '--id',
          id,
          '--work-dir',
          path.join(dir, id),
        ],
        path.join(dir, `${id}.log`),
      );
      children.push(tm.child);
    }
    const out = path.join(dir, 'out');
    const r = await weir([
      'run',
      job,
      '--jobmanager',
      jm.address,
      '--detached',
      '--',
      String(RECORDS),
      String(RATE),
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    let client = await ClusterClient.connect(jm.address);
    await until(
      'three completed checkpoints',
      async () => (((await client.checkpoints(jobId)).counts?.completed ?? 0) >= 3 ? true : undefined),
      60_000,
    );
    client.close();
    jm.child.kill('SIGKILL');
    await new Promise((res) => setTimeout(res, 1_000));
    const jm2 = await startWeirProcess(jmArgs, path.join(dir, 'jobmanager.log'));
    children.push(jm2.child);
    client = await ClusterClient.connect(jm2.address);
    try {
      const d = await until(
        'the recovered job finished',
        async () => {
          const s = await client.status(jobId).catch(() => undefined);
          if (s?.status === 'JOB_FAILED') throw new Error(`job failed: ${s.failureCause}`);
          return s?.status === 'JOB_FINISHED' ? s : undefined;
        },
        120_000,
      );
      assert.equal(d.jobId, jobId);
    } finally {
      client.close();
    }
    assertExactlyOnce(out);
    assert.match(readFileSync(path.join(dir, 'jobmanager.log'), 'utf8'), /recovered job from the job store/);
    // a finished job leaves the store
    await until(
      'job store emptied',
      async () => (readdirSync(path.join(dir, 'ha', 'jobs')).length === 0 ? true : undefined),
      10_000,
    );
  });
});
