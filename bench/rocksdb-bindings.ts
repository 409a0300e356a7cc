/**
 * Chooses the RocksDB binding for the RocksDB keyed state backend by measurement.
 *
 *   npm i --no-save --prefix /tmp/rdb rocksdb @nxtedition/rocksdb rocksdb-native
 *   ROCKSDB_BENCH_MODULES=/tmp/rdb node --import tsx bench/rocksdb-bindings.ts
 *
 * Without ROCKSDB_BENCH_MODULES the bindings are looked up from this repository (only the one
 * the project depends on is there). Each binding: does it load in a worker thread (tasks run in
 * slot workers), sequential awaited gets, synchronous gets (where offered), batched puts
 * (1,000 per batch), and a full scan. Keys are 20-byte binary keys shaped like the backend's
 * (key group, state id, key), values 4-byte msgpack numbers.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

const base = process.env.ROCKSDB_BENCH_MODULES
  ? path.join(path.resolve(process.env.ROCKSDB_BENCH_MODULES), 'x.js')
  : import.meta.url;
const require = createRequire(base);
const N = Number(process.env.BENCH_KEYS ?? 200_000);
const N_ASYNC = Math.min(N, 20_000);

function key(i: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(i % 128, 0);
  b.writeUInt16BE(1, 2);
  b.write(`w${String(i).padStart(15, '0')}`, 4, 'latin1');
  return b;
}
const keys = Array.from({ length: N }, (_, i) => key(i));
const value = Buffer.from([0xce, 0, 0, 0, 1]);

interface Row {
  binding: string;
  version: string;
  worker: string;
  asyncGet?: number;
  syncGet?: number;
  /** synchronous multi-get, 1,000 keys in random order per call */
  multiGet?: number;
  batchPut?: number;
  scan?: number;
}

function rate(n: number, t0: number): number {
  return Math.round(n / ((performance.now() - t0) / 1000));
}

function loadsInWorker(mod: string): Promise<string> {
  const code = `const { createRequire } = require('node:module'); const r = createRequire(${JSON.stringify(base)}); r(${JSON.stringify(mod)}); require('node:worker_threads').parentPort.postMessage('ok')`;
  return new Promise((resolve) => {
    const w = new Worker(code, { eval: true });
    w.once('message', () => {
      resolve('yes');
      void w.terminate();
    });
    w.once('error', (e) => resolve(`no: ${e.message}`));
  });
}

async function nxtedition(dir: string): Promise<Row> {
  const { RocksLevel } = require('@nxtedition/rocksdb') as { RocksLevel: any };
  const db = new RocksLevel(dir, {});
  await db.open({ createIfMissing: true, keyEncoding: 'buffer', valueEncoding: 'buffer' });
  let t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const b = db.batch();
    for (let j = i; j < Math.min(N, i + 1000); j++) b.put(keys[j], value);
    b._writeSync({});
  }
  const batchPut = rate(N, t0);
  t0 = performance.now();
  for (let i = 0; i < N_ASYNC; i++) await db.get(keys[i], { valueEncoding: 'buffer' });
  const asyncGet = rate(N_ASYNC, t0);
  t0 = performance.now();
  for (let i = 0; i < N; i++) db._getManySync([keys[i]], { valueEncoding: 'buffer' });
  const syncGet = rate(N, t0);
  // keys in random order, as a uniform keyed workload asks for them
  const shuffled = [...keys];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  t0 = performance.now();
  for (let i = 0; i < N; i += 1000) db._getManySync(shuffled.slice(i, i + 1000), { valueEncoding: 'buffer' });
  const multiGet = rate(N, t0);
  t0 = performance.now();
  const it = db.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
  let seen = 0;
  for (;;) {
    const { rows, finished } = it._nextvSync(1000, {});
    seen += rows.length / 2;
    if (finished) break;
  }
  const scan = rate(seen, t0);
  await it.close();
  await db.close();
  return {
    binding: '@nxtedition/rocksdb',
    version: require('@nxtedition/rocksdb/package.json').version,
    worker: await loadsInWorker('@nxtedition/rocksdb'),
    asyncGet,
    syncGet,
    multiGet,
    batchPut,
    scan,
  };
}

