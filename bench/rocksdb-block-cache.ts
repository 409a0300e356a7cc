/**
 * How a RocksDB database's multi-get rate depends on its block cache, for state larger than the
 * cache (the 10M-key case of bench/keyed-state.ts reads most keys from RocksDB's files). Builds
 * one database of KEYS keys (default 5,000,000, one subtask's share of 10M) with the backend's
 * own settings (openRocksDB: point-lookup filters, level compaction, 24 MB of memtables), keys
 * laid out as the backend lays out a value state's, then, for each block cache size, reopens it
 * and reads uniformly random keys in multi-gets of 500 (as a prefetch does): keys present, and
 * keys never written (a first-touched key). Prints keys/s after a warm-up of as many reads.
 *
 *   node --import tsx bench/rocksdb-block-cache.ts
 *   KEYS=5000000 READS=500000 CACHES=36,64,128,256 (MB) DIR=<scratch directory>
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openRocksDB, writeBatch } from '../packages/taskmanager/src/state/rocksdb/binding.js';
import { KeyScratch } from '../packages/taskmanager/src/state/rocksdb/key-layout.js';

const KEYS = Number(process.env.KEYS ?? 5_000_000);
const READS = Number(process.env.READS ?? 500_000);
const CACHES = (process.env.CACHES ?? '36,64,128,256').split(',').map(Number);
const MAX_P = 128;
const BATCH = 500;
const WRITE_BUFFER = 24 << 20;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

const scratch = new KeyScratch();
/** the RocksDB key of value state 1 of normalized key k (a copy) */
const keyOf = (k: number): Buffer => Buffer.from(scratch.buf.subarray(0, scratch.stateKey(0, 1, k, MAX_P)));
/** a running count and sum, as bench/jobs/keyed-count.ts keeps it (msgpack [uint32, uint32]) */
const value = Buffer.from([0x92, 0xce, 0, 0, 0, 1, 0xce, 0, 0, 0, 2]);

const root = process.env.DIR ?? mkdtempSync(path.join(os.tmpdir(), 'weir-block-cache-'));
const dir = path.join(root, 'db');
rmSync(dir, { recursive: true, force: true });
try {
  let db = await openRocksDB(dir, { blockCacheSize: 32 << 20, writeBufferSize: WRITE_BUFFER });
  const t0 = performance.now();
  for (let i = 0; i < KEYS; i += 10_000)
    writeBatch(db, (b) => {
      for (let k = i; k < Math.min(KEYS, i + 10_000); k++) b._put(keyOf(k), value, {});
    });
  process.stderr.write(`built ${fmt(KEYS)} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  // let the background compactions settle before measuring
  await new Promise((r) => setTimeout(r, 5000));
  await db.close();
  console.log(`| block cache | present keys/s | never-written keys/s |`);
  console.log(`|---:|---:|---:|`);
  for (const mb of CACHES) {
    db = await openRocksDB(dir, { blockCacheSize: mb << 20, writeBufferSize: WRITE_BUFFER }, true);
    const rate = (offset: number): number => {
      const keys: Buffer[] = [];
      // a warm-up of READS reads fills the cache, then READS measured
      let t = 0;
      for (let round = 0; round < 2; round++) {
        const start = performance.now();
        for (let n = 0; n < READS; n += BATCH) {
          keys.length = 0;
          for (let i = 0; i < BATCH; i++) keys.push(keyOf(offset + Math.floor(Math.random() * KEYS)));
          db._getManySync(keys, {});
        }
        t = performance.now() - start;
      }
      return (READS / t) * 1000;
    };
    const present = rate(0);
    const absent = rate(KEYS);
    console.log(`| ${mb} MB | ${fmt(present)} | ${fmt(absent)} |`);
    await db.close();
  }
} finally {
  if (!process.env.DIR) rmSync(root, { recursive: true, force: true });
}
