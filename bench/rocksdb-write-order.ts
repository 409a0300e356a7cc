/**
 * RocksDB batched puts of uniform keys in hash order against key order (BENCH_ONLY=rocksdb-write-order,
 * or `node --import tsx bench/rocksdb-write-order.ts`): why the write buffer flushes sorted
 * (packages/taskmanager/src/state/rocksdb/write-order.ts). 50,000-entry batches of keys laid
 * out as the backend lays them out (key group, state id, msgpack uint32) over WO_KEYS keys
 * (default 500,000), 32 MB of memtables; prints puts per CPU second of the native write alone.
 * WO_BATCHES scales it (default 40).
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NO_OPTIONS, openRocksDB, writeBatch } from '../packages/taskmanager/src/state/rocksdb/binding.js';

const BATCH = 50_000;

async function run(sorted: boolean, keys: number, batches: number): Promise<number> {
  const dir = path.join(os.tmpdir(), `weir-write-order-${process.pid}-${sorted}`);
  rmSync(dir, { recursive: true, force: true });
  const db = await openRocksDB(dir, { blockCacheSize: 64 << 20, writeBufferSize: 32 << 20 });
  const value = Buffer.from([0x92, 1, 2]);
  const order = new Float64Array(BATCH);
  let cpu = 0;
  let idx = 0;
  try {
    for (let r = 0; r < batches; r++) {
      for (let i = 0; i < BATCH; i++, idx++) {
        const k = (Math.imul(idx, 0x9e3779b1) >>> 0) % keys;
        order[i] = (Math.imul(k, 0x85ebca6b) >>> 25) * 0x1_0000_0000 + k; // key group, key
      }
      if (sorted) order.sort();
      const ks = Array.from(order, (c) => {
        const b = Buffer.allocUnsafe(9);
        b.writeUInt16BE(Math.floor(c / 0x1_0000_0000), 0);
        b.writeUInt16BE(1, 2);
        b[4] = 0xce;
        b.writeUInt32BE(c % 0x1_0000_0000, 5);
        return b;
      });
      const c0 = process.cpuUsage();
      writeBatch(db, (batch) => {
        for (const k of ks) batch._put(k, value, NO_OPTIONS);
      });
      const c = process.cpuUsage(c0);
      cpu += (c.user + c.system) / 1e6;
    }
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return (batches * BATCH) / cpu;
}

export async function writeOrderBench(): Promise<void> {
  const keys = Number(process.env.WO_KEYS ?? 500_000);
  const batches = Number(process.env.WO_BATCHES ?? 40);
  const f = (n: number): string => Math.round(n).toLocaleString('en-US');
  const rows: Array<[string, number]> = [];
  for (let i = 0; i < 2; i++) {
    rows.push(['hash order', await run(false, keys, batches)]);
    rows.push(['key order', await run(true, keys, batches)]);
  }
  console.log('');
  console.log(
    `| RocksDB batched puts, ${f(keys)} uniform keys, 50,000 per batch | puts per CPU second (native write) |`,
  );
  console.log('|---|---:|');
  for (const [what, n] of rows) console.log(`| ${what} | ${f(n)} |`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await writeOrderBench();
