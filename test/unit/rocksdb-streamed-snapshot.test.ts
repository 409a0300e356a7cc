import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../../packages/api/src/index.js';
import { decodeRecords, FileCheckpointStorage, fileStorageUri } from '../../packages/core/src/index.js';
import { HeapKeyedStateBackend } from '../../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import {
  restoreFullBatch,
  restoreIncrementalState,
  type IncrementalKeyedHandle,
} from '../../packages/taskmanager/src/state/incremental-snapshot.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import type { RocksDBKeyedStateBackend } from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { tempDir } from '../helpers/cli.js';
import { KEYS_OF_EVERY_FORMAT } from '../helpers/msgpack-values.js';
import { TestBackends } from '../helpers/state-backends.js';

const MAX_P = 128;
const root = tempDir('weir-streamed-');
const storage = new FileCheckpointStorage(fileStorageUri(path.join(root, 'checkpoints')));
const backends = new TestBackends();
const rocks = (extra: Parameters<TestBackends['rocks']>[0] = {}): Promise<RocksDBKeyedStateBackend> =>
  backends.rocks(extra);

after(async () => {
  await backends.dispose();
  rmSync(root, { recursive: true, force: true });
});

const count = new ValueStateDescriptor<number>('count');
const items = new ListStateDescriptor<string>('items');
const attrs = new MapStateDescriptor<string, number>('attrs');

/** A streamed snapshot as a task takes it: files in the checkpoint's own directory, paths relative to it. */
async function streamed(
  b: KeyedStateBackend,
  id: number,
): Promise<{ handle: IncrementalKeyedHandle; files: string[] }> {
  const files: string[] = [];
  const handle = await b.snapshotStreamed!(
    id,
    MAX_P,
  )(async (name, data) => {
    const rel = `job/chk-${id}/op/0-${name}`;
    files.push(path.join(root, 'checkpoints', rel));
    const h = await storage.write(rel, Buffer.concat(data));
    return { ...h, path: `op/0-${name}` };
  });
  return { handle: handle!, files };
}

/** Every entry of the state, decoded from a full canonical snapshot, for comparing two backends. */
async function contents(b: KeyedStateBackend): Promise<Map<string, unknown>> {
  const snap = await b.snapshot(MAX_P)();
  const out = new Map<string, unknown>();
  if (!snap) return out;
  for (const [off, len] of Object.values(snap.index)) {
    for (const [name, key, value] of decodeRecords(snap.data.subarray(off, off + len)) as Array<
      [string, unknown, unknown]
    >) {
      out.set(
        JSON.stringify([name, key]),
        name === 'attrs' ? new Map(value as Array<[unknown, unknown]>) : value,
      );
    }
  }
  return out;
}

function fill(b: KeyedStateBackend, from: number, to: number): void {
  for (let k = from; k < to; k++) {
    b.setCurrentKey(k);
    b.getState(count).update(k);
    b.getListState(items).update([`i${k}`, 'x'.repeat(k % 50)]);
    b.getMapState(attrs).putAll([
      [`a${k}`, k],
      ['b', -k],
    ]);
  }
  // one key whose map alone is many batches
  b.setCurrentKey('big');
  for (let i = 0; i < 3000; i++) b.getMapState(attrs).put(`entry-${i}`, i);
}

const restore = (h: IncrementalKeyedHandle, into: KeyedStateBackend): Promise<void> =>
  restoreIncrementalState(`${storage.root}/job/chk-1`, [h], into, () => true);

