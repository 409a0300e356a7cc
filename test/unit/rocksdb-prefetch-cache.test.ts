import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ListStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from '../../packages/api/src/index.js';
import { decodeRecords } from '../../packages/core/src/index.js';
// the instance the backend encodes with (it imports @weir/core)
import { valueEncoder } from '@weir/core';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import type { RocksDBKeyedStateBackend } from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import {
  KeyScratch,
  stateKeyPrefix,
  writeStateKey,
} from '../../packages/taskmanager/src/state/rocksdb/key-layout.js';
import { ReadCache, entryBytes } from '../../packages/taskmanager/src/state/rocksdb/read-cache.js';
import type { StateMeta } from '../../packages/taskmanager/src/state/rocksdb/held-values.js';
import {
  databaseMemory,
  managedMemoryPerSlot,
} from '../../packages/taskmanager/src/state/rocksdb/memory-budget.js';
import { MAX_P, TestBackends } from '../helpers/state-backends.js';

const backends = new TestBackends();
after(() => backends.dispose());

const rocks = (bounds: Parameters<TestBackends['open']>[1] = {}): Promise<RocksDBKeyedStateBackend> =>
  backends.open('rocksdb', bounds) as Promise<RocksDBKeyedStateBackend>;

/** Counts the keys the backend asks RocksDB for (point lookups and multi-gets alike). */
function countReads(b: RocksDBKeyedStateBackend): { keys: number; calls: number } {
  // the backend's multi-get of its database (the binding's native function, see NativeBatch)
  const seam = b as unknown as { native(): void; getMany(keys: Buffer[]): unknown[] };
  seam.native();
  const real = seam.getMany;
  const seen = { keys: 0, calls: 0 };
  seam.getMany = (keys) => {
    seen.keys += keys.length;
    seen.calls++;
    return real(keys);
  };
  // and the binding's own (list and map state read through it)
  const db = (b as unknown as { db: { _getManySync(keys: Buffer[], o: object): unknown[] } }).db;
  const dbReal = db._getManySync.bind(db);
  db._getManySync = (keys, o) => {
    seen.keys += keys.length;
    seen.calls++;
    return dbReal(keys, o);
  };
  return seen;
}

/**
 * The backend after a restore (of nothing): its cache no longer vouches for every key RocksDB
 * holds, so cache misses are read from RocksDB (prefetched). A fresh backend's cache is complete
 * and reads nothing (see ReadCache.complete).
 */
function incomplete<B extends RocksDBKeyedStateBackend>(b: B): B {
  b.restoreEntries({}, []);
  assert.equal((b as unknown as { cache: ReadCache }).cache.complete, false);
  return b;
}

/** Every entry of a backend's canonical snapshot, sorted. */
async function entries(b: KeyedStateBackend): Promise<unknown[]> {
  const snap = await b.snapshot(MAX_P)();
  if (!snap) return [];
  const out: unknown[] = [];
  for (const [off, len] of Object.values(snap.index))
    out.push(...decodeRecords(Buffer.from(snap.data).subarray(off, off + len)));
  return out.map((e) => JSON.stringify(e)).sort();
}

