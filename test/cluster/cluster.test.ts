import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, tempDir, until, weir } from '../helpers/cli.js';

const job = (name: string): string => path.join(ROOT, 'test/jobs', name);

/** A few MB of text with a skewed vocabulary, and its word counts computed here. */
function makeText(file: string, lines: number): Map<string, number> {
  const counts = new Map<string, number>();
  let s = 12345;
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s;
  };
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = 1 + (rnd() % 15);
    const words: string[] = [];
    for (let j = 0; j < n; j++) {
      const r = rnd();
      // a few frequent words, many rare ones, and some non-ASCII
      const w = r % 10 < 6 ? `w${r % 50}` : r % 10 < 9 ? `word${r % 5000}` : `wörd${r % 300}`;
      words.push(w);
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    out.push(words.join(i % 7 === 0 ? '  ' : ' '));
  }
  writeFileSync(file, out.join('\n') + '\n');
  return counts;
}

/** Final count per word: the largest running count the job wrote for it. */
function readCounts(dir: string): { counts: Map<string, number>; files: string[] } {
  const files = readdirSync(dir);
  const counts = new Map<string, number>();
  for (const f of files.filter((f) => f.startsWith('part-'))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const [w, c] = JSON.parse(line) as [string, number];
      if (c > (counts.get(w) ?? 0)) counts.set(w, c);
    }
  }
  return { counts, files };
}

function jobIdOf(stdout: string): string {
  const m = /submitted with id ([0-9a-f]+)/.exec(stdout);
  assert.ok(m, `no job id in: ${stdout}`);
  return m[1]!;
}