describe('streamed full snapshots of RocksDB state', () => {
  test('bounded batches in bounded files; a key group and a single large map span many; restore into RocksDB and heap is exact', async () => {
    const b = await rocks({ maxBatchBytes: 2048, maxSharedFileBytes: 16 * 1024 });
    fill(b, 0, 3000);
    const { handle, files } = await streamed(b, 1);
    assert.equal(handle.format, 'incremental');
    assert.equal(handle.checkpointedSize, handle.fullSize);
    assert.ok(files.length >= 10, `${files.length} files`);
    for (const f of files) assert.ok(statSync(f).size < 16 * 1024 + 4096, `${f}: ${statSync(f).size} bytes`);
    const links = Object.values(handle.groups);
    assert.ok(
      links.every((chain) => chain.every(([, , len, full]) => full === 1 && len < 2048 + 1024)),
      'every link a full batch of about maxBatchBytes',
    );
    assert.ok(
      links.some((chain) => chain.length >= 5),
      'a key group spans several batches',
    );
    assert.ok(
      handle.files.every((f) => !f.path.startsWith('../')),
      "files in the checkpoint's own directory",
    );
    const expected = await contents(b);
    assert.equal((expected.get(JSON.stringify(['attrs', 'big'])) as Map<string, number>).size, 3000);
    for (const into of [await rocks(), new HeapKeyedStateBackend()]) {
      await restore(handle, into);
      assert.deepEqual(await contents(into), expected);
    }
  });

  test('a key group larger than the chunks batches are encoded in (1 MiB) is encoded whole, a map straddling two chunks included', async () => {
    const b = await rocks();
    const big = 'y'.repeat(1000);
    fill(b, 0, 300);
    b.setCurrentKey('huge');
    for (let i = 0; i < 3000; i++) b.getMapState(attrs).put(`h-${i}-${big}`, i);
    b.getState(count).update(7);
    const got = await contents(b);
    const huge = got.get(JSON.stringify(['attrs', 'huge'])) as Map<string, number>;
    assert.equal(huge.size, 3000);
    for (let i = 0; i < 3000; i++) assert.equal(huge.get(`h-${i}-${big}`), i);
    assert.equal(got.get(JSON.stringify(['count', 'huge'])), 7);
    assert.equal(got.get(JSON.stringify(['count', 299])), 299);
    assert.deepEqual(got.get(JSON.stringify(['items', 5])), ['i5', 'xxxxx']);
    // the same through bounded batches, restored into the heap backend
    const { handle } = await streamed(b, 1);
    const into = new HeapKeyedStateBackend();
    await restore(handle, into);
    assert.deepEqual(await contents(into), got);
  });

  test('restore from batch bytes equals restore from decoded entries: keys of every number width and string header, values of every kind, a heap snapshot into RocksDB', async () => {
    const keys = KEYS_OF_EVERY_FORMAT;
    const values: unknown[] = [
      7,
      'text',
      [1, [2, 'three']],
      { a: 1, b: [true, null] },
      new Map<unknown, unknown>([
        [1, 'a'],
        ['b', new Set([2])],
      ]),
      new Set(['s']),
      Buffer.alloc(40, 3),
      new Date(12345),
      2n ** 70n,
      undefined,
      -0,
      'v'.repeat(300),
    ];
    const heap = new HeapKeyedStateBackend();
    const source = await rocks({ maxBatchBytes: 512 });
    const anything = new ValueStateDescriptor<unknown>('anything');
    for (const b of [heap, source])
      keys.forEach((k, i) => {
        b.setCurrentKey(k);
        b.getState(anything).update(values[i % values.length]);
        b.getState(count).update(i);
        b.getListState(items).update([`l${i}`, String(k)]);
        b.getMapState(attrs).putAll([
          [String(k), i],
          ['m'.repeat(40), -i],
        ]);
      });
    const want = await contents(source);
    assert.deepEqual(await contents(heap), want);
    // a RocksDB full snapshot and a heap one, each restored both ways
    const rocksSnap = (await source.snapshot(MAX_P)())!;
    const heapSnap = (await heap.snapshot(MAX_P)())!;
    for (const snap of [rocksSnap, heapSnap]) {
      const viaBytes = await rocks();
      const viaEntries = await rocks();
      for (const [off, len] of Object.values(snap.index)) {
        const bytes = snap.data.subarray(off, off + len);
        restoreFullBatch(viaBytes, snap.kinds, bytes);
        viaEntries.restoreEntries(snap.kinds, decodeRecords(bytes));
      }
      assert.deepEqual(await contents(viaBytes), want);
      assert.deepEqual(await contents(viaEntries), want);
      // lookups find every key (their RocksDB keys are encoded as lookups encode them)
      keys.forEach((k, i) => {
        viaBytes.setCurrentKey(k);
        assert.deepEqual(viaBytes.getState(anything).value(), values[i % values.length], `key ${String(k)}`);
        assert.equal(viaBytes.getMapState(attrs).get(String(k)), i);
        assert.deepEqual([...viaBytes.getListState(items).get()], [`l${i}`, String(k)]);
      });
    }
  });

  test('a corrupt batch fails the restore from bytes with what is wrong', async () => {
    const b = await rocks();
    fill(b, 0, 20);
    const snap = (await b.snapshot(MAX_P)())!;
    const [off, len] = Object.values(snap.index)[0]!;
    const bytes = Buffer.from(snap.data.subarray(off, off + len));
    const into = await rocks();
    assert.throws(
      () => into.restoreEntriesBytes!(snap.kinds, bytes.subarray(0, bytes.length - 1)),
      /Corrupt/,
    );
    assert.throws(
      () => into.restoreEntriesBytes!(snap.kinds, Buffer.concat([bytes, Buffer.from([1])])),
      /1 bytes after its last entry/,
    );
    assert.throws(() => into.restoreEntriesBytes!({}, bytes), /has no kind in the snapshot/);
  });

  test('a corrupt or missing file fails the restore naming the file', async () => {
    const b = await rocks({ maxBatchBytes: 1024, maxSharedFileBytes: 4096 });
    fill(b, 0, 500);
    const { handle, files } = await streamed(b, 1);
    assert.ok(files.length >= 3);
    writeFileSync(files[1]!, Buffer.from('not the bytes that were written'));
    await assert.rejects(
      restore(handle, new HeapKeyedStateBackend()),
      (e: Error) => /Checksum mismatch|truncated/.test(e.message) && e.message.includes('op/0-1'),
    );
    const second = await streamed(b, 2);
    unlinkSync(second.files[2]!);
    await assert.rejects(
      restoreIncrementalState(`${storage.root}/job/chk-2`, [second.handle], await rocks(), () => true),
      (e: Error) => e.message.includes('chk-2/op/0-2'),
    );
  });

  test('a streamed snapshot leaves incremental bookkeeping alone, and is never built on after a restore', async () => {
    const b = await rocks({ incremental: true, maxBatchBytes: 4096 });
    fill(b, 0, 200);
    const { handle } = await streamed(b, 1);
    // restored into an incremental backend of the same job: the next checkpoint must be full
    const into = await rocks({ incremental: true });
    await restore(handle, into);
    into.adoptRestoredChains!(1, [handle], () => true);
    const next = await into.snapshotIncremental!(
      2,
      MAX_P,
    )(async (name, data) => {
      const h = await storage.write(`job/shared/2-${name}`, Buffer.concat(data));
      return { ...h, path: `../shared/2-${name}` };
    });
    assert.ok(next);
    assert.equal(next.checkpointedSize, next.fullSize);
    assert.ok(next.files.every((f) => f.checkpointId === 2));
  });
});