describe('RocksDB read cache (CLOCK, bounded in bytes)', () => {
  test('stays within its byte bound, and keys read since the hand passed survive a scan of one-time keys', () => {
    const c = new ReadCache(entryBytes(0, 1) * 100);
    const m = c.newMap();
    for (let k = 0; k < 10; k++) c.put(m, k, k);
    for (let k = 1000; k < 5000; k++) {
      c.put(m, k, k);
      // the hot keys are read all the time
      for (let h = 0; h < 10; h++) assert.equal(c.get(m, h), h, `hot key ${h} evicted at ${k}`);
      assert.ok(c.bytes <= c.maxBytes, `over the bound at ${k}: ${c.bytes} > ${c.maxBytes}`);
    }
    assert.ok(m.size < 100 && m.size > 50, `holds what fits: ${m.size}`);
    // the cold keys went first, oldest first
    assert.equal(c.get(m, 1000), undefined);
    assert.equal(c.get(m, 4999), 4999);
  });

  test('bytes count the value: large values leave room for fewer entries; replacing one recounts it', () => {
    const c = new ReadCache(100_000);
    const m = c.newMap();
    for (let k = 0; k < 1000; k++) c.put(m, `key-${k}`, Buffer.alloc(1000));
    assert.ok(m.size < 100, `${m.size} entries of 1 kB in 100 kB`);
    const before = c.bytes;
    c.put(m, 'key-999', 7);
    assert.equal(c.bytes, before - entryBytes('key-999', Buffer.alloc(1000)) + entryBytes('key-999', 7));
    c.clear();
    assert.equal(c.bytes, 0);
    assert.equal(m.size, 0);
  });

  test('room is made across states: a state being written takes from the others when it holds nothing', () => {
    const c = new ReadCache(entryBytes(0, 1) * 64);
    const a = c.newMap();
    const b = c.newMap();
    for (let k = 0; k < 64; k++) c.put(a, k, k);
    for (let k = 0; k < 64; k++) c.put(b, k, k);
    assert.ok(c.bytes <= c.maxBytes);
    assert.ok(b.size > 0 && a.size < 64);
  });

  test('written entries are the write buffer: never evicted until flushed, kept by clear(), counted apart', () => {
    const one = entryBytes(0, 1);
    const c = new ReadCache(one * 20);
    const m = c.newMap();
    for (let k = 0; k < 8; k++)
      assert.equal(c.write(m, k, k, undefined, k).slot, k, `key ${k} newly written`);
    assert.equal(c.write(m, 3, 33, undefined, 8).slot, 3, 'written again: not one more to flush, same place');
    assert.equal(c.dirtyEntries, 8);
    assert.equal(c.dirtyOverHalf(), false);
    // read entries push the cache over its bound many times: only they go
    for (let k = 100; k < 400; k++) c.put(m, k, k);
    for (let k = 0; k < 8; k++) assert.equal(c.get(m, k), k === 3 ? 33 : k, `written key ${k} kept`);
    assert.ok(c.bytes <= c.maxBytes, `${c.bytes} within ${c.maxBytes}`);
    // a read of RocksDB's older value never replaces a written one
    c.put(m, 5, 'stale');
    assert.equal(c.get(m, 5), 5);
    for (let k = 8; k < 11; k++) c.write(m, k, k, undefined, k);
    assert.equal(c.dirtyOverHalf(), true, '11 written entries of room for 20');
    c.clear();
    assert.deepEqual(
      [...m.keys()].sort((a, b) => Number(a) - Number(b)),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.equal(c.bytes, c.dirtyBytes);
    // flushed: evictable again, as any entry
    for (const e of m.values()) c.markClean(e);
    assert.equal(c.dirtyEntries, 0);
    assert.equal(c.dirtyBytes, 0);
    for (let k = 500; k < 600; k++) c.put(m, k, k);
    assert.equal(c.get(m, 0), undefined, 'evicted once flushed');
    // a write given the entry a read found: in that entry while it is cached, else a new one
    c.put(m, 700, 1);
    const e = c.getEntry(m, 700)!;
    c.write(m, 700, 2, e, 0);
    assert.equal(e.v, 2);
    c.markClean(e);
    for (let k = 800; k < 900; k++) c.put(m, k, k);
    assert.equal(m.has(700), false, 'dropped by the hand');
    const again = c.write(m, 700, 3, e, 1);
    assert.notEqual(again, e);
    assert.equal(again.slot, 1);
    assert.equal(c.get(m, 700), 3, 'the write went to a cached entry, not the dropped one');
  });

  test('a write buffer larger than the cache: written entries past half the cache are flushed, every value stays exact', async () => {
    const b = await rocks({ readCacheBytes: 64 * 1024, maxBufferedEntries: 100_000 });
    const s = b.getState(new ValueStateDescriptor<[number, string]>('v'));
    const reads = countReads(b);
    for (let round = 0; round < 3; round++)
      for (let k = 0; k < 5_000; k++) {
        b.setCurrentKey(k);
        const v = s.value();
        assert.deepEqual(v, round === 0 ? undefined : [round - 1, `k${k}`], `key ${k} round ${round}`);
        s.update([round, `k${k}`]);
      }
    const cache = (b as unknown as { cache: ReadCache }).cache;
    assert.ok(cache.bytes <= cache.maxBytes, `${cache.bytes} within ${cache.maxBytes}`);
    assert.ok(
      cache.dirtyEntries < 5_000,
      `flushed before the buffer bound (${cache.dirtyEntries} unflushed)`,
    );
    assert.ok(reads.keys >= 5_000, 'later rounds read RocksDB: the cache holds a fraction of the keys');
  });

  test('a byte-bounded backend keeps every value correct while evicting', async () => {
    const b = await rocks({ readCacheBytes: 4096, maxBufferedEntries: 7 });
    const s = b.getState(new ValueStateDescriptor<{ n: number }>('v'));
    for (let round = 0; round < 3; round++)
      for (let k = 0; k < 500; k++) {
        b.setCurrentKey(k);
        const v = s.value() ?? { n: 0 };
        assert.equal(v.n, round, `key ${k} round ${round}`);
        v.n++;
        s.update(v);
      }
  });
});

describe('RocksDB prefetch of an input buffer', () => {
  const recordsOf = (keys: number[]): Array<{ k: number }> => keys.map((k) => ({ k }));
  const keyOf = (r: unknown): unknown => (r as { k: number }).k;

  test('reads the missing keys in one multi-get; processing the buffer then reads nothing more', async () => {
    const b = await rocks({ readCacheBytes: 1 << 20 });
    const s = b.getState(new ValueStateDescriptor<number>('count'));
    for (let k = 0; k < 300; k++) {
      b.setCurrentKey(k);
      s.update(k);
    }
    b.flush();
    // a fresh backend's cache would hold them; drop it by restoring elsewhere: use a new backend
    const snap = await b.snapshot(MAX_P)();
    const r = await rocks({ readCacheBytes: 1 << 20 });
    for (const [off, len] of Object.values(snap!.index))
      r.restoreEntries(snap!.kinds, decodeRecords(Buffer.from(snap!.data).subarray(off, off + len)));
    const rs = r.getState(new ValueStateDescriptor<number>('count'));
    const reads = countReads(r);
    const keys = [...Array(400).keys()].map((i) => i % 350); // duplicates, and 50 keys without state
    r.prefetch(recordsOf(keys), keyOf);
    assert.deepEqual(reads, { keys: 350, calls: 1 }, 'each distinct key once, in one call');
    for (const k of keys) {
      r.setCurrentKey(k);
      assert.equal(rs.value(), k < 300 ? k : undefined);
    }
    assert.deepEqual(reads, { keys: 350, calls: 1 }, 'no point lookups while processing');
    // prefetching again what is cached reads nothing
    r.prefetch(recordsOf(keys), keyOf);
    assert.equal(reads.calls, 1);
  });

  test("a record's read takes the entry its prefetch found (no second lookup), and stays exact when entries are dropped or keys are set out of order", async () => {
    // counts per key over buffers with repeated keys: the cache holds about 40 of the 500 keys,
    // so entries are dropped between the prefetch and the reads; some records set a key that is
    // not theirs first (as a timer would) or read twice
    const b = await rocks({ readCacheBytes: 40 * 200, maxBufferedEntries: 64 });
    const s = b.getState(new ValueStateDescriptor<[number, number]>('count-sum'));
    const expected = new Map<number, number>();
    let seed = 7;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 500;
    for (let round = 0; round < 40; round++) {
      const keys = Array.from({ length: 100 }, next);
      b.prefetch(recordsOf(keys), keyOf);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (i % 17 === 5) {
          b.setCurrentKey((k + 1) % 500);
          s.value();
        }
        b.setCurrentKey(k);
        const got = s.value();
        if (i % 13 === 0) assert.deepEqual(s.value(), got, 'a second read of the record');
        const a = got ?? [0, 0];
        a[0] += 1;
        a[1] += k;
        s.update(a);
        expected.set(k, (expected.get(k) ?? 0) + 1);
      }
    }
    for (const [k, n] of expected) {
      b.setCurrentKey(k);
      assert.deepEqual(s.value(), [n, n * k], `key ${k}`);
    }
    // the reads and updates of a prefetched buffer look nothing up: keys read by the multi-get
    // (each once), then keys the cache holds (repeated)
    const c = incomplete(await rocks({ readCacheBytes: 64 << 20 }));
    const cs = c.getState(new ValueStateDescriptor<number>('n'));
    const clean = (c as unknown as { metas: Map<string, { clean: Map<unknown, unknown> }> }).metas.get(
      'n',
    )!.clean;
    const get = clean.get.bind(clean);
    let lookups = 0;
    clean.get = (k: unknown) => {
      lookups++;
      return get(k);
    };
    const process = (keys: number[]): number => {
      c.prefetch(recordsOf(keys), keyOf);
      const before = lookups;
      for (const k of keys) {
        c.setCurrentKey(k);
        cs.update((cs.value() ?? 0) + 1);
      }
      return lookups - before;
    };
    assert.equal(process([...Array(150).keys()]), 0, 'no Map lookup after a prefetch that read the keys');
    assert.equal(
      process(Array.from({ length: 200 }, (_, i) => i % 150)),
      0,
      'no Map lookup after a prefetch that found the keys cached',
    );
    for (let k = 0; k < 150; k++) {
      c.setCurrentKey(k);
      assert.equal(cs.value(), k < 50 ? 3 : 2);
    }
  });

  test('never hides a buffered write, and values read after it are copies', async () => {
    const b = await rocks({ maxBufferedEntries: 1_000_000 });
    const s = b.getState(new ValueStateDescriptor<{ n: number }>('v'));
    b.setCurrentKey(1);
    s.update({ n: 1 });
    b.flush();
    b.setCurrentKey(1);
    s.update({ n: 2 }); // buffered, not in RocksDB
    b.prefetch(recordsOf([1, 2]), keyOf);
    b.setCurrentKey(1);
    const v = s.value()!;
    assert.deepEqual(v, { n: 2 });
    v.n = 99;
    assert.deepEqual(s.value(), { n: 2 }, 'a changed read value is not state');
    b.setCurrentKey(2);
    assert.equal(s.value(), undefined);
  });

  test('covers value and reducing state, not list state (appended by merges) or map state', async () => {
    const b = await rocks();
    const v = b.getState(new ValueStateDescriptor<number>('v'));
    const l = b.getListState(new ListStateDescriptor<number>('l'));
    const r = b.getReducingState(new ReducingStateDescriptor<number>('r', (x, y) => x + y));
    b.setCurrentKey(5);
    v.update(1);
    l.add(2);
    r.add(3);
    b.flush();
    const fresh = await rocks();
    const snap = await b.snapshot(MAX_P)();
    for (const [off, len] of Object.values(snap!.index))
      fresh.restoreEntries(snap!.kinds, decodeRecords(Buffer.from(snap!.data).subarray(off, off + len)));
    const [fv, fl, fr] = [
      fresh.getState(new ValueStateDescriptor<number>('v')),
      fresh.getListState(new ListStateDescriptor<number>('l')),
      fresh.getReducingState(new ReducingStateDescriptor<number>('r', (x, y) => x + y)),
    ];
    const reads = countReads(fresh);
    fresh.prefetch(recordsOf([5]), keyOf);
    assert.deepEqual(reads, { keys: 2, calls: 1 });
    fresh.setCurrentKey(5);
    assert.equal(fv.value(), 1);
    assert.equal(fr.get(), 3);
    assert.equal(reads.calls, 1);
    // a list is read from RocksDB, a fresh copy every time
    (fl.get() as number[]).push(7);
    assert.deepEqual([...fl.get()], [2]);
    assert.equal(reads.calls, 3);
  });

  test('an operator that writes without reading gets few prefetches; one that reads gets them all', async () => {
    const b = incomplete(await rocks({ readCacheBytes: 64 << 20 }));
    const s = b.getState(new ValueStateDescriptor<number>('v'));
    const reads = countReads(b);
    let next = 0;
    const buffer = (): Array<{ k: number }> => recordsOf(Array.from({ length: 1000 }, () => next++));
    for (let i = 0; i < 64; i++) {
      const records = buffer();
      b.prefetch(records, keyOf);
      for (const r of records) {
        b.setCurrentKey(r.k);
        s.update(1); // write-only: nothing prefetched is read
      }
    }
    assert.ok(reads.calls < 20, `write-only: ${reads.calls} multi-gets for 64 buffers`);
    reads.calls = 0;
    for (let i = 0; i < 64; i++) {
      const records = buffer();
      b.prefetch(records, keyOf);
      for (const r of records) {
        b.setCurrentKey(r.k);
        s.update((s.value() ?? 0) + 1);
      }
    }
    assert.ok(reads.calls >= 48, `read-modify-write: ${reads.calls} multi-gets for 64 buffers`);
  });

  test('reads no keys for namespaced state and timers, which are never read per key', async () => {
    const b = incomplete(await rocks());
    const host = b.eventTimeHost();
    host.register('window-contents', 'namespaced');
    host.register('timers/event', 'timers');
    const reads = countReads(b);
    b.prefetch(recordsOf([1, 2, 3]), keyOf);
    assert.deepEqual(reads, { keys: 0, calls: 0 });
    b.getState(new ValueStateDescriptor<number>('v'));
    b.prefetch(recordsOf([1, 2, 3]), keyOf);
    assert.deepEqual(reads, { keys: 3, calls: 1 }, 'only the value state of each key');
  });

  test('a key selector that throws ends the prefetch quietly (processing reports it)', async () => {
    const b = incomplete(await rocks());
    b.getState(new ValueStateDescriptor<number>('v'));
    const reads = countReads(b);
    b.prefetch([{ k: 1 }, null, { k: 2 }], keyOf);
    assert.equal(reads.keys, 1, 'the keys before the failing record were read');
  });

  test('a cache holding every stored key reads nothing from RocksDB; after the first dropped entry or a restore it reads again, exactly', async () => {
    const counts = async (b: RocksDBKeyedStateBackend, rounds: number): Promise<Map<number, number>> => {
      const s = b.getState(new ValueStateDescriptor<[number, number]>('count-sum'));
      const expected = new Map<number, number>();
      let seed = 11;
      for (let round = 0; round < rounds; round++) {
        const keys = Array.from(
          { length: 100 },
          () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 400,
        );
        b.prefetch(recordsOf(keys), keyOf);
        for (const k of keys) {
          b.setCurrentKey(k);
          const a = s.value() ?? [0, 0];
          a[0] += 1;
          a[1] += k;
          s.update(a);
          expected.set(k, (expected.get(k) ?? 0) + 1);
        }
        if (round % 5 === 4) b.flush();
      }
      for (const [k, n] of expected) {
        b.setCurrentKey(k);
        assert.deepEqual(s.value(), [n, n * k], `key ${k}`);
      }
      return expected;
    };
    const cache = (b: RocksDBKeyedStateBackend): ReadCache => (b as unknown as { cache: ReadCache }).cache;
    // everything fits: no multi-get and no point lookup, first touches included
    const big = await rocks({ readCacheBytes: 16 << 20, maxBufferedEntries: 50 });
    const bigReads = countReads(big);
    await counts(big, 30);
    assert.equal(cache(big).complete, true);
    assert.deepEqual(bigReads, { keys: 0, calls: 0 });
    // a flush leaves no written entry referenced from the write buffer's arrays (they keep their length)
    big.flush();
    const meta = (big as unknown as { metas: Map<string, StateMeta> }).metas.get('count-sum')!;
    assert.equal(meta.pendingCount, 0);
    assert.ok(meta.pendingEntries.length > 0 && meta.pendingEntries.every((e) => e === undefined));
    // about 60 of the 400 keys fit: the first eviction ends completeness, and the evicted keys'
    // counts come back from RocksDB
    const small = await rocks({ readCacheBytes: entryBytes(0, [0, 0]) * 60, maxBufferedEntries: 20 });
    const smallReads = countReads(small);
    await counts(small, 30);
    assert.equal(cache(small).complete, false);
    assert.ok(smallReads.keys > 100, `reads after evictions: ${smallReads.keys}`);
    // a restore fills RocksDB past the cache: its keys are read
    const snap = await big.snapshot(MAX_P)();
    const restored = await rocks({ readCacheBytes: 16 << 20 });
    for (const [off, len] of Object.values(snap!.index))
      restored.restoreEntries(snap!.kinds, decodeRecords(Buffer.from(snap!.data).subarray(off, off + len)));
    assert.equal(cache(restored).complete, false);
    const rs = restored.getState(new ValueStateDescriptor<[number, number]>('count-sum'));
    const restoredReads = countReads(restored);
    for (const [k, n] of await (async () => {
      const again = await rocks({ readCacheBytes: 16 << 20 });
      return counts(again, 30); // the same input: the same counts
    })()) {
      restored.setCurrentKey(k);
      assert.deepEqual(rs.value(), [n, n * k], `restored key ${k}`);
    }
    assert.ok(restoredReads.keys > 0);
  });

  test('model check: random updates, prefetches, flushes and snapshots agree with the heap backend', async () => {
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const heap = await backends.open('heap');
    const rdb = await rocks({ readCacheBytes: 3000, maxBufferedEntries: 13 });
    const states = [heap, rdb].map((b) => ({
      b,
      v: b.getState(new ValueStateDescriptor<[number, number]>('count-sum')),
      l: b.getListState(new ListStateDescriptor<number>('list')),
    }));
    for (let step = 0; step < 40; step++) {
      const buffer = Array.from({ length: 1 + rnd(200) }, () => ({ k: rnd(150), x: rnd(100) }));
      rdb.prefetch(buffer, keyOf);
      for (const rec of buffer)
        for (const { b, v, l } of states) {
          b.setCurrentKey(rec.k);
          const a = v.value() ?? [0, 0];
          a[0]++;
          a[1] += rec.x;
          if (rec.x === 0) v.clear();
          else v.update(a);
          if (rec.x < 10) l.add(rec.x);
          if (rec.x === 99) l.clear();
        }
      if (step % 7 === 3) rdb.flush();
      if (step % 10 === 9) assert.deepEqual(await entries(rdb), await entries(heap), `step ${step}`);
    }
    assert.deepEqual(await entries(rdb), await entries(heap));
  });
});

