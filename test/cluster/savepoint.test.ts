import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until } from '../helpers/cli.js';

const job = path.join(ROOT, 'test/jobs/savepoint-count.ts');
const RECORDS = 90_000;
// restored runs read the rest at full speed: only the first run needs the rate limit (15,000/s),
// to be stopped with a savepoint well before its end
const UNLIMITED = '10000000';

/** Final [count, sum] per key over the output of every run: the update with the largest count. */
function finals(dirs: string[]): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => n.startsWith('part-'))) {
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        if (!line) continue;
        const [k, c, s] = JSON.parse(line) as [number, number, number];
        if (c > (out.get(k)?.[0] ?? 0)) out.set(k, [c, s]);
      }
    }
  }
  return out;
}

function expected(): Map<number, [number, number]> {
  const m = new Map<number, [number, number]>();
  for (let i = 0; i < RECORDS; i++) {
    const e = m.get(i % 97) ?? [0, 0];
    m.set(i % 97, [e[0] + 1, e[1] + i]);
  }
  return m;
}

describe('savepoints and restore', () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  const work = tempDir();
  before(async () => {
    cluster = await new TestCluster({ taskManagers: 2, slots: 2 }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  async function stopWithSavepoint(p: number, name: string): Promise<{ savepoint: string; out1: string }> {
    const out1 = path.join(work, `${name}-1`);
    const r = await cluster.run(['run', job, '-p', String(p), '--detached', '--', String(RECORDS), out1]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('some records read', async () => {
      const d = await client.status(jobId);
      return Number(d.recordsIn) > 8_000 ? true : undefined;
    });
    const { savepoint, details: d } = await cancelWithSavepoint(
      cluster,
      client,
      jobId,
      path.join(work, 'savepoints'),
    );
    assert.ok(Number(d.recordsIn) < RECORDS, 'the first run was stopped before its end');
    return { savepoint, out1 };
  }

  for (const [from, to] of [
    [2, 2],
    [2, 3],
    [4, 2],
  ] as const) {
    test(`stop with a savepoint at parallelism ${from}, restore at ${to}: exactly the counts of an uninterrupted run`, async () => {
      const { savepoint, out1 } = await stopWithSavepoint(from, `p${from}-p${to}`);
      const out2 = path.join(work, `p${from}-p${to}-2`);
      const r = await cluster.run([
        'run',
        job,
        '-p',
        String(to),
        '--from-savepoint',
        savepoint,
        '--',
        String(RECORDS),
        out2,
        UNLIMITED,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const got = finals([out1, out2]);
      assert.deepEqual(
        [...got.entries()].sort((a, b) => a[0] - b[0]),
        [...expected().entries()].sort((a, b) => a[0] - b[0]),
      );
    });
  }

  test('operator list state is split and union list state is broadcast on a restore at another parallelism', async () => {
    const opJob = path.join(ROOT, 'test/jobs/operator-state.ts');
    const r = await cluster.run(['run', opJob, '-p', '2', '--detached', '--', '60000']);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('records flowing', async () =>
      Number((await client.status(jobId)).recordsIn) > 5_000 ? true : undefined,
    );
    const { savepoint } = await cancelWithSavepoint(cluster, client, jobId, path.join(work, 'op-savepoints'));
    const r2 = await cluster.run([
      'run',
      opJob,
      '-p',
      '3',
      '--from-savepoint',
      savepoint,
      '--',
      '60000',
      UNLIMITED,
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    const rows = r2.stdout
      .split('\n')
      .filter((l) => l.startsWith('['))
      .map((l) => JSON.parse(l) as [string, number, number[], Array<[number, number]>]);
    assert.equal(rows.length, 3);
    rows.sort((a, b) => a[1] - b[1]);
    // split: the two lists of the old subtasks go to new subtasks 0 and 1; union: all get both
    assert.deepEqual(
      rows.map((x) => x[2].length),
      [1, 1, 0],
    );
    for (const row of rows) assert.deepEqual(row[3].map((e) => e[0]).sort(), [0, 1]);
    const splitTotal = rows.flatMap((x) => x[2]).reduce((a, b) => a + b, 0);
    const unionTotal = rows[0]![3].reduce((a, e) => a + e[1], 0);
    assert.equal(splitTotal, unionTotal);
    assert.ok(splitTotal > 5_000);
  });

  test('missing, corrupt and foreign restore paths are refused with the file named', async () => {
    const missing = await cluster.run([
      'run',
      job,
      '--from-savepoint',
      path.join(work, 'nope'),
      '--',
      '10',
      path.join(work, 'x'),
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Restore path does not exist: .*nope/);

    const { savepoint } = await stopWithSavepoint(2, 'corrupt');
    const truncated = path.join(work, 'truncated');
    cpSync(savepoint, truncated, { recursive: true });
    const md = readFileSync(path.join(truncated, '_metadata'), 'utf8');
    writeFileSync(path.join(truncated, '_metadata'), md.slice(0, md.length / 2));
    const t = await cluster.run([
      'run',
      job,
      '--from-savepoint',
      truncated,
      '--',
      '10',
      path.join(work, 'y'),
    ]);
    assert.equal(t.code, 1);
    assert.match(t.stderr, /Corrupt checkpoint metadata .*truncated\/_metadata/);

    const damaged = path.join(work, 'damaged');
    cpSync(savepoint, damaged, { recursive: true });
    const opDir = path.join(damaged, 'uid-count-and-sum');
    const file = path.join(opDir, readdirSync(opDir)[0]!);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);
    const d = await cluster.run(['run', job, '--from-savepoint', damaged, '--', '10', path.join(work, 'z')]);
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /Checksum mismatch in checkpoint file .*damaged\/uid-count-and-sum/);

    const foreign = await cluster.run([
      'run',
      path.join(ROOT, 'test/jobs/checkpointed-count.ts'),
      '--from-savepoint',
      savepoint,
      '--',
      '200',
      '1',
    ]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /state for operators the job does not have: .*uid-count-and-sum/);
  });
});