describe('a local cluster of 2 TaskManagers x 2 slots', () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  const work = tempDir();
  let input = '';
  let expected = new Map<string, number>();

  before(async () => {
    cluster = await new TestCluster({
      taskManagers: 2,
      slots: 2,
      extra: ['--slot-request-timeout', '3000'],
    }).start();
    client = await ClusterClient.connect(cluster.address);
    input = path.join(work, 'input.txt');
    expected = makeText(input, 250_000);
  });

  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  for (const p of [1, 2, 4]) {
    test(`word count at parallelism ${p} equals an independent count`, async () => {
      const out = path.join(work, `out-p${p}`);
      const r = await cluster.run(['run', job('wordcount-file.ts'), '-p', String(p), '--', input, out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /FINISHED/);
      const { counts, files } = readCounts(out);
      assert.equal(files.filter((f) => f.startsWith('.')).length, 0, `in-progress files left: ${files}`);
      assert.equal(files.filter((f) => f.startsWith('part-')).length > 0, true);
      assert.equal(counts.size, expected.size);
      for (const [w, c] of expected) assert.equal(counts.get(w), c, `count of '${w}'`);
    });
  }

  test('the DataStream API on a cluster: union, keyed state of every kind, sum/min/max, broadcast, rebalance, filter, collect', async () => {
    const r = await cluster.run(['run', job('api-coverage.ts')]);
    assert.equal(r.code, 0, r.stderr);
    // the word counts before it left every slot a started worker (task code loaded, no job):
    // none of this job's tasks waited for a worker thread to start
    const jobId = jobIdOf(r.stdout);
    const deploys = ['taskmanager-1.log', 'taskmanager-2.log']
      .flatMap((f) => readFileSync(path.join(cluster.logDir(), f), 'utf8').split('\n'))
      .filter((l) => l.includes('"deploying task"') && l.includes(jobId));
    // the first task of the job in each slot found the worker (the others share it)
    const firstPerSlot = new Map<string, string>();
    for (const l of deploys) {
      const d = JSON.parse(l) as { taskManagerId: string; slot: number };
      const slot = `${d.taskManagerId}/${d.slot}`;
      if (!firstPerSlot.has(slot)) firstPerSlot.set(slot, l);
    }
    assert.ok(firstPerSlot.size > 0, 'the job was deployed');
    for (const l of firstPerSlot.values())
      assert.match(l, /"blankWorker":true|"prewarmed":true/, `a started worker: ${l}`);
    const rows = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('['))
      .map((l) => JSON.parse(l) as [string, ...number[]]);
    const tagged = (tag: string) => rows.filter((x) => x[0] === tag);
    // keyed state: the last update of each key has seen all of its 24 numbers
    for (let k = 0; k < 5; k++) {
      const nums = Array.from({ length: 120 }, (_, i) => i + 1).filter((n) => n % 5 === k);
      const last = tagged('state')
        .filter((x) => x[1] === k)
        .sort((a, b) => (a[2] as number) - (b[2] as number))
        .at(-1)!;
      const sum = nums.reduce((a, b) => a + b, 0);
      assert.deepEqual(last.slice(2), [
        nums.length,
        sum,
        sum / nums.length,
        nums.filter((n) => n % 2 === 0).length,
        nums.filter((n) => n % 2 === 1).length,
      ]);
    }
    assert.equal(tagged('state').length, 120);
    const final = (tag: string, key: string) =>
      tagged(tag)
        .filter((x) => (x[1] as unknown) === key)
        .map((x) => x[2]);
    assert.deepEqual(
      final('sum', 'a').sort((a, b) => a! - b!),
      [1, 4, 14],
    );
    assert.deepEqual(
      final('min', 'b').sort((a, b) => a! - b!),
      [-4, 2],
    );
    assert.equal(Math.max(...(final('max', 'a') as number[])), 10);
    assert.deepEqual(
      tagged('broadcast')
        .map((x) => x[1])
        .sort(),
      [1, 1, 1, 2, 2, 2, 3, 3, 3],
    );
    const perSubtask = [0, 1, 2].map((i) => tagged('rebalance').filter((x) => x[2] === i).length);
    assert.deepEqual(perSubtask, [10, 10, 10]);
    assert.deepEqual(
      tagged('filter')
        .map((x) => x[1])
        .sort((a, b) => a! - b!),
      [10, 20, 30, 40, 50],
    );
  });

  test('a slow sink throttles a fast source and memory stays bounded', async () => {
    const r = await cluster.run(['run', job('slow-sink.ts'), '--detached']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = jobIdOf(r.stdout);
    await until('job running', async () =>
      (await client.status(jobId)).vertices.every((v) => v.subtasks.every((s) => s.state === 'RUNNING'))
        ? true
        : undefined,
    );
    const samples: Array<{ read: number; written: number; rss: number }> = [];
    for (let i = 0; i < 8; i++) {
      await new Promise((res) => setTimeout(res, 1000));
      const d = await client.status(jobId);
      const o = await client.overview();
      samples.push({
        read: Number(d.recordsIn),
        written: Number(d.recordsOut),
        rss: Math.max(...o.taskManagers.map((t) => Number(t.rssBytes))),
      });
    }
    const first = samples[1]!;
    const last = samples[samples.length - 1]!;
    const readRate = (last.read - first.read) / (samples.length - 2);
    const writeRate = (last.written - first.written) / (samples.length - 2);
    // the generator alone does millions per second; throttled it follows the sink
    assert.ok(writeRate > 1000, `sink made progress: ${writeRate}/s`);
    assert.ok(
      readRate < writeRate * 1.5 + 5000,
      `source throttled to the sink: read ${readRate}/s, written ${writeRate}/s`,
    );
    // in flight between source and sink: bounded by credits and backlog, not by time
    assert.ok(last.read - last.written < 200_000, `records in flight: ${last.read - last.written}`);
    assert.ok(last.rss < 400 * 1024 * 1024, `TaskManager RSS ${last.rss}`);
    assert.ok(last.rss < samples[2]!.rss * 1.5, `RSS grows: ${samples.map((s) => s.rss).join(', ')}`);
    const c = await weir(['cancel', jobId, '--jobmanager', cluster.address]);
    assert.equal(c.code, 0, c.stderr);
    await until('job canceled', async () =>
      (await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined,
    );
  });

  test('cancel ends every task and frees the slots', async () => {
    const r = await cluster.run(['run', job('unbounded.ts'), '--detached', '--', '4']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = jobIdOf(r.stdout);
    await until('tasks running', async () => {
      const d = await client.status(jobId);
      return d.vertices.every((v) => v.subtasks.every((s) => s.state === 'RUNNING')) ? true : undefined;
    });
    const list = await weir(['list', '--jobmanager', cluster.address]);
    assert.match(list.stdout, new RegExp(`${jobId}\\s+RUNNING`));
    const c = await weir(['cancel', jobId, '--jobmanager', cluster.address]);
    assert.equal(c.code, 0, c.stderr);
    const d = await until('job canceled', async () => {
      const s = await client.status(jobId);
      return s.status === 'JOB_CANCELED' ? s : undefined;
    });
    for (const v of d.vertices) for (const s of v.subtasks) assert.equal(s.state, 'CANCELED');
    const o = await until('slots free', async () => {
      const ov = await client.overview();
      return ov.freeSlots === 4 ? ov : undefined;
    });
    assert.equal(o.freeSlots, 4);
  });

  test('a user function that throws fails the job with its stack trace', async () => {
    const r = await cluster.run(['run', job('failing.ts')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /FAILED/);
    assert.match(r.stderr, /bad record 500/);
    assert.match(r.stderr, /checkRecord/);
    const jobId = jobIdOf(r.stdout);
    const s = await weir(['status', jobId, '--json', '--jobmanager', cluster.address]);
    const d = JSON.parse(s.stdout) as { status: string; failure: { stack: string } };
    assert.equal(d.status, 'JOB_FAILED');
    assert.match(d.failure.stack, /bad record 500/);
  });

  test('a job needing more slots than the cluster has waits, says so, then fails', async () => {
    const r = await cluster.run(['run', job('unbounded.ts'), '--detached', '--', '5']);
    assert.equal(r.code, 0, r.stderr);
    const jobId = jobIdOf(r.stdout);
    const s = await weir(['status', jobId, '--jobmanager', cluster.address]);
    assert.match(s.stdout, /waiting for 5 slots/);
    const d = await until('job failed', async () => {
      const st = await client.status(jobId);
      return st.status === 'JOB_FAILED' ? st : undefined;
    });
    assert.match(d.failureCause, /Could not get 5 slots within 3 s/);
  });

  test('a job file that does not compile names the file and line and submits nothing', async () => {
    const before = (await client.list()).jobs.length;
    const r = await cluster.run(['run', job('broken.ts')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broken\.ts:4:\d+: error/);
    assert.equal((await client.list()).jobs.length, before);
  });

  test('a missing job file and a job without sinks get clear errors', async () => {
    const missing = await cluster.run(['run', job('nope.ts')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Job file not found: .*nope\.ts/);
    const noSink = await cluster.run(['run', job('no-sink.ts')]);
    assert.equal(noSink.code, 1);
    assert.match(noSink.stderr, /no sinks/);
  });
});

describe('bad input without a cluster', () => {
  test('an unreachable JobManager is named within 5 seconds', async () => {
    const t0 = Date.now();
    const r = await weir(['list', '--jobmanager', '127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Cannot reach the JobManager at 127\.0\.0\.1:1/);
    assert.ok(Date.now() - t0 < 8_000);
  });

  test('a wrong flag is rejected', async () => {
    const r = await weir(['run', 'x.ts', '--paralelism', '2']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown option '--paralelism'/);
    const bad = await weir(['cluster', 'start', '--taskmanagers', 'zero']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--taskmanagers/);
  });
});

describe('a TaskManager that dies', () => {
  test('fails its job with a cause naming the TaskManager', async () => {
    const cluster = await new TestCluster({ taskManagers: 2, slots: 1 }).start();
    try {
      const r = await cluster.run(['run', job('unbounded.ts'), '--detached', '--', '2']);
      const jobId = jobIdOf(r.stdout);
      const client = await ClusterClient.connect(cluster.address);
      try {
        await until('tasks running', async () => {
          const d = await client.status(jobId);
          return d.vertices.every((v) => v.subtasks.every((s) => s.state === 'RUNNING')) ? true : undefined;
        });
        const log = readFileSync(path.join(cluster.logDir(), 'taskmanager-2.log'), 'utf8').split('\n')[0]!;
        const pid = (JSON.parse(log) as { pid: number }).pid;
        process.kill(pid, 'SIGKILL');
        const d = await until(
          'job failed',
          async () => {
            const s = await client.status(jobId);
            return s.status === 'JOB_FAILED' ? s : undefined;
          },
          15_000,
        );
        // whichever notices first names it: the JobManager (heartbeat, "was lost") or the
        // consumer whose input channel from tm-2 dropped
        assert.match(
          d.failureCause,
          /TaskManager tm-2 .*(was lost|Lost the input channel)|Lost the input channel from TaskManager tm-2/,
        );
      } finally {
        client.close();
      }
    } finally {
      await cluster.stop();
    }
  });
});

describe('a task stuck in user code', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await new TestCluster({
      taskManagers: 1,
      slots: 2,
      env: { WEIR_TASK_CANCELLATION_TIMEOUT: '1 s' },
    }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('is stopped by terminating its worker thread after the cancellation timeout; the slot works again', async () => {
    const client = await ClusterClient.connect(cluster.address);
    try {
      const r = await cluster.run(['run', job('stuck-in-user-code.ts'), '--detached']);
      assert.equal(r.code, 0, r.stderr);
      const jobId = jobIdOf(r.stdout);
      await until('job running', async () =>
        (await client.status(jobId)).vertices.every((v) => v.subtasks.every((s) => s.state === 'RUNNING'))
          ? true
          : undefined,
      );
      await new Promise((res) => setTimeout(res, 1_000)); // record 1000 arrives after 0.2 s at 5000/s
      const c = await weir(['cancel', jobId, '--jobmanager', cluster.address]);
      assert.equal(c.code, 0, c.stderr);
      const t0 = Date.now();
      await until(
        'job canceled',
        async () => ((await client.status(jobId)).status === 'JOB_CANCELED' ? true : undefined),
        15_000,
      );
      assert.ok(Date.now() - t0 < 10_000, 'canceled within the timeout and some slack');
      assert.match(
        readFileSync(path.join(cluster.logDir(), 'taskmanager-1.log'), 'utf8'),
        /did not react to cancellation; terminating its slot's worker thread/,
      );
      const out = tempDir();
      const again = await cluster.run(['run', job('exactly-once.ts'), '--', '2000', '20000', out], {
        timeoutMs: 60_000,
      });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /FINISHED/);
    } finally {
      client.close();
    }
  });
});