describe('RocksDB flat values (small arrays and plain objects of primitives)', () => {
  const recordsOf = (keys: number[]): Array<{ k: number }> => keys.map((k) => ({ k }));
  const keyOf = (r: unknown): unknown => (r as { k: number }).k;

  test('update() copies and encodes once (into the write buffer); reads and the flush encode nothing; reads are copies wherever the value is held', async () => {
    const b = await rocks({ maxBufferedEntries: 1_000_000 });
    const s = b.getState(new ValueStateDescriptor<[number, number, string, boolean]>('count-sum'));
    const o = b.getState(new ValueStateDescriptor<{ count: number; name: string }>('obj'));
    const encode = valueEncoder.encode;
    const encodeInto = valueEncoder.encodeInto;
    let encoded = 0;
    // values are objects, keys numbers (encoded to build RocksDB keys); update() encodes into the
    // state's pending values (encodeInto), which calls encode only for a value that does not fit
    valueEncoder.encode = function (this: typeof valueEncoder, v: unknown): number {
      if (typeof v === 'object') encoded++;
      return encode.call(this, v);
    };
    valueEncoder.encodeInto = function (this: typeof valueEncoder, v: unknown, t: Buffer, p: number): number {
      const end = encodeInto.call(this, v, t, p);
      if (typeof v === 'object' && end >= 0) encoded++;
      return end;
    };
    try {
      for (let round = 1; round <= 3; round++)
        for (let k = 0; k < 100; k++) {
          b.setCurrentKey(k);
          const a = s.value() ?? [0, 0, 'x', false];
          a[0] += 1;
          a[1] += k;
          s.update(a);
          a[0] = -1; // after update(): not state
          const x = o.value() ?? { count: 0, name: `n${k}` };
          x.count++;
          o.update(x);
        }
      assert.equal(encoded, 600, 'each update() once');
      for (let k = 0; k < 100; k++) {
        b.setCurrentKey(k);
        s.value();
        o.value();
      }
      b.flush();
      assert.equal(encoded, 600, 'value() and the flush encode nothing');
    } finally {
      valueEncoder.encode = encode;
      valueEncoder.encodeInto = encodeInto;
    }
    const check = (where: string): void => {
      for (let k = 0; k < 100; k++) {
        b.setCurrentKey(k);
        const a = s.value()!;
        assert.deepStrictEqual(a, [3, 3 * k, 'x', false], `${where}, key ${k}`);
        a[1] = -5;
        assert.deepStrictEqual(s.value(), [3, 3 * k, 'x', false], `${where}: a changed read is not state`);
        const x = o.value()!;
        assert.deepStrictEqual(x, { count: 3, name: `n${k}` });
        x.name = 'changed';
        assert.deepStrictEqual(o.value(), { count: 3, name: `n${k}` });
      }
    };
    check('in the read cache after the flush');
    // from RocksDB: a fresh backend restored from a snapshot, prefetched, and read by point lookups
    const snap = await b.snapshot(MAX_P)();
    for (const how of ['prefetched', 'point lookups'] as const) {
      const fresh = await rocks();
      for (const [off, len] of Object.values(snap!.index))
        fresh.restoreEntries(snap!.kinds, decodeRecords(Buffer.from(snap!.data).subarray(off, off + len)));
      const fs = fresh.getState(new ValueStateDescriptor<[number, number, string, boolean]>('count-sum'));
      const fo = fresh.getState(new ValueStateDescriptor<{ count: number; name: string }>('obj'));
      if (how === 'prefetched') fresh.prefetch(recordsOf(Array.from({ length: 100 }, (_, k) => k)), keyOf);
      for (let k = 0; k < 100; k++) {
        fresh.setCurrentKey(k);
        const a = fs.value()!;
        a[0] = 0;
        assert.deepStrictEqual(fs.value(), [3, 3 * k, 'x', false], `${how}, key ${k}`);
        const x = fo.value()!;
        x.count = 0;
        assert.deepStrictEqual(fo.value(), { count: 3, name: `n${k}` }, `${how}, key ${k}`);
      }
    }
  });

  test('values that are not flat (nested, long, with other types) are encoded at update() as before', async () => {
    const b = await rocks({ maxBufferedEntries: 1_000_000 });
    const s = b.getState(new ValueStateDescriptor<unknown>('v'));
    const values: unknown[] = [
      [1, [2]],
      { a: { b: 1 } },
      Array.from({ length: 33 }, (_, i) => i),
      [1, null],
      [1, undefined],
      { d: new Date(5) },
      new Map([[1, 2]]),
    ];
    values.forEach((v, k) => {
      b.setCurrentKey(k);
      s.update(v);
    });
    values.forEach((v, k) => {
      b.setCurrentKey(k);
      assert.deepStrictEqual(s.value(), v, `value ${k}`);
    });
    // the codec's errors still come at update()
    b.setCurrentKey('f');
    assert.throws(() => s.update([() => 1]), /Cannot store keyed state 'v'/);
  });

  test('the read cache counts a flat value by its fields', () => {
    assert.ok(entryBytes(1, [1, 2]) > entryBytes(1, 1));
    assert.ok(entryBytes(1, { a: 1, b: 'x'.repeat(100) }) > entryBytes(1, { a: 1, b: 'x' }) + 90);
  });
});

