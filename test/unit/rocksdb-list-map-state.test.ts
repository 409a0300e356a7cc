import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ListStateDescriptor, MapStateDescriptor } from '../../packages/api/src/index.js';
import { decodeRecords, FileCheckpointStorage, fileStorageUri } from '../../packages/core/src/index.js';
import { HeapKeyedStateBackend } from '../../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import { restoreIncrementalState } from '../../packages/taskmanager/src/state/incremental-snapshot.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import type { RocksDBKeyedStateBackend } from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { tempDir } from '../helpers/cli.js';
import { TestBackends } from '../helpers/state-backends.js';

const MAX_P = 128;
const root = tempDir('weir-listmap-');
const storage = new FileCheckpointStorage(fileStorageUri(path.join(root, 'checkpoints')));
const backends = new TestBackends();
const rocks = (extra: Parameters<TestBackends['rocks']>[0] = {}): Promise<RocksDBKeyedStateBackend> =>
  backends.rocks(extra);

after(async () => {
  await backends.dispose();
});

const items = new ListStateDescriptor<unknown>('items');
const attrs = new MapStateDescriptor<string, unknown>('attrs');

/** Counts RocksDB point reads, iterator chunk reads and the rows they returned, of a backend's database. */
function countIo(b: RocksDBKeyedStateBackend): { gets: number; chunks: number; rows: number } {
  const db = (b as unknown as { db: Record<string, (...a: unknown[]) => unknown> }).db;
  const seen = { gets: 0, chunks: 0, rows: 0 };
  const get = db._getManySync!.bind(db);
  db._getManySync = (...a: unknown[]) => {
    seen.gets++;
    return get(...a);
  };
  const iterator = db.iterator!.bind(db);
  db.iterator = (...a: unknown[]) => {
    const it = iterator(...a) as Record<string, (...x: unknown[]) => unknown>;
    const next = it._nextvSync!.bind(it);
    it._nextvSync = (...x: unknown[]) => {
      seen.chunks++;
      const read = next(...x) as { rows: unknown[] };
      seen.rows += read.rows.length / 2;
      return read;
    };
    return it;
  };
  return seen;
}

/** Every entry of a canonical snapshot, sorted, maps as sorted entry lists. */
async function contents(b: KeyedStateBackend): Promise<string[]> {
  const snap = await b.snapshot(MAX_P)();
  if (!snap) return [];
  const out: string[] = [];
  for (const [off, len] of Object.values(snap.index))
    for (const [name, key, value] of decodeRecords(Buffer.from(snap.data).subarray(off, off + len)) as Array<
      [string, unknown, unknown]
    >) {
      const v =
        name === 'attrs' ? (value as Array<[string, unknown]>).sort((a, b) => (a[0] < b[0] ? -1 : 1)) : value;
      out.push(JSON.stringify([name, key, v]));
    }
  return out.sort();
}

