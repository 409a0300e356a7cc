import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs, { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import type { RocksDBKeyedStateBackend } from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { takeLocalCheckpoint } from '../../packages/taskmanager/src/state/rocksdb/local-checkpoint.js';
import { ROOT, tempDir, until } from '../helpers/cli.js';
import { TestBackends } from '../helpers/state-backends.js';
import { KEYS, assertRounds, writeRound } from '../helpers/rocksdb-local-checkpoint.js';

const backends = new TestBackends();
after(() => backends.dispose());

/** A backend keeping its local checkpoints in `root`, with memtables small enough to flush often. */
const withCopies = (root: string): Promise<RocksDBKeyedStateBackend> =>
  backends.rocks({ localCheckpoints: root, maxBufferedEntries: 5_000 });

const copyDir = (root: string, id: number): string => path.join(root, `chk-${id}`);
const record = (root: string, id: number): { files: Array<[string, number]>; sequence: string } =>
  JSON.parse(readFileSync(path.join(copyDir(root, id), 'weir-local-checkpoint.json'), 'utf8')) as {
    files: Array<[string, number]>;
    sequence: string;
  };

/**
 * A fresh backend restored from the local checkpoint `id` in `root`, holding rounds 0 ..
 * `rounds` exactly; `recovered`: whether it must have opened the recovered form.
 */
async function restoredFrom(
  root: string,
  id: number,
  rounds: number,
  recovered?: boolean,
): Promise<RocksDBKeyedStateBackend> {
  const b = await withCopies(root);
  const r = await b.restoreLocalCheckpoint(id);
  assert.equal(typeof r, 'object', String(r));
  if (recovered !== undefined && typeof r === 'object') assert.equal(r.recovered, recovered);
  assertRounds(b, rounds);
  return b;
}

/** Removes one table file from a database directory (a copy damaged). */
const dropTableFile = (dir: string): void =>
  rmSync(
    path.join(
      dir,
      readdirSync(dir).find((n) => n.endsWith('.sst'))!,
    ),
  );

/** The recovered form of a completed checkpoint's copy, once the backend has made it. */
async function recoveredForm(root: string, id: number): Promise<string> {
  const dir = path.join(copyDir(root, id), 'recovered');
  await until(`the recovered form of checkpoint ${id}`, () => Promise.resolve(existsSync(dir) || undefined));
  return dir;
}

describe('RocksDB local checkpoints (local recovery from the database files)', () => {
  test('kept at a checkpoint, then the process is killed (kill -9) while writing on: the restore opens exactly the state of the checkpoint', async () => {
    const root = tempDir('weir-local-chk-');
    const dbDir = path.join(tempDir('weir-local-db-'), 'db');
    // a process of its own that keeps checkpoint 1 after round 0, writes rounds 1 and 2 (its
    // memtables flush and compact meanwhile) and kills itself without closing anything
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { RocksDBKeyedStateBackend } from './packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
         import { writeRound } from './test/helpers/rocksdb-local-checkpoint.js';
         const b = new RocksDBKeyedStateBackend({ directory: ${JSON.stringify(dbDir)}, maxParallelism: 128,
           blockCacheSize: 1 << 20, writeBufferSize: 1 << 20, maxBufferedEntries: 5000,
           localCheckpoints: ${JSON.stringify(root)} });
         await b.open();
         writeRound(b, 0);
         const why = b.keepLocalCheckpoint(1);
         if (why) throw new Error(why);
         writeRound(b, 1);
         b.flush();
         writeRound(b, 2);
         b.flush();
         process.kill(process.pid, 'SIGKILL');`,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    // the files it linked went on changing in the dead database: its logs grew past the record
    const { files } = record(root, 1);
    assert.ok(
      files.some(([n]) => n.endsWith('.sst')),
      `table files in the copy: ${JSON.stringify(files)}`,
    );
    const b = await withCopies(root);
    const t0 = performance.now();
    const restored = await b.restoreLocalCheckpoint(1);
    const ms = performance.now() - t0;
    assert.equal(typeof restored, 'object', String(restored));
    assertRounds(b, 0);
    assert.equal(b.numKeys(), KEYS);
    assert.ok(ms < 5_000, `restored in ${ms.toFixed(0)} ms`);
  });

  test('the copy outlives the database restored from it: a second restore after the first wrote on and compacted gives the checkpoint again', async () => {
    const root = tempDir('weir-local-chk-');
    const a = await withCopies(root);
    writeRound(a, 0);
    writeRound(a, 1);
    assert.equal(a.keepLocalCheckpoint(7), undefined);
    writeRound(a, 2);
    a.flush();
    const b = await restoredFrom(root, 7, 1);
    // the restored database goes on: writes, flushes and compactions of its own
    writeRound(b, 2);
    writeRound(b, 3);
    b.flush();
    assertRounds(b, 3);
    await restoredFrom(root, 7, 1);
    // and a local checkpoint of a restored database restores too
    assert.equal(b.keepLocalCheckpoint(8), undefined);
    await restoredFrom(root, 8, 3);
  });

  test("a completed checkpoint's copy is recovered off the record path (its logs replayed once): the restore opens that form, and the copy as taken when that form is damaged", async () => {
    const root = tempDir('weir-local-chk-');
    const a = await withCopies(root);
    writeRound(a, 0);
    writeRound(a, 1);
    assert.equal(a.keepLocalCheckpoint(3), undefined);
    writeRound(a, 2);
    a.notifyCheckpointComplete(3);
    const recovered = await recoveredForm(root, 3);
    // it has no logs to replay: the copy's own logs can go and the restore still finds every row
    for (const [n] of record(root, 3).files.filter(([n]) => n.endsWith('.log')))
      rmSync(path.join(copyDir(root, 3), n));
    await restoredFrom(root, 3, 1, true);
    // the recovered form damaged (a table file gone): the copy as taken, whose logs are gone
    // too here, so nothing is left to use and the reason is the copy's
    dropTableFile(recovered);
    const c = await withCopies(root);
    assert.match(String(await c.restoreLocalCheckpoint(3)), /opened at sequence number|cannot be opened/);
    assert.equal(c.numKeys(), 0);
    // with the copy intact, a damaged recovered form falls back to it
    assert.equal(a.keepLocalCheckpoint(5), undefined);
    a.notifyCheckpointComplete(5);
    const recovered5 = await recoveredForm(root, 5);
    dropTableFile(recovered5);
    await restoredFrom(root, 5, 2, false);
  });

  test('RocksDB installing flushes or compactions while the files are linked: later rounds link what is new, and a copy comes as soon as one round sees nothing installed', async () => {
    const a = await withCopies(tempDir('weir-local-chk-'));
    writeRound(a, 0);
    a.flush();
    const meta = { checkpointId: 1, maxParallelism: 128, sequence: '1', states: [] };
    // a new answer on each of the first 8 questions (4 rounds): more than the 3 full rounds
    // the copy used to get; the 5th round sees none
    let asked = 0;
    const settling = (): string => String(asked++ < 8 ? asked : 'settled');
    const target = path.join(tempDir('weir-local-chk-'), 'chk-1');
    const record = takeLocalCheckpoint(a.directory, target, meta, settling);
    assert.ok(record.files.some(([n]) => n.startsWith('MANIFEST-')));
    assert.deepEqual(
      readdirSync(target)
        .filter((n) => n !== 'weir-local-checkpoint.json')
        .sort(),
      record.files.map(([n]) => n).sort(),
    );
    // never settling: given up with the reason, and nothing left behind
    let n = 0;
    const other = path.join(tempDir('weir-local-chk-'), 'chk-2');
    assert.throws(
      () => takeLocalCheckpoint(a.directory, other, meta, () => String(n++)),
      /installed a flush or compaction during each of 20 rounds/,
    );
    assert.equal(existsSync(other), false);
  });

  test("a round takes the MANIFEST's size before any table file's: a flush finishing in between cannot leave a recorded MANIFEST naming a table file recorded short", async () => {
    const a = await withCopies(tempDir('weir-local-chk-'));
    writeRound(a, 0);
    a.flush();
    // the sizes a round takes, in order (fs's named exports follow the patched function)
    const real = fs.statSync;
    const sized: string[] = [];
    const target = path.join(tempDir('weir-local-chk-'), 'chk-1');
    const writable = fs as { statSync: typeof fs.statSync };
    writable.statSync = ((p: string, o?: object) => {
      if (typeof p === 'string' && p.startsWith(target)) sized.push(path.basename(p));
      return real(p, o);
    }) as typeof fs.statSync;
    syncBuiltinESMExports();
    try {
      const meta = { checkpointId: 1, maxParallelism: 128, sequence: '1', states: [] };
      takeLocalCheckpoint(a.directory, target, meta, () => 'settled');
    } finally {
      writable.statSync = real;
      syncBuiltinESMExports();
    }
    const manifest = sized.findIndex((n) => n.startsWith('MANIFEST-'));
    const firstTable = sized.findIndex((n) => n.endsWith('.sst'));
    assert.ok(manifest >= 0 && firstTable >= 0, `sized: ${sized.join(', ')}`);
    assert.ok(manifest < firstTable, `MANIFEST sized first: ${sized.join(', ')}`);
  });

  test('a missing, corrupt or foreign copy is not used: the reason is given and the database stays empty and usable', async () => {
    const root = tempDir('weir-local-chk-');
    const a = await withCopies(root);
    writeRound(a, 0);
    for (const id of [1, 2, 3, 4, 5]) assert.equal(a.keepLocalCheckpoint(id), undefined);
    writeRound(a, 1);
    a.flush();

    // none kept for that checkpoint: nothing to say, the files are read
    const none = await withCopies(root);
    assert.equal(await none.restoreLocalCheckpoint(99), undefined);
    // a table file missing from the copy: RocksDB refuses to open it
    dropTableFile(copyDir(root, 1));
    // a write-ahead log cut short (a file of its own: the copies link the same log)
    const log = record(root, 2).files.find(([n, size]) => n.endsWith('.log') && size > 0);
    assert.ok(log, 'a write-ahead log with rows in the copy');
    const logFile = path.join(copyDir(root, 2), log[0]);
    const half = readFileSync(logFile).subarray(0, Math.floor(log[1] / 2));
    rmSync(logFile);
    writeFileSync(logFile, half);
    // the record names a later sequence number than the files hold
    const r3 = path.join(copyDir(root, 3), 'weir-local-checkpoint.json');
    const m3 = JSON.parse(readFileSync(r3, 'utf8')) as { sequence: string };
    writeFileSync(r3, JSON.stringify({ ...m3, sequence: String(Number(m3.sequence) + 1) }));
    // a torn record
    writeFileSync(path.join(copyDir(root, 4), 'weir-local-checkpoint.json'), '{"checkpointId": 4, "seq');
    const cases: Array<[number, RegExp]> = [
      [1, /cannot be opened/],
      [2, /cannot be opened.*shorter than|opened at sequence number/],
      [3, /opened at sequence number \d+, not \d+/],
      [4, /record .* is corrupt/],
    ];
    for (const [id, why] of cases) {
      const b = await withCopies(root);
      const r = await b.restoreLocalCheckpoint(id);
      assert.equal(typeof r, 'string', `checkpoint ${id}: ${JSON.stringify(r)}`);
      assert.match(r as string, why);
      assert.equal(b.numKeys(), 0, `checkpoint ${id}: nothing of the copy stayed`);
      // the files would be read next: the database takes them
      writeRound(b, 0);
      assertRounds(b, 0);
    }
    // another layout (max parallelism) never takes it
    const other = await backends.rocks({ localCheckpoints: root, maxParallelism: 256 });
    assert.match(String(await other.restoreLocalCheckpoint(5)), /max parallelism 128, not 5 at 256/);
  });

  test('a completed checkpoint drops the older copies, an aborted one its own; savepoints are not kept (the coordinator asks only for checkpoints)', async () => {
    const root = tempDir('weir-local-chk-');
    const a = await withCopies(root);
    writeRound(a, 0);
    for (const id of [1, 2, 3]) assert.equal(a.keepLocalCheckpoint(id), undefined);
    a.notifyCheckpointComplete(2);
    assert.deepEqual(readdirSync(root).sort(), ['chk-2', 'chk-3']);
    a.notifyCheckpointAborted(3);
    assert.deepEqual(readdirSync(root), ['chk-2']);
    // a completion without a copy of its own (a savepoint's) keeps the last one
    a.notifyCheckpointComplete(4);
    assert.ok(existsSync(copyDir(root, 2)));
    // a local directory that cannot be written: the reason, and the checkpoint goes on
    const blocked = path.join(tempDir('weir-local-chk-'), 'a-file');
    writeFileSync(blocked, '');
    const b = await withCopies(blocked);
    writeRound(b, 0);
    assert.match(
      String(b.keepLocalCheckpoint(1)),
      /cannot keep a local RocksDB checkpoint of checkpoint 1 in .*a-file/,
    );
    // the backend without local recovery keeps nothing
    const plain = await backends.rocks({});
    assert.equal(plain.keepLocalCheckpoint(1), undefined);
    assert.equal(await plain.restoreLocalCheckpoint(1), undefined);
  });
});