describe('RocksDB snapshots and the write buffer', () => {
  test('a snapshot holds every buffered write and none made after it; a restore from it loses nothing', async () => {
    const b = await rocks({ maxBufferedEntries: 1_000_000 });
    const s = b.getState(new ValueStateDescriptor<number>('v'));
    for (let k = 0; k < 1000; k++) {
      b.setCurrentKey(k);
      s.update(k);
    }
    const materialize = b.snapshot(MAX_P); // nothing flushed before: the snapshot must flush
    for (let k = 0; k < 1000; k++) {
      b.setCurrentKey(k);
      s.update(-1);
    }
    b.flush();
    const snap = await materialize();
    const r = await rocks();
    for (const [off, len] of Object.values(snap!.index))
      r.restoreEntries(snap!.kinds, decodeRecords(Buffer.from(snap!.data).subarray(off, off + len)));
    const rs = r.getState(new ValueStateDescriptor<number>('v'));
    for (let k = 0; k < 1000; k++) {
      r.setCurrentKey(k);
      assert.equal(rs.value(), k);
    }
  });
});

describe('RocksDB keys built in place', () => {
  test('writeStateKey writes the bytes of stateKeyPrefix, at any offset; KeyScratch grows for long keys', () => {
    const out = Buffer.alloc(256);
    for (const nk of [0, 1, -1, 2 ** 40, 1.5, 'a', 'x'.repeat(200), '\u0000\u0001encoded']) {
      const end = writeStateKey(out, 10, 3, nk, MAX_P);
      assert.deepEqual(out.subarray(10, end), stateKeyPrefix(3, nk, MAX_P), String(nk));
    }
    assert.equal(writeStateKey(Buffer.alloc(8), 0, 1, 'too long for eight bytes', MAX_P), -1);
    const sc = new KeyScratch();
    const long = 'k'.repeat(100_000);
    const end = sc.stateKey(0, 1, long, MAX_P);
    assert.deepEqual(sc.buf.subarray(0, end), stateKeyPrefix(1, long, MAX_P));
  });

  test('state under a key longer than the scratch buffer is stored and read back', async () => {
    const b = await rocks({ maxCachedEntries: 1 });
    const s = b.getState(new ValueStateDescriptor<string>('v'));
    const long = 'k'.repeat(50_000);
    b.setCurrentKey(long);
    s.update('long');
    b.setCurrentKey('short');
    s.update('short');
    b.flush();
    b.setCurrentKey('other'); // evicts the cache of one entry
    s.value();
    b.setCurrentKey(long);
    assert.equal(s.value(), 'long');
    assert.equal(await b.numKeys(), 2);
  });
});

