/**
 * The cost of one MapState.entries() on the RocksDB backend (a keyed function reading the current
 * key's map), per read: KEYS keys (default 200,000) with ENTRIES entries each (default 3), half
 * of the reads for keys whose map is empty, written through the backend and flushed so RocksDB
 * holds them in several files. Each round reads every key's map once through the backend
 * (PrefixReader: one kept iterator, a seek per read), then the same rows through a fresh bounded
 * iterator per read (forEachInRange over the prefix's range, as the backend read maps before),
 * alternating; prints the median
 * microseconds per read of ROUNDS (default 5).
 *
 *   node --import tsx bench/map-iteration.ts
 *   KEYS=200000 ENTRIES=3 ROUNDS=5 BLOCK_CACHE_MB=64
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MapStateDescriptor } from '../packages/api/src/index.js';
import { RocksDBKeyedStateBackend } from '../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { forEachInRange, type RocksDB } from '../packages/taskmanager/src/state/rocksdb/binding.js';
import { prefixEnd } from '../packages/taskmanager/src/state/rocksdb/key-layout.js';

const KEYS = Number(process.env.KEYS ?? 200_000);
const ENTRIES = Number(process.env.ENTRIES ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const BLOCK_CACHE = Number(process.env.BLOCK_CACHE_MB ?? 64) << 20;

const root = mkdtempSync(path.join(os.tmpdir(), 'weir-map-iteration-'));
const b = new RocksDBKeyedStateBackend({
  directory: path.join(root, 'db'),
  maxParallelism: 128,
  blockCacheSize: BLOCK_CACHE,
  writeBufferSize: 16 << 20,
  maxBufferedEntries: 50_000,
});
await b.open();
const tags = b.getMapState(new MapStateDescriptor<number, number>('tags'));
for (let k = 0; k < KEYS; k++) {
  b.setCurrentKey(k);
  if (k % 2 === 0) for (let e = 0; e < ENTRIES; e++) tags.put(e, k + e);
}
b.flush();

/** the backend's own read of every key's map; the entries counted */
const viaBackend = (): number => {
  let n = 0;
  for (let k = 0; k < KEYS; k++) {
    b.setCurrentKey(k);
    for (const _ of tags.entries()) n++;
  }
  return n;
};
// the same prefixes read with a fresh bounded iterator each (the host's prefix of the current key)
const internals = b as unknown as {
  db: RocksDB;
  host: { prefix(meta: unknown, nk: unknown): Buffer; nk: unknown };
};
const meta = [...(b as unknown as { metas: Map<string, unknown> }).metas.values()][0];
const viaFreshIterator = (): number => {
  let n = 0;
  for (let k = 0; k < KEYS; k++) {
    b.setCurrentKey(k);
    const p = internals.host.prefix(meta, internals.host.nk);
    forEachInRange(internals.db, { gte: p, lt: prefixEnd(p)! }, () => void n++, 256);
  }
  return n;
};

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const times: Record<string, number[]> = { 'kept iterator (PrefixReader)': [], 'fresh iterator per read': [] };
const expected = Math.ceil(KEYS / 2) * ENTRIES;
for (let r = 0; r < ROUNDS + 1; r++) {
  for (const [name, read] of [
    ['kept iterator (PrefixReader)', viaBackend],
    ['fresh iterator per read', viaFreshIterator],
  ] as const) {
    const t0 = performance.now();
    const n = read();
    const us = ((performance.now() - t0) * 1000) / KEYS;
    if (n !== expected) throw new Error(`${name}: ${n} entries read, ${expected} written`);
    if (r > 0) times[name]!.push(us); // the first round warms the caches
  }
}
console.log(
  `${KEYS.toLocaleString('en-US')} keys, ${ENTRIES} entries on every second key, block cache ${BLOCK_CACHE >> 20} MB`,
);
console.log('| map read | µs per entries() (median) | rounds |');
console.log('|---|---:|---|');
for (const [name, xs] of Object.entries(times))
  console.log(`| ${name} | ${median(xs).toFixed(1)} | ${xs.map((x) => x.toFixed(1)).join(', ')} |`);
await b.dispose();
rmSync(root, { recursive: true, force: true });