/** A small deterministic random generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('RocksDB list state (appends as merges) and map state (streamed iteration)', () => {
  test('model check: random list and map operations, flushes, snapshots and restores agree with the heap backend', async () => {
    const heap = new HeapKeyedStateBackend();
    const rdb = await rocks({ maxBufferedEntries: 7 });
    const rnd = random(17);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const values = [1, 'two', { three: [3] }, [4, 4], null, 6.5, 'x'.repeat(40)];
    for (let step = 0; step < 4000; step++) {
      const key = Math.floor(rnd() * 12);
      const op = Math.floor(rnd() * 14);
      // the random choices of this step, the same for both backends
      const [mapKey, removeKey, getKey, empty] = [
        pick(['a', 'b', 'c', 'd', 'e']),
        pick(['a', 'b', 'c']),
        pick(['a', 'b', 'z']),
        rnd() < 0.3,
      ];
      const results = [heap, rdb].map((b) => {
        b.setCurrentKey(key);
        const l = b.getListState(items);
        const m = b.getMapState(attrs);
        switch (op) {
          case 0:
          case 1:
          case 2:
            return l.add(values[step % values.length]);
          case 3:
            return l.addAll([step, `s${step}`]);
          case 4:
            return l.update(empty ? [] : [step]);
          case 5:
            return l.clear();
          case 6:
            return [...l.get()];
          case 7:
          case 8:
            return m.put(mapKey, values[step % values.length]);
          case 9:
            return m.remove(removeKey);
          case 10:
            return [[...m.entries()], [...m.keys()], [...m.values()], m.isEmpty(), m.contains('a')];
          case 11:
            return m.clear();
          case 12:
            return m.get(getKey);
          default:
            return b === rdb ? rdb.flush() : undefined;
        }
      });
      // map iteration order is the heap's insertion order but RocksDB's key order: compare as sets
      if (op === 10) {
        const [h, r] = results as Array<[Array<[string, unknown]>, string[], unknown[], boolean, boolean]>;
        assert.deepEqual(new Map(r![0]), new Map(h![0]), `step ${step}`);
        assert.deepEqual(new Set(r![1]), new Set(h![1]), `step ${step}`);
        assert.deepEqual(r![2].length, h![2].length, `step ${step}`);
        assert.deepEqual(r!.slice(3), h!.slice(3), `step ${step}`);
      } else assert.deepEqual(results[1], results[0], `step ${step}, op ${op}, key ${key}`);
    }
    const expected = await contents(heap);
    assert.deepEqual(await contents(rdb), expected);
    // RocksDB's snapshots restore into heap and into RocksDB exactly, canonical and streamed
    const heap2 = new HeapKeyedStateBackend();
    const snap = (await rdb.snapshot(MAX_P)())!;
    for (const [off, len] of Object.values(snap.index))
      heap2.restoreEntries(snap.kinds, decodeRecords(Buffer.from(snap.data).subarray(off, off + len)));
    assert.deepEqual(await contents(heap2), expected);
    const streamed = (await rdb.snapshotStreamed(
      1,
      MAX_P,
    )(async (name, data) => {
      const h = await storage.write(`job/chk-1/op/${name}`, Buffer.concat(data));
      return { ...h, path: `op/${name}` };
    }))!;
    const rdb2 = await rocks();
    await restoreIncrementalState(`${storage.root}/job/chk-1`, [streamed], rdb2, () => true);
    assert.deepEqual(await contents(rdb2), expected);
    // and a restored list is appended to as before
    rdb2.setCurrentKey(3);
    heap2.setCurrentKey(3);
    for (const b of [rdb2, heap2]) b.getListState(items).add('after restore');
    assert.deepEqual([...rdb2.getListState(items).get()], [...heap2.getListState(items).get()]);
  });

  test('incremental checkpoints carry list appends as whole lists in deltas', async () => {
    const b = await rocks({ incremental: true });
    for (let k = 0; k < 3000; k++) {
      b.setCurrentKey(k);
      b.getListState(items).addAll([k, k + 1]);
    }
    const write = (id: number) => async (name: string, data: readonly Uint8Array[]) => {
      const h = await storage.write(`job/shared/${id}-${name}`, Buffer.concat(data));
      return { ...h, path: `../shared/${id}-${name}` };
    };
    await b.snapshotIncremental(1, MAX_P)(write(1));
    b.notifyCheckpointComplete(1);
    b.setCurrentKey(7);
    b.getListState(items).add('appended');
    const h2 = (await b.snapshotIncremental(2, MAX_P)(write(2)))!;
    assert.ok(Object.values(h2.groups).some((chain) => chain.some(([, , , full]) => full === 0)));
    const heap = new HeapKeyedStateBackend();
    await restoreIncrementalState(`${storage.root}/job/chk-2`, [h2], heap, () => true);
    heap.setCurrentKey(7);
    assert.deepEqual([...heap.getListState(items).get()], [7, 8, 'appended']);
    assert.deepEqual(await contents(heap), await contents(b));
  });

  test('add() to a long stored list reads nothing and writes only the new element', async () => {
    const b = await rocks();
    b.setCurrentKey('long');
    const l = b.getListState(items);
    l.update(Array.from({ length: 100_000 }, (_, i) => i));
    b.flush();
    const io = countIo(b);
    const written: number[] = [];
    const db = (b as unknown as { db: { batch(): Record<string, (...a: unknown[]) => unknown> } }).db;
    const batch = db.batch.bind(db);
    db.batch = () => {
      const bt = batch();
      for (const op of ['_put', '_merge'] as const) {
        const real = bt[op]!.bind(bt);
        bt[op] = (k: unknown, v: unknown, o: unknown) => {
          written.push((v as Buffer).length);
          return real(k, v, o);
        };
      }
      return bt;
    };
    for (let i = 0; i < 1000; i++) {
      l.add(i);
      if (i % 100 === 99) b.flush();
    }
    assert.deepEqual(io, { gets: 0, chunks: 0, rows: 0 }, 'no read of the list');
    assert.ok(Math.max(...written) < 1000, `largest write ${Math.max(...written)} bytes, not the list`);
    const all = [...l.get()] as number[];
    assert.equal(all.length, 101_000);
    assert.equal(all[100_000 + 999], 999);
  });

  test('map iteration reads RocksDB in chunks as it is consumed', async () => {
    const b = await rocks();
    b.setCurrentKey('big');
    const m = b.getMapState(attrs);
    for (let i = 0; i < 10_000; i++) m.put(`k${String(i).padStart(5, '0')}`, i);
    b.flush();
    const io = countIo(b);
    const firstFive: string[] = [];
    for (const k of m.keys()) {
      firstFive.push(k);
      if (firstFive.length === 5) break;
    }
    assert.deepEqual(firstFive, ['k00000', 'k00001', 'k00002', 'k00003', 'k00004']);
    // chunks of 4 rows doubling (PrefixReader): 4 + 8 rows for five entries, not the 10,000
    assert.equal(io.chunks, 2, 'two chunks read for five entries');
    assert.equal(io.rows, 12);
    let n = 0;
    for (const [k, v] of m.entries()) if (k === `k${String(v).padStart(5, '0')}`) n++;
    assert.equal(n, 10_000);
    // clear() deletes in chunks too: no write batch holds the whole map
    const deletes: number[] = [];
    const db = (b as unknown as { db: { batch(): Record<string, (...a: unknown[]) => unknown> } }).db;
    const batch = db.batch.bind(db);
    db.batch = () => {
      const bt = batch();
      const real = bt._del!.bind(bt);
      let n = 0;
      deletes.push(0);
      const at = deletes.length - 1;
      bt._del = (...a: unknown[]) => {
        deletes[at] = ++n;
        return real(...a);
      };
      return bt;
    };
    m.clear();
    assert.ok(m.isEmpty());
    assert.equal(
      deletes.reduce((x, y) => x + y, 0),
      10_000,
    );
    assert.ok(Math.max(...deletes) <= 1000, `largest delete batch ${Math.max(...deletes)}`);
  });
});
