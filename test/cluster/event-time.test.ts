import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { runWithTaskManagerKills } from '../helpers/kill-run.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until } from '../helpers/cli.js';
import { KEYS, reference, windowsReference } from '../jobs/event-time-data.js';

const job = path.join(ROOT, 'test/jobs/event-time.ts');
const windowsJob = path.join(ROOT, 'test/jobs/event-time-windows.ts');
const idleJob = path.join(ROOT, 'test/jobs/event-time-idle.ts');
const RECORDS = 24_000;

/** Every committed line of FileSink directories (one per run of the job), sorted. */
function lines(dirs: string[], sub: string): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    const dir = path.join(d, sub);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((n) => n.startsWith('part-')))
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(line);
  }
  return out.sort();
}

/** The job's outputs equal the reference exactly: nothing lost, nothing twice, late data included. */
function assertExact(...outs: string[]): void {
  const ref = reference(RECORDS);
  const windows = lines(outs, 'windows');
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
  assert.deepEqual(lines(outs, 'timers'), [...ref.timers].sort(), 'event-time timers');
  const late = lines(outs, 'late');
  assert.ok(ref.late.length > 20, `the input has late records (${ref.late.length})`);
  assert.deepEqual(late, [...ref.late].sort(), 'late side outputs');
  const pt = lines(outs, 'pt');
  assert.deepEqual(
    pt,
    Array.from({ length: KEYS }, (_, k) => JSON.stringify(['pt', k])).sort(),
    'one processing-time timer per key',
  );
}

function runJob(
  cluster: TestCluster,
  out: string,
  rate: number,
  backend: string,
  kills: number,
): Promise<number> {
  return runWithTaskManagerKills(cluster, job, [String(RECORDS), String(rate), out, backend], kills);
}

