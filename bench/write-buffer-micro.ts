/**
 * Two costs behind the RocksDB write buffer's layout (bench/README.md, ninth session), each in
 * isolation, in nanoseconds per element:
 *  - arrays: appending to two large arrays after truncating them (`length = 0`, then `push`)
 *    against stores into arrays that keep their length (StateMeta.pendingCount);
 *  - the flush: encoding 200,000 held values (cache entries over 500,000 keys, allocated in a
 *    random order) in RocksDB's key order, against the native put of a batch alone (why values
 *    are encoded when written: pending-values.ts).
 *
 *   node --import tsx bench/write-buffer-micro.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { valueEncoder } from '../packages/core/src/index.js';
import { NativeBatch, openRocksDB } from '../packages/taskmanager/src/state/rocksdb/binding.js';

const KEYS = 500_000;
const N = 200_000;
const ROUNDS = 4;

interface Entry {
  v: number[];
  bytes: number;
  ref: number;
  slot: number;
}

const ns = (t: bigint, n: number): string => (Number(process.hrtime.bigint() - t) / n).toFixed(0);

// entries allocated in a random order of their keys, as a cache that uniform records filled
const perm = Array.from({ length: KEYS }, (_, i) => i);
for (let i = perm.length - 1; i > 0; i--) {
  const j = Math.floor(Math.random() * (i + 1));
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
}
const entries: Entry[] = new Array<Entry>(KEYS);
for (const k of perm) entries[k] = { v: [k & 1023, k * 7], bytes: 100, ref: 0, slot: 0 };
const pending = Array.from({ length: N }, (_, i) => entries[(Math.imul(i, 0x9e3779b1) >>> 0) % KEYS]!);

console.log('arrays of up to 200,000 keys and entries, 1M of each per round:');
const keysA: number[] = [];
const entriesA: Entry[] = [];
const keysB: number[] = [];
const entriesB: Array<Entry | undefined> = [];
for (let r = 0; r < ROUNDS; r++) {
  let t = process.hrtime.bigint();
  for (let k = 0; k < 1_000_000 / N; k++) {
    for (let i = 0; i < N; i++) {
      keysA.push(i);
      entriesA.push(pending[i]!);
    }
    keysA.length = 0;
    entriesA.length = 0;
  }
  const pushed = ns(t, 1_000_000);
  t = process.hrtime.bigint();
  for (let k = 0; k < 1_000_000 / N; k++) {
    let n = 0;
    for (let i = 0; i < N; i++) {
      keysB[n] = i;
      entriesB[n++] = pending[i]!;
    }
    entriesB.fill(undefined, 0, n);
  }
  console.log(`  push after truncating ${pushed} ns, stores (length kept) ${ns(t, 1_000_000)} ns`);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-write-buffer-'));
const db = await openRocksDB(path.join(dir, 'db'), { blockCacheSize: 8 << 20, writeBufferSize: 64 << 20 });
const batch = new NativeBatch(db);
// key order: unrelated to where the entries are in memory
const order = Int32Array.from({ length: N }, (_, i) => i).sort(
  (a, b) => ((Math.imul(a, 0x85ebca6b) >>> 0) % KEYS) - ((Math.imul(b, 0x85ebca6b) >>> 0) % KEYS),
);
const scratch = Buffer.allocUnsafeSlow(1 << 16);
const key = scratch.subarray(0, 12);
const value = scratch.subarray(12, 17);
console.log(
  `the flush of ${N.toLocaleString('en-US')} held values over ${KEYS.toLocaleString('en-US')} keys:`,
);
for (let r = 0; r < ROUNDS; r++) {
  let t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const e = pending[order[i]!]!;
    if (valueEncoder.encodeInto(e.v, scratch, 12) < 0) throw new Error('no room');
    e.slot = -1;
  }
  const encoded = ns(t, N);
  t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) batch._put(key, value);
  const put = ns(t, N);
  batch._closeSync();
  console.log(`  encoding in key order ${encoded} ns, native put alone ${put} ns`);
}
await db.close();
rmSync(dir, { recursive: true, force: true });