describe('managed memory', () => {
  test('split between slots, then databases, then read cache, block cache and memtables; explicit sizes win', () => {
    assert.equal(managedMemoryPerSlot(1000 << 20, 0.4, 4), 250 << 20);
    const m = databaseMemory({ perSlot: 100 << 20 }, 2);
    assert.equal(m.readCacheBytes, Math.floor((50 << 20) * 0.5));
    assert.equal(m.blockCacheSize, Math.floor((50 << 20) * 0.3));
    assert.equal(m.writeBufferSize, Math.floor((50 << 20) * 0.2));
    const e = databaseMemory({ perSlot: 100 << 20, blockCacheSize: 7 << 20 });
    assert.equal(e.blockCacheSize, 7 << 20);
    assert.equal(e.readCacheBytes, 50 << 20);
    // a tiny budget still opens a usable database
    assert.equal(databaseMemory({ perSlot: 1000 }, 8).writeBufferSize, 1 << 20);
  });

  test('memtables get at most 32 MB of a large share (the rest goes to the block cache) unless set', () => {
    const big = databaseMemory({ perSlot: 1000 << 20 });
    assert.equal(big.writeBufferSize, 32 << 20);
    assert.equal(
      big.blockCacheSize,
      Math.floor((1000 << 20) * 0.3) + Math.floor((1000 << 20) * 0.2) - (32 << 20),
    );
    assert.equal(big.readCacheBytes, 500 << 20);
    assert.equal(
      databaseMemory({ perSlot: 1000 << 20, writeBufferSize: 200 << 20 }).writeBufferSize,
      200 << 20,
    );
    assert.equal(databaseMemory({ perSlot: 1000 << 20, blockCacheSize: 5 << 20 }).blockCacheSize, 5 << 20);
  });
});
