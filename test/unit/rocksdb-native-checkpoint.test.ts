import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  KeyGroupRange,
  assignToKeyGroup,
  createCheckpointStorage,
  writeLocalFile,
  type CheckpointStorage,
  type RocksDBFileHandle,
  type RocksDBNativeKeyedHandle,
} from '../../packages/core/src/index.js';
import { ValueStateDescriptor } from '../../packages/api/src/index.js';
import type { RocksDBKeyedStateBackend } from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { restoreFullBatch } from '../../packages/taskmanager/src/state/incremental-snapshot.js';
import {
  MAX_LOG_PARTS,
  downloadNativeCheckpoint,
  liveTableFiles,
  tablesStillIn,
  uploadedFilesOf,
  uploadNativeCheckpoint,
} from '../../packages/taskmanager/src/state/rocksdb/native-checkpoint.js';
import { tempDir } from '../helpers/cli.js';
import { MAX_P, TestBackends } from '../helpers/state-backends.js';
import { KEYS, assertRounds, writeRound } from '../helpers/rocksdb-local-checkpoint.js';

const backends = new TestBackends();
after(() => backends.dispose());

/** A backend taking native checkpoints of key groups first..last, memtables small enough to flush often. */
const native = (first = 0, last = MAX_P - 1): Promise<RocksDBKeyedStateBackend> =>
  backends.rocks({ nativeCheckpoints: [first, last], maxBufferedEntries: 5_000 });

/** Checkpoint storage in a directory of its own: where the uploaded files go, as a task's do. */
function storage(): CheckpointStorage {
  return createCheckpointStorage(pathToFileURL(tempDir('weir-native-chk-')).href);
}

/** Takes native checkpoint `id` of `b` into `s` and returns its handle (files named as a task names them). */
async function checkpoint(
  b: RocksDBKeyedStateBackend,
  s: CheckpointStorage,
  id: number,
): Promise<RocksDBNativeKeyedHandle> {
  const materialize = b.snapshotNative(id, MAX_P);
  assert.ok(materialize, 'a backend with native checkpoints takes them');
  // a name of its own per backend and checkpoint, as a task's stem makes it
  const stem = `shared/${id}-${b.directory.slice(-8)}`;
  return materialize((name, file, size) => writeLocalFile(s, `${stem}-${name}`, file, size));
}

const read =
  (s: CheckpointStorage) =>
  (f: RocksDBFileHandle): Promise<Buffer> =>
    s.read(f.path, f.sha256);

/** A file of checkpoint 1 in a synthetic handle. */
const shared = (name: string, size: number): RocksDBFileHandle => ({
  name,
  path: `shared/1-${name}`,
  size,
  sha256: '',
  checkpointId: 1,
});

/** A synthetic handle of all key groups with these files. */
const handleOf = (files: RocksDBFileHandle[]): RocksDBNativeKeyedHandle => ({
  format: 'rocksdb-native',
  states: [['count', 'value']],
  keyGroups: [0, MAX_P - 1],
  sequence: '1',
  files,
  checkpointedSize: 0,
  fullSize: 0,
});

/**
 * A table file of a later checkpoint against an earlier one's of the same name: referenced as
 * the earlier one wrote it, or (when that one was a flush's output still being written, at the
 * size it had) written anew; a file of the same name and size has the same bytes either way.
 */
function sameFile(t: RocksDBFileHandle, earlier: RocksDBNativeKeyedHandle): void {
  const before = earlier.files.find((f) => f.name === t.name);
  if (!before) return;
  if (t.checkpointId === before.checkpointId) assert.deepEqual(t, before, `${t.name} referenced`);
  else if (t.size === before.size) assert.equal(t.sha256, before.sha256, `${t.name}: the same bytes`);
}

