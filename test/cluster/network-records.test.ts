import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until } from '../helpers/cli.js';
import { KEYS, keyName, makeRecord } from '../jobs/typed-values-data.js';
import { SIZES_MB } from '../jobs/large-records-data.js';

const work = tempDir('weir-network-');

function lines(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('part-'))
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean));
}

/** Final [count, sum] per key name over every run's output: the update with the largest count. */
function finals(dirs: string[]): Map<string, [number, string]> {
  const out = new Map<string, [number, string]>();
  for (const dir of dirs)
    for (const l of lines(dir)) {
      const [k, c, s] = JSON.parse(l) as [string, number, string];
      if (c > (out.get(k)?.[0] ?? 0)) out.set(k, [c, s]);
    }
  return out;
}

function expectedFinals(records: number): Map<string, [number, string]> {
  const m = new Map<string, [number, bigint]>();
  for (let i = 0; i < records; i++) {
    const k = keyName(KEYS[i % KEYS.length]);
    const e = m.get(k) ?? [0, 0n];
    m.set(k, [e[0] + 1, e[1] + makeRecord(i).big]);
  }
  return new Map([...m].map(([k, [c, s]]) => [k, [c, s.toString()]]));
}

describe('records through the network: exact types, any size, copied at emit', () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  before(async () => {
    // one slot per TaskManager: every keyBy at parallelism 2 crosses between the two processes
    cluster = await new TestCluster({ taskManagers: 2, slots: 1 }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  for (const backend of ['heap', 'rocksdb']) {
    test(`Map/Set/Date/BigInt/typed arrays in records and ${backend} keyed state, keys differing only in type, across a savepoint restore`, async () => {
      // the first run is cancelled after 2,000 of these (12 s of input ahead of it at 1,500/s, a
      // margin for a loaded machine); the resumed run reads the rest at 20,000/s
      const RECORDS = 20_000;
      const job = path.join(ROOT, 'test/jobs/typed-values.ts');
      const out1 = path.join(work, `typed-${backend}-1`);
      const r = await cluster.run([
        'run',
        job,
        '-p',
        '2',
        '--detached',
        '--',
        String(RECORDS),
        out1,
        backend,
        // slow enough that `weir cancel` (a process of its own) reaches the job before its end
        '1500',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
      await until('some records processed', async () => {
        const d = await client.status(jobId);
        assert.notEqual(d.status, 'JOB_FAILED', d.failure?.message);
        return Number(d.recordsIn) > 2_000 ? true : undefined;
      });
      const { savepoint, details } = await cancelWithSavepoint(
        cluster,
        client,
        jobId,
        path.join(work, 'savepoints'),
      );
      assert.ok(Number(details.recordsIn) < RECORDS, 'stopped before the end');
      const out2 = path.join(work, `typed-${backend}-2`);
      const r2 = await cluster.run(
        ['run', job, '-p', '2', '--from-savepoint', savepoint, '--', String(RECORDS), out2, backend, '20000'],
        { timeoutMs: 120_000 },
      );
      assert.equal(r2.code, 0, r2.stdout + r2.stderr);
      assert.deepStrictEqual(finals([out1, out2]), expectedFinals(RECORDS));
      assert.equal(finals([out1, out2]).size, KEYS.length, 'every key distinct');
    });
  }

  test('records of 2 to 40 MB, 247 MB in all, pass between TaskManagers byte for byte', async () => {
    const out = path.join(work, 'large');
    const r = await cluster.run(['run', path.join(ROOT, 'test/jobs/large-records.ts'), '--', out], {
      timeoutMs: 240_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const got = lines(out)
      .map((l) => JSON.parse(l) as [number, number, boolean])
      .sort((a, b) => a[0] - b[0]);
    assert.deepStrictEqual(
      got,
      SIZES_MB.map((mb, i) => [i, mb * 1024 * 1024, true]),
    );
  });

  test('a map and a flatMap that change their output object after emitting produce correct output', async () => {
    const N = 50_000;
    const out = path.join(work, 'reused');
    const r = await cluster.run(['run', path.join(ROOT, 'test/jobs/reused-output.ts'), '--', String(N), out]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const got = lines(out).sort();
    const want = Array.from({ length: N }, (_, i) => [`${i}:0`, `${i}:1`])
      .flat()
      .sort();
    assert.deepStrictEqual(got, want);
  });

  test('collected records with Map, Set, bigint and Date print as JSON lines', async () => {
    const r = await cluster.run(['run', path.join(ROOT, 'test/jobs/collect-typed.ts')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const got = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { i: number })
      .sort((a, b) => a.i - b.i);
    assert.deepStrictEqual(
      got,
      [1, 2].map((i) => ({
        i,
        m: { a: i },
        objectKeys: [[{ x: i }, 'v']],
        s: [i, 'i'],
        small: i,
        big: (2n ** 70n).toString(),
        at: new Date(i).toISOString(),
      })),
    );
  });
});