describe('event time on a cluster: windows, timers and late data, exactly once', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    // RocksDB in the canonical format here; the native checkpoints (the default) have their own suite below
    cluster = await new TestCluster({
      taskManagers: 3,
      slots: 2,
      extra: ['-D', 'state.backend.rocksdb.native-checkpoints=false'],
    }).start();
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

  test('windows and timers rescale from 2 to 3 subtasks through a savepoint with the same results', async () => {
    const client = await ClusterClient.connect(cluster.address);
    try {
      const out1 = path.join(work, 'rescale-1');
      const out2 = path.join(work, 'rescale-2');
      const r = await cluster.run([
        'run',
        job,
        '--detached',
        '--',
        String(RECORDS),
        '2000',
        out1,
        'heap',
        '2',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      // a 12 s run: a loaded machine still takes the savepoint well before the end
      await until('some records processed', async () => {
        const d = await client.status(jobId);
        assert.notEqual(d.status, 'JOB_FAILED', d.failure?.message);
        return Number(d.recordsIn) > 15_000 ? true : undefined;
      });
      const { savepoint, details } = await cancelWithSavepoint(
        cluster,
        client,
        jobId,
        path.join(work, 'savepoints'),
      );
      assert.ok(Number(details.recordsIn) < RECORDS * 4, 'stopped before the end');
      const r2 = await cluster.run(
        ['run', job, '--from-savepoint', savepoint, '--', String(RECORDS), '200000', out2, 'heap', '3'],
        { timeoutMs: 120_000 },
      );
      assert.equal(r2.code, 0, r2.stdout + r2.stderr);
      assert.ok(lines([out1], 'windows').length > 0, 'the first run committed windows');
      assertExact(out1, out2);
    } finally {
      client.close();
    }
  });

  test('allowed lateness (late firings, late side output), count windows, an evicting window: exact under kill -9', async () => {
    const out = path.join(work, 'windows-kills');
    const hits = await runWithTaskManagerKills(cluster, windowsJob, [String(RECORDS), '4000', out], 2);
    assert.ok(hits >= 1, `at least one kill hit the running job (${hits})`);
    const ref = windowsReference(RECORDS);
    const firings = lines([out], 'lateness');
    // late records within the allowed lateness fire their window again with the count so far
    const refirings =
      firings.length - new Set(firings.map((l) => JSON.stringify(JSON.parse(l).slice(0, 3)))).size;
    assert.ok(refirings > 10, `late firings (${refirings})`);
    assert.deepEqual(firings, [...ref.lateness].sort(), 'tumbling windows with allowed lateness');
    assert.ok(ref.late.length > 3, `the input has records past the allowed lateness (${ref.late.length})`);
    assert.deepEqual(lines([out], 'late'), [...ref.late].sort(), 'late side output');
    assert.deepEqual(lines([out], 'count'), [...ref.count].sort(), 'count windows');
    assert.deepEqual(lines([out], 'evictor'), [...ref.evictor].sort(), 'evicting windows');
  });

  test('a source subtask with no data goes idle and does not stall the windows', async () => {
    const out = path.join(work, 'idle');
    const n = 12_000;
    const client = await ClusterClient.connect(cluster.address);
    try {
      // 1,500 records/s: the source runs about 8 s
      const r = await cluster.run(['run', idleJob, '--detached', '--', String(n), '1500', out]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      // windows are committed while the source is still far from its end
      const early = await until(
        'a window committed while the source runs',
        async () => {
          const d = await client.status(jobId);
          assert.notEqual(d.status, 'JOB_FAILED', d.failure?.message);
          if (d.status === 'JOB_FINISHED')
            throw new Error('the job finished before any window was committed');
          return lines([out], 'windows').length > 0 ? d : undefined;
        },
        60_000,
      );
      // records the sources read so far (sampled about once a second)
      const sourceRecords = Number(early.recordsIn);
      assert.ok(
        sourceRecords < n * 0.75,
        `windows fired early (the source had emitted ${sourceRecords} of ${n})`,
      );
      await until(
        'job finished',
        async () => {
          const d = await client.status(jobId);
          assert.notEqual(d.status, 'JOB_FAILED', d.failure?.message);
          return d.status === 'JOB_FINISHED' ? d : undefined;
        },
        90_000,
      );
    } finally {
      client.close();
    }
    // every even record counted once, 50 to a 1 s window of event time (i * 10 ms)
    const expected = Array.from({ length: n / 100 }, () => JSON.stringify(['window', 50]));
    assert.deepEqual(lines([out], 'windows'), expected);
  });
});

// window contents, timers and the restored watermark in RocksDB's own files: a failover
// downloads the killed subtasks' databases and opens them
describe('event time on RocksDB with native checkpoints, exactly once', () => {
  let cluster: TestCluster;
  const work = tempDir();

  before(async () => {
    cluster = await new TestCluster({
      taskManagers: 3,
      slots: 2,
      extra: ['-D', 'state.backend.rocksdb.native-checkpoints=true'],
    }).start();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('three kill -9 of TaskManagers change nothing (rocksdb, native checkpoints)', async () => {
    const out = path.join(work, 'kills-native');
    // the checkpoints are native: their shared files include RocksDB MANIFESTs (a finished
    // job's checkpoints are discarded, so they are looked for while it runs)
    const checkpoints = path.join(cluster.dir, 'checkpoints');
    let manifests = 0;
    const look = setInterval(() => {
      try {
        const n = readdirSync(checkpoints, { recursive: true, encoding: 'utf8' }).filter((f) =>
          /shared[\\/][^\\/]*MANIFEST-\d+$/.test(f),
        ).length;
        manifests = Math.max(manifests, n);
      } catch {
        /* not there yet */
      }
    }, 100);
    let hits: number;
    try {
      hits = await runJob(cluster, out, 2_500, 'rocksdb', 3);
    } finally {
      clearInterval(look);
    }
    assert.ok(hits >= 2, `at least two kills hit the running job (${hits})`);
    assertExact(out);
    assert.ok(manifests > 0, 'native checkpoints wrote RocksDB MANIFESTs as shared files');
  });
});