describe('native RocksDB checkpoints (the database files uploaded)', () => {
  test('restored at the same key groups: the database opens as it was at the checkpoint, and the next checkpoint uploads only new table files', async () => {
    const s = storage();
    const a = await native();
    writeRound(a, 0);
    writeRound(a, 1);
    const h1 = await checkpoint(a, s, 1);
    assert.equal(h1.format, 'rocksdb-native');
    assert.ok(
      h1.files.some((f) => f.name.endsWith('.sst')),
      `table files: ${h1.files.map((f) => f.name).join(', ')}`,
    );
    assert.equal(h1.checkpointedSize, h1.fullSize, 'the first checkpoint uploads everything');
    a.notifyCheckpointComplete(1);
    // nothing written since: the next checkpoint references the completed one's table files it
    // still has (a background compaction may have replaced some meanwhile) instead of uploading
    const again = await checkpoint(a, s, 2);
    for (const t of again.files.filter((f) => f.name.endsWith('.sst'))) sameFile(t, h1);
    // written after the checkpoints' synchronous parts: not in them
    writeRound(a, 2);
    const b = await native();
    await b.restoreNative([h1], new KeyGroupRange(0, MAX_P - 1), read(s), true);
    assertRounds(b, 1);
    // the restored database's table files are the checkpoint's: a checkpoint after the restore
    // references those it still has (opening may compact some away) instead of uploading them
    const h2 = await checkpoint(b, s, 2);
    for (const t of h2.files.filter((f) => f.name.endsWith('.sst'))) sameFile(t, h1);
    const h3 = await checkpoint(a, s, 3);
    const c = await native();
    await c.restoreNative([h3], new KeyGroupRange(0, MAX_P - 1), read(s), false);
    assertRounds(c, 2);
  });

  test('rescaled: each new subtask copies the rows of its key groups out of the old databases, state ids mapped', async () => {
    const s = storage();
    const half = MAX_P / 2 - 1;
    // two old subtasks (key groups 0..63 and 64..127) that hold different rounds, so a row
    // copied from the wrong one shows
    const lo = await native(0, half);
    writeRound(lo, 0);
    writeRound(lo, 1);
    const hi = await native(half + 1, MAX_P - 1);
    writeRound(hi, 0);
    writeRound(hi, 1);
    writeRound(hi, 2);
    const handles = [await checkpoint(lo, s, 1), await checkpoint(hi, s, 1)];
    const count = new ValueStateDescriptor<[number, number]>('count');
    const check = (b: RocksDBKeyedStateBackend, range: KeyGroupRange): void => {
      const c = b.getState(count);
      let inRange = 0;
      for (let k = 0; k < KEYS; k++) {
        b.setCurrentKey(k);
        const kg = assignToKeyGroup(k, MAX_P);
        const last = kg <= half ? 1 : 2;
        const expected = !range.contains(kg) ? undefined : k % 5 === 0 ? undefined : [k + last, last];
        assert.deepEqual(c.value(), expected, `key ${k} (key group ${kg})`);
        if (range.contains(kg)) inRange++;
      }
      assert.ok(inRange > 0);
    };
    // one subtask of all key groups, which registered a state of its own first: ids differ
    const all = await native();
    const other = new ValueStateDescriptor<number>('registered-first');
    all.setCurrentKey(1);
    all.getState(other).update(7);
    await all.restoreNative(handles, new KeyGroupRange(0, MAX_P - 1), read(s), true);
    check(all, new KeyGroupRange(0, MAX_P - 1));
    all.setCurrentKey(1);
    assert.equal(all.getState(other).value(), 7);
    // a subtask over the middle: half of each old one
    const middle = await native(32, 95);
    await middle.restoreNative(handles, new KeyGroupRange(32, 95), read(s), true);
    check(middle, new KeyGroupRange(32, 95));
  });

  test('a checkpoint whose files are incomplete or damaged fails the restore, naming why', async () => {
    const s = storage();
    const a = await native();
    writeRound(a, 0);
    // the second checkpoint's MANIFEST names the table file of the first one's flush (the
    // first's may have been recorded before the flush's edit, the rows then in its logs)
    await checkpoint(a, s, 1);
    const h = await checkpoint(a, s, 2);
    const range = new KeyGroupRange(0, MAX_P - 1);
    // a table file left out: RocksDB refuses to open what its MANIFEST names
    const withoutTable = {
      ...h,
      files: h.files.filter((f) => f !== h.files.find((x) => x.name.endsWith('.sst'))),
    };
    const b = await native();
    await assert.rejects(b.restoreNative([withoutTable], range, read(s), true));
    // a write-ahead log left out: the database opens short of the checkpoint's sequence number
    const withoutLogs = { ...h, files: h.files.filter((f) => !f.name.endsWith('.log')) };
    if (withoutLogs.files.length < h.files.length) {
      const c = await native();
      await assert.rejects(
        c.restoreNative([withoutLogs], range, read(s), true),
        /sequence number|cannot|Corruption|No such/i,
      );
    }
    // a file whose bytes changed: its checksum does not match
    const tampered = { ...h, files: h.files.map((f, i) => (i === 0 ? { ...f, sha256: '0'.repeat(64) } : f)) };
    const d = await native();
    await assert.rejects(d.restoreNative([tampered], range, read(s), true), /checksum|sha|corrupt/i);
  });

  test('an upload that fails rejects the checkpoint only once the uploads under way have finished, so what they wrote can be removed', async () => {
    const a = await native();
    writeRound(a, 0);
    writeRound(a, 1);
    const materialize = a.snapshotNative(1, MAX_P)!;
    let running = 0;
    let started = 0;
    const failure = materialize(async (name) => {
      running++;
      const n = ++started;
      try {
        await new Promise((r) => setTimeout(r, 20));
        if (n === 2) throw new Error('storage refused the write');
        await new Promise((r) => setTimeout(r, 100));
        return { path: name, size: 0, sha256: '' };
      } finally {
        running--;
      }
    });
    await assert.rejects(failure, /storage refused the write/);
    assert.equal(running, 0, 'no upload still writing when the checkpoint failed');
    assert.ok(started >= 2, `uploads started: ${started}`);
  });

  test('a restore downloads within a byte budget (one larger file alone), and a failed download removes the directory once the others finished', async () => {
    const h = (sizes: number[]): RocksDBNativeKeyedHandle =>
      handleOf(sizes.map((n, i) => shared(`f${i}`, n)));
    let inFlight = 0;
    let most = 0;
    let running = 0;
    const read =
      (fail?: string) =>
      async (f: RocksDBFileHandle): Promise<Buffer> => {
        running++;
        inFlight += f.size;
        most = Math.max(most, f.size > 130 ? 0 : inFlight);
        try {
          await new Promise((r) => setTimeout(r, f.name === fail ? 5 : 30));
          if (f.name === fail) throw new Error(`cannot read ${f.name}`);
          return Buffer.alloc(f.size);
        } finally {
          running--;
          inFlight -= f.size;
        }
      };
    const dir = path.join(tempDir('weir-native-dl-'), 'db');
    const bytes = await downloadNativeCheckpoint(h([60, 60, 60, 200, 10, 60]), dir, read(), 4, 130);
    assert.equal(bytes, 450);
    assert.equal(readdirSync(dir).length, 6);
    assert.ok(most > 0 && most <= 130, `at most 130 bytes at a time besides the large file alone (${most})`);
    const failing = path.join(tempDir('weir-native-dl-'), 'db');
    await assert.rejects(
      downloadNativeCheckpoint(h([60, 60, 10, 10]), failing, read('f1'), 4, 1000),
      /cannot read f1/,
    );
    assert.equal(running, 0, 'no download still running when the restore failed');
    assert.equal(existsSync(failing), false, 'the directory is removed');
  });

  test('an upload references the table files the previous checkpoint uploaded under the same name and size, and writes every other file', async () => {
    const staged = tempDir('weir-native-staged-');
    const sizes: Record<string, number> = {
      '000007.sst': 40,
      '000009.sst': 30,
      '000008.log': 20,
      'MANIFEST-000005': 10,
    };
    for (const [name, size] of Object.entries(sizes))
      writeFileSync(path.join(staged, name), Buffer.alloc(size, 1));
    const kept = { name: '000007.sst', path: 'shared/1-000007.sst', size: 40, sha256: 'a', checkpointId: 1 };
    const resized = {
      name: '000009.sst',
      path: 'shared/1-000009.sst',
      size: 29,
      sha256: 'b',
      checkpointId: 1,
    };
    const written: string[] = [];
    const h = await uploadNativeCheckpoint({
      staged,
      meta: {
        checkpointId: 2,
        maxParallelism: MAX_P,
        sequence: '5',
        states: [['count', 'value']],
        // the log is uploaded up to its recorded size only
        files: [
          ['000007.sst', 40],
          ['000008.log', 15],
          ['000009.sst', 30],
          ['MANIFEST-000005', 10],
        ],
      },
      checkpointId: 2,
      keyGroups: [0, MAX_P - 1],
      previous: new Map([kept, resized].map((f) => [f.name, [f]])),
      write: async (name, file, size) => {
        assert.equal(file, path.join(staged, name));
        written.push(name);
        return { path: `shared/2-${name}`, size, sha256: name };
      },
      isClosed: () => false,
    });
    assert.deepEqual(written.sort(), ['000008.log', '000009.sst', 'MANIFEST-000005']);
    assert.deepEqual(h.files[0], kept);
    assert.deepEqual(
      h.files.map((f) => [f.name, f.size, f.checkpointId]),
      [
        ['000007.sst', 40, 1],
        ['000008.log', 15, 2],
        ['000009.sst', 30, 2],
        ['MANIFEST-000005', 10, 2],
      ],
    );
    assert.equal(h.checkpointedSize, 55);
    assert.equal(h.fullSize, 95);
  });

  test('a log the previous checkpoint uploaded is referenced in its parts and only its tail is written; a log that shrank or an unknown one is written whole', async () => {
    const staged = tempDir('weir-native-staged-');
    const content: Record<string, Buffer> = {
      '000010.log': Buffer.from(Array.from({ length: 100 }, (_, i) => i)),
      '000011.log': Buffer.alloc(30, 2),
      '000012.log': Buffer.alloc(25, 3),
      '000013.log': Buffer.alloc(40, 4),
      '000014.log': Buffer.alloc(MAX_LOG_PARTS + 4, 5),
    };
    for (const [name, data] of Object.entries(content)) writeFileSync(path.join(staged, name), data);
    const part = (name: string, size: number, id: number, n = 0) => ({
      name,
      path: `shared/${id}-${name}-${n}`,
      size,
      sha256: `${name}-${n}`,
      checkpointId: id,
    });
    // 000010.log: two parts so far (60 + 20 bytes), now 90; 000011.log: as long as before;
    // 000012.log: 30 bytes before, 25 now (not a continuation)
    const previous = new Map([
      ['000010.log', [part('000010.log', 60, 1), part('000010.log', 20, 2, 1)]],
      ['000011.log', [part('000011.log', 30, 2)]],
      ['000012.log', [part('000012.log', 30, 2)]],
      // as many parts as a log may have: written whole again
      ['000014.log', Array.from({ length: MAX_LOG_PARTS }, (_, n) => part('000014.log', 1, 2, n))],
    ]);
    const written = new Map<string, Buffer>();
    const h = await uploadNativeCheckpoint({
      staged,
      meta: {
        checkpointId: 3,
        maxParallelism: MAX_P,
        sequence: '9',
        states: [['count', 'value']],
        files: [
          ['000010.log', 90],
          ['000011.log', 30],
          ['000012.log', 25],
          ['000013.log', 40],
          ['000014.log', MAX_LOG_PARTS + 4],
        ],
      },
      checkpointId: 3,
      keyGroups: [0, MAX_P - 1],
      previous,
      write: async (name, file, size) => {
        const bytes = readFileSync(file);
        assert.equal(bytes.length, size, `${file}: a file of exactly the bytes to write`);
        written.set(name, bytes);
        return { path: `shared/3-${name}`, size, sha256: name };
      },
      isClosed: () => false,
    });
    // the tail of 000010.log: bytes 80..89
    assert.deepEqual(written.get('000010.log'), content['000010.log']!.subarray(80, 90));
    assert.deepEqual(
      [...written.keys()].sort(),
      ['000010.log', '000012.log', '000013.log', '000014.log'],
      'the unchanged log is not written again',
    );
    assert.deepEqual(
      h.files.map((f) => [f.name, f.size, f.checkpointId]),
      [
        ['000010.log', 60, 1],
        ['000010.log', 20, 2],
        ['000010.log', 10, 3],
        ['000011.log', 30, 2],
        ['000012.log', 25, 3],
        ['000013.log', 40, 3],
        ['000014.log', MAX_LOG_PARTS + 4, 3],
      ],
    );
    assert.equal(h.checkpointedSize, 10 + 25 + 40 + MAX_LOG_PARTS + 4);
    assert.equal(h.fullSize, 90 + 30 + 25 + 40 + MAX_LOG_PARTS + 4);
    // the restore joins the parts in order, whatever order they arrive in
    const stored = new Map<string, Buffer>([
      ['shared/1-000010.log-0', content['000010.log']!.subarray(0, 60)],
      ['shared/2-000010.log-1', content['000010.log']!.subarray(60, 80)],
      ['shared/3-000010.log', content['000010.log']!.subarray(80, 90)],
      ['shared/2-000011.log-0', content['000011.log']!],
      ['shared/3-000012.log', content['000012.log']!],
      ['shared/3-000013.log', content['000013.log']!],
      ['shared/3-000014.log', content['000014.log']!],
    ]);
    const dbDir = path.join(tempDir('weir-native-restore-'), 'db');
    let delay = 30;
    await downloadNativeCheckpoint(h, dbDir, async (f) => {
      // the first part of a log arrives last
      await new Promise((r) => setTimeout(r, (delay = Math.max(0, delay - 10))));
      return stored.get(f.path)!;
    });
    for (const [name, data] of Object.entries(content))
      assert.deepEqual(
        readFileSync(path.join(dbDir, name)),
        data.subarray(
          0,
          h.files.filter((f) => f.name === name).reduce((n, f) => n + f.size, 0),
        ),
        name,
      );
  });

  test('a database checkpointed twice while its log grows: the second checkpoint uploads only the tail of the log, and restores to exactly its state', async () => {
    const s = storage();
    const a = await native();
    const count = new ValueStateDescriptor<number>('n');
    // few writes, so the log outlives both checkpoints (no memtable flush in between)
    const round = (r: number): void => {
      const c = a.getState(count);
      for (let k = 0; k < 300; k++) {
        a.setCurrentKey(k);
        c.update(k * 10 + r);
      }
    };
    round(1);
    const h1 = await checkpoint(a, s, 1);
    a.notifyCheckpointComplete(1);
    round(2);
    const h2 = await checkpoint(a, s, 2);
    const logs1 = h1.files.filter((f) => f.name.endsWith('.log'));
    const continued = logs1.find((l) => h2.files.filter((f) => f.name === l.name).length === 2);
    assert.ok(
      continued,
      `a log of checkpoint 1 in two parts in checkpoint 2: ${h2.files.map((f) => `${f.name}@${f.checkpointId}:${f.size}`).join(', ')}`,
    );
    const [first, tail] = h2.files.filter((f) => f.name === continued.name);
    assert.deepEqual(first, continued, 'the part checkpoint 1 uploaded is referenced');
    assert.equal(tail!.checkpointId, 2);
    const logs2 = h2.files.filter((f) => f.name.endsWith('.log'));
    const logBytes = logs2.reduce((n, f) => n + f.size, 0);
    const uploaded = logs2.filter((f) => f.checkpointId === 2).reduce((n, f) => n + f.size, 0);
    assert.ok(
      uploaded <= logBytes - continued.size,
      `checkpoint 2 uploaded ${uploaded} bytes of logs, at most their ${logBytes} less the ${continued.size} referenced`,
    );
    round(3); // after both: in neither
    for (const [h, r] of [
      [h2, 2],
      [h1, 1],
    ] as const) {
      const b = await native();
      await b.restoreNative([h], new KeyGroupRange(0, MAX_P - 1), read(s), true);
      const c = b.getState(count);
      for (let k = 0; k < 300; k++) {
        b.setCurrentKey(k);
        assert.equal(c.value(), k * 10 + r, `checkpoint ${h === h2 ? 2 : 1}, key ${k}`);
      }
    }
  });

  test('a backend without native checkpoints takes none', async () => {
    const plain = await backends.rocks();
    assert.equal(plain.snapshotNative(1, MAX_P), undefined);
  });

  test('restored from a local copy (local recovery): the next checkpoint references the table files of the restored checkpoint that the database still has, instead of uploading the database again', async () => {
    const s = storage();
    const root = tempDir('weir-native-local-');
    const withCopies = (): Promise<RocksDBKeyedStateBackend> =>
      backends.rocks({
        nativeCheckpoints: [0, MAX_P - 1],
        localCheckpoints: root,
        maxBufferedEntries: 5_000,
      });
    const a = await withCopies();
    // enough distinct keys for table files below the first level, which the compactions a
    // restored database starts at once do not rewrite
    const bulk = a.getState(new ValueStateDescriptor<string>('bulk'));
    for (let k = 0; k < 200_000; k++) {
      a.setCurrentKey(k);
      bulk.update(`value ${k}`);
    }
    writeRound(a, 0);
    writeRound(a, 1);
    // as the task's synchronous part does it: the native checkpoint's files, then the local copy
    const h1 = await checkpoint(a, s, 1);
    assert.equal(a.keepLocalCheckpoint(1), undefined);
    a.notifyCheckpointComplete(1);
    writeRound(a, 2); // after the checkpoint: not in it
    const tables = (h: RocksDBNativeKeyedHandle): RocksDBFileHandle[] =>
      h.files.filter((f) => f.name.endsWith('.sst'));

    // a restart on the same TaskManager: the copy is opened, and the checkpoint's handle given.
    // Which of checkpoint 1's table files the database still has depends on the compactions
    // its opening started; each one it has is the same file, so it is referenced, and every
    // other table file is one the restored database wrote
    const b = await withCopies();
    const r = await b.restoreLocalCheckpoint(1, [h1]);
    assert.equal(typeof r, 'object', String(r));
    assertRounds(b, 1);
    // RocksDB's list of the current version's table files, as the backend reads it
    const db = (b as unknown as { db: { getProperty(p: string): string } }).db;
    const live = liveTableFiles(db.getProperty('rocksdb.sstables'));
    assert.ok(live.size > 0, 'the restored database has table files');
    for (const t of live) assert.ok(existsSync(path.join(b.directory, t)), `${t} on disk`);
    // checkpoint 1's table files the restored database has and names: the ones to reference
    // (the deeper levels' files, which the compactions its opening starts do not rewrite)
    const adoptable = new Set(
      tables(h1)
        .filter((f) => live.has(f.name))
        .filter((f) => statSync(path.join(b.directory, f.name), { throwIfNoEntry: false })?.size === f.size)
        .map((f) => f.name),
    );
    const h2 = await checkpoint(b, s, 2);
    for (const t of tables(h2)) {
      sameFile(t, h1);
      // (a file named at the restore can be compacted away by now and still be on disk, linked)
      if (adoptable.has(t.name)) assert.equal(t.checkpointId, 1, `${t.name} referenced, not uploaded again`);
      else assert.ok([1, 2].includes(t.checkpointId), `${t.name}: referenced or written by checkpoint 2`);
    }
    const c = await native();
    await c.restoreNative([h2], new KeyGroupRange(0, MAX_P - 1), read(s), false);
    assertRounds(c, 1);

    // without the handle (as before): the whole database again
    const d = await withCopies();
    assert.equal(typeof (await d.restoreLocalCheckpoint(1)), 'object');
    const h3 = await checkpoint(d, s, 3);
    assert.equal(h3.checkpointedSize, h3.fullSize);
    // a handle of other key groups (another subtask's) is not adopted either
    const e = await withCopies();
    assert.equal(typeof (await e.restoreLocalCheckpoint(1, [{ ...h1, keyGroups: [0, 63] }])), 'object');
    const h4 = await checkpoint(e, s, 4);
    assert.equal(h4.checkpointedSize, h4.fullSize);
  });

  test('only table files a version of the database names are referenced later; after a local restore, only those of the same name and size in the database (a log, another size, a missing or unnamed file is not)', () => {
    const dir = tempDir('weir-native-tables-');
    const h = handleOf([
      shared('000007.sst', 10),
      shared('000008.sst', 5),
      shared('000009.sst', 7),
      shared('000010.log', 4),
      shared('MANIFEST-000005', 3),
    ]);
    writeFileSync(path.join(dir, '000007.sst'), Buffer.alloc(10));
    writeFileSync(path.join(dir, '000008.sst'), Buffer.alloc(6)); // another size: another file
    writeFileSync(path.join(dir, '000009.sst'), Buffer.alloc(7));
    writeFileSync(path.join(dir, '000010.log'), Buffer.alloc(4));
    writeFileSync(path.join(dir, 'MANIFEST-000005'), Buffer.alloc(3));
    // 000009.sst: same name and size, but the database's version does not name it (a flush's
    // output, its number used again after the restore)
    const live = liveTableFiles(
      "--- level 0 --- version# 4 ---\n 7:10['6B30' seq:1, type:1 .. '6B39' seq:9, type:1](0)\n" +
        '--- level 1 --- version# 4 ---\n 8:6[...](0)\n 1234567:1[...](0)\n',
    );
    assert.deepEqual([...live].sort(), ['000007.sst', '000008.sst', '1234567.sst']);
    assert.deepEqual([...tablesStillIn(h, dir, live)], [['000007.sst', [h.files[0]]]]);
    // what later checkpoints may reference of a handle: its logs, and only the table files a version named
    assert.deepEqual([...uploadedFilesOf(h, live).keys()].sort(), ['000007.sst', '000008.sst', '000010.log']);
    assert.deepEqual([...uploadedFilesOf(h).keys()].sort(), [
      '000007.sst',
      '000008.sst',
      '000009.sst',
      '000010.log',
    ]);
  });

  test('the setting changed between runs (native checkpoints became the default): a canonical checkpoint restores into a backend taking native ones, and its native checkpoint into one taking canonical ones', async () => {
    // a run of the old default: a canonical full checkpoint of rounds 0 and 1
    const canonical = await backends.rocks({ maxBufferedEntries: 5_000 });
    writeRound(canonical, 0);
    writeRound(canonical, 1);
    const full = await canonical.snapshot(MAX_P)();
    assert.ok(full, 'the canonical checkpoint holds the state');
    // the next run takes native checkpoints: restored from the canonical batches, one more round
    const upgraded = await native();
    for (const [off, len] of Object.values(full.index))
      restoreFullBatch(upgraded, full.kinds, full.data.subarray(off, off + len));
    assertRounds(upgraded, 1);
    writeRound(upgraded, 2);
    const s = storage();
    const h = await checkpoint(upgraded, s, 7);
    assert.equal(h.format, 'rocksdb-native');
    // written after the native checkpoint: not in it
    writeRound(upgraded, 3);
    // and back: a backend without native checkpoints restores the native one, then takes a
    // canonical checkpoint that holds the same state
    const back = await backends.rocks({ maxBufferedEntries: 5_000 });
    await back.restoreNative([h], new KeyGroupRange(0, MAX_P - 1), read(s), true);
    assertRounds(back, 2);
    assert.equal(back.snapshotNative(8, MAX_P), undefined, 'it takes canonical checkpoints from here');
    const again = await back.snapshot(MAX_P)();
    assert.ok(again);
    const last = await backends.rocks();
    for (const [off, len] of Object.values(again.index))
      restoreFullBatch(last, again.kinds, again.data.subarray(off, off + len));
    assertRounds(last, 2);
  });
});
