// Measures ways of reading a RocksDB iterator of 500,000 state rows (bench/README.md, incremental checkpoints):
// node --import tsx bench/iterator-read.ts
import { RocksDBKeyedStateBackend } from '../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { ValueStateDescriptor } from '../packages/api/src/index.js';
const dir = `${process.env.TMPDIR ?? '/tmp'}/weir-iterator-read-${Date.now()}`;
const b = new RocksDBKeyedStateBackend({
  directory: dir,
  maxParallelism: 128,
  blockCacheSize: 8 << 20,
  writeBufferSize: 16 << 20,
});
await b.open();
const d = new ValueStateDescriptor<number>('count');
for (let k = 0; k < 500_000; k++) {
  b.setCurrentKey(k);
  b.getState(d).update(k);
}
b.flush();
const db = (b as any).db;
for (let round = 0; round < 3; round++) {
  for (const [name, size, flat] of [
    ['nextv(8192) pairs', 8192, false],
    ['_nextvAsync(8192) flat', 8192, true],
    ['_nextvAsync(16384) flat', 16384, true],
    ['_nextvAsync(65536) flat', 65536, true],
  ] as const) {
    const it = db.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const t0 = performance.now();
    let n = 0;
    for (;;) {
      if (flat) {
        const { rows, finished } = await it._nextvAsync(size, {});
        n += rows.length / 2;
        if (finished || rows.length === 0) break;
      } else {
        const rows = await it.nextv(size);
        n += rows.length;
        if (rows.length === 0) break;
      }
    }
    await it.close();
    console.log(`${name}: ${n} rows in ${(performance.now() - t0).toFixed(0)} ms`);
  }
  const t0 = performance.now();
  const snap = await b.snapshot(128)();
  console.log(
    `materialize (canonical): ${(performance.now() - t0).toFixed(0)} ms, ${snap!.data.byteLength} bytes`,
  );
}
await b.dispose();