async function level(dir: string): Promise<Row> {
  const rocksdb = require('rocksdb') as (loc: string) => any;
  const db = rocksdb(dir);
  const p = <T>(f: (cb: (err: Error | null, v?: T) => void) => void) =>
    new Promise<T>((res, rej) => f((e, v) => (e ? rej(e) : res(v as T))));
  await p((cb) => db.open({ createIfMissing: true }, cb));
  let t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const ops: { type: 'put'; key: unknown; value: unknown }[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) ops.push({ type: 'put', key: keys[j], value });
    await p((cb) => db.batch(ops, cb));
  }
  const batchPut = rate(N, t0);
  t0 = performance.now();
  for (let i = 0; i < N_ASYNC; i++) await p((cb) => db.get(keys[i], { asBuffer: true }, cb));
  const asyncGet = rate(N_ASYNC, t0);
  t0 = performance.now();
  const it = db.iterator({ keyAsBuffer: true, valueAsBuffer: true });
  let seen = 0;
  for (;;) {
    const k = await new Promise((res, rej) =>
      it.next((e: Error | null, k?: Buffer) => (e ? rej(e) : res(k))),
    );
    if (k === undefined) break;
    seen++;
  }
  const scan = rate(seen, t0);
  await p((cb) => it.end(cb));
  await p((cb) => db.close(cb));
  return {
    binding: 'rocksdb (Level)',
    version: require('rocksdb/package.json').version,
    worker: await loadsInWorker('rocksdb'),
    asyncGet,
    batchPut,
    scan,
  };
}

async function holepunch(dir: string): Promise<Row> {
  const RocksDB = require('rocksdb-native') as any;
  const db = new RocksDB(dir);
  await db.ready();
  let t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const w = db.write();
    for (let j = i; j < Math.min(N, i + 1000); j++) w.put(keys[j], value);
    await w.flush();
  }
  const batchPut = rate(N, t0);
  t0 = performance.now();
  for (let i = 0; i < N_ASYNC; i++) {
    const r = db.read();
    const v = r.get(keys[i]);
    r.tryFlush();
    await v;
  }
  const asyncGet = rate(N_ASYNC, t0);
  t0 = performance.now();
  let seen = 0;
  for await (const _ of db.iterator({ gte: Buffer.alloc(0) })) seen++;
  const scan = rate(seen, t0);
  const worker = await loadsInWorker('rocksdb-native');
  // seen here: close() of 3.18.1 never settled after an iterator had run, so it gets 2 s
  const closed = await Promise.race([
    db.close().then(() => true),
    new Promise((r) => setTimeout(r, 2000, false)).then(() => false),
  ]);
  return {
    binding: 'rocksdb-native',
    version: require('rocksdb-native/package').version,
    worker: closed ? worker : `${worker} (close() did not settle)`,
    asyncGet,
    batchPut,
    scan,
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const [name, run] of [
    ['@nxtedition/rocksdb', nxtedition],
    ['rocksdb', level],
    ['rocksdb-native', holepunch],
  ] as const) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-rdb-bench-'));
    try {
      rows.push(await run(dir));
    } catch (e) {
      console.error(`${name}: ${(e as Error).message}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const f = (n?: number) => (n === undefined ? '-' : n.toLocaleString('en-US'));
  console.log(
    `${N.toLocaleString('en-US')} keys (${N_ASYNC.toLocaleString('en-US')} for awaited gets), ops/s`,
  );
  console.log(
    '| binding | version | loads in a worker thread | awaited get | sync get | sync multi-get (1,000 random keys/call) | batched put (1,000/batch) | full scan |',
  );
  console.log('|---|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(
      `| ${r.binding} | ${r.version} | ${r.worker} | ${f(r.asyncGet)} | ${f(r.syncGet)} | ${f(r.multiGet)} | ${f(r.batchPut)} | ${f(r.scan)} |`,
    );
}

await main();
process.exit(0); // a binding that did not close must not keep the process
