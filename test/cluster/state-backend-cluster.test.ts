import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterClient } from '../../packages/client/src/cluster-client.js';
import { ROOT, TestCluster, cancelWithSavepoint, tempDir, until } from '../helpers/cli.js';

const job = path.join(ROOT, 'test/jobs/state-backend-count.ts');
const RECORDS = 90_000;
// restored runs read the rest at full speed: only the first run needs the rate limit (15,000/s),
// to be stopped with a savepoint well before its end
const UNLIMITED = '10000000';

type Row = [number, number, number, number];

/** Final [count, sum, evens] per key over the output of every run: the update with the largest count. */
function finals(dirs: string[]): Map<number, [number, number, number]> {
  const out = new Map<number, [number, number, number]>();
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => n.startsWith('part-'))) {
      for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        if (!line) continue;
        const [k, c, s, e] = JSON.parse(line) as Row;
        if (c > (out.get(k)?.[0] ?? 0)) out.set(k, [c, s, e]);
      }
    }
  }
  return out;
}

function expected(): Map<number, [number, number, number]> {
  const m = new Map<number, [number, number, number]>();
  for (let i = 0; i < RECORDS; i++) {
    const e = m.get(i % 97) ?? [0, 0, 0];
    m.set(i % 97, [e[0] + 1, e[1] + i, e[2] + (i % 2 === 0 ? 1 : 0)]);
  }
  return m;
}

const sorted = (m: Map<number, unknown>) => [...m.entries()].sort((a, b) => a[0] - b[0]);

/** RocksDB database directories (they hold a CURRENT file) under the TaskManagers' state directories. */
function databases(stateRoot: string): string[] {
  if (!existsSync(stateRoot)) return [];
  return readdirSync(stateRoot).flatMap((tm) => {
    const dir = path.join(stateRoot, tm);
    return (
      readdirSync(dir)
        // a task's database, not the hard-linked copy a native checkpoint uploads (<database>-chk-<n>-<id>)
        .filter((d) => /_attempt_\d+_[0-9a-f]{8}$/.test(d) && existsSync(path.join(dir, d, 'CURRENT')))
        .map((d) => path.join(dir, d))
    );
  });
}

describe('RocksDB state backend on a cluster (state.backend: rocksdb in the configuration file)', () => {
  let cluster: TestCluster;
  let client: ClusterClient;
  const work = tempDir();
  const stateRoot = path.join(work, 'tm-state');
  before(async () => {
    const file = path.join(work, 'weir.yaml');
    writeFileSync(
      file,
      [
        'state.backend: rocksdb',
        `state.backend.rocksdb.localdir: ${stateRoot}`,
        'state.backend.rocksdb.block.cache-size: 4 mb',
        'state.backend.rocksdb.writebuffer.size: 2 mb',
        'execution.checkpointing.interval: 300 ms',
        `state.checkpoints.dir: file://${path.join(work, 'checkpoints')}`,
        `state.savepoints.dir: file://${path.join(work, 'savepoints')}`,
        '',
      ].join('\n'),
    );
    cluster = await new TestCluster({ taskManagers: 2, slots: 2, extra: ['--config', file] }).start();
    client = await ClusterClient.connect(cluster.address);
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  test('checkpoints, stop with a savepoint, restore at another parallelism into RocksDB and into heap: exact counts', async () => {
    const out1 = path.join(work, 'run-1');
    const r = await cluster.run(['run', job, '-p', '2', '--detached', '--', String(RECORDS), out1]);
    assert.equal(r.code, 0, r.stderr);
    const jobId = /submitted with id (\w+)/.exec(r.stdout)![1]!;
    await until('two completed checkpoints and some records', async () => {
      const [s, c] = await Promise.all([client.status(jobId), client.checkpoints(jobId)]);
      return Number(s.recordsIn) > 8_000 && (c.counts?.completed ?? 0) >= 2 ? true : undefined;
    });
    // the keyed operator's two subtasks each work on a RocksDB database of their own
    assert.equal(databases(stateRoot).length, 2, `databases under ${stateRoot}`);
    const { savepoint, details: d } = await cancelWithSavepoint(
      cluster,
      client,
      jobId,
      path.join(work, 'savepoints'),
    );
    assert.ok(Number(d.recordsIn) < RECORDS, 'the first run was stopped before its end');
    await until(
      'the canceled tasks deleted their databases',
      async () => (databases(stateRoot).length === 0 ? true : undefined),
      10_000,
    );

    // the cluster's backend (RocksDB), at parallelism 3
    const out2 = path.join(work, 'run-2-rocksdb');
    const r2 = await cluster.run([
      'run',
      job,
      '-p',
      '3',
      '--from-savepoint',
      savepoint,
      '--',
      String(RECORDS),
      out2,
      '',
      UNLIMITED,
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(sorted(finals([out1, out2])), sorted(expected()));

    // the same savepoint into heap state: the job's setting wins over the cluster's
    const out3 = path.join(work, 'run-2-heap');
    const r3 = await cluster.run([
      'run',
      job,
      '-p',
      '1',
      '--from-savepoint',
      savepoint,
      '--',
      String(RECORDS),
      out3,
      'heap',
      UNLIMITED,
    ]);
    assert.equal(r3.code, 0, r3.stderr);
    assert.deepEqual(sorted(finals([out1, out3])), sorted(expected()));
    assert.equal(databases(stateRoot).length, 0, 'finished tasks leave no database behind');
  });

  test('an unusable local state directory fails the task with the path named', async () => {
    const file = path.join(work, 'a-file');
    writeFileSync(file, 'not a directory');
    const config = path.join(work, 'bad.yaml');
    writeFileSync(
      config,
      `state.backend.type: rocksdb\nstate.backend.rocksdb.localdir: ${file}\nstate.checkpoints.dir: file://${path.join(work, 'checkpoints')}\n`,
    );
    const bad = await new TestCluster({ taskManagers: 1, slots: 1, extra: ['--config', config] }).start();
    try {
      const r = await bad.run(['run', job, '-p', '1', '--', '100', path.join(work, 'never')]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.ok((r.stdout + r.stderr).includes(path.join(file, 'tm-1')), r.stdout + r.stderr);
    } finally {
      await bad.stop();
    }
  });
});
