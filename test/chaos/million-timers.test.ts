import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/*
 * 1M pending event-time timers in RocksDB under a 64 MB JavaScript heap: registered through
 * the timer service, fired in the exact total order, with the live heap (after a GC) staying
 * small. The same timers on the heap do not fit in that heap, which shows the limit binds.
 * Long (about 20-45 s on 2 shared cores), so it runs in `npm run chaos`, not `npm test`.
 */
const main = fileURLToPath(new URL('../helpers/million-timers-main.ts', import.meta.url));
const HEAP_MB = 64;

function run(kind: 'rocksdb' | 'heap'): ReturnType<typeof spawnSync> {
  return spawnSync(
    process.execPath,
    [`--max-old-space-size=${HEAP_MB}`, '--expose-gc', '--import', 'tsx', main, kind],
    { encoding: 'utf8', env: { ...process.env, TIMERS: '1000000' }, timeout: 600_000 },
  );
}

test(`1M event-time timers in RocksDB fire in exact order under a ${HEAP_MB} MB heap; on the heap they do not fit`, () => {
  const r = run('rocksdb');
  assert.equal(r.status, 0, `${String(r.stderr)}\n${String(r.stdout)}`);
  const out = JSON.parse(String(r.stdout).trim().split('\n').at(-1)!) as {
    registered: number;
    fired: number;
    maxHeapUsed: number;
    registerMs: number;
    fireMs: number;
  };
  console.log(`rocksdb: ${JSON.stringify(out)}`);
  assert.equal(out.registered, 1_000_000);
  assert.equal(out.fired, 1_000_000);
  assert.ok(out.maxHeapUsed < 48 * 1024 * 1024, `live heap reached ${out.maxHeapUsed} bytes`);
  const heap = run('heap');
  assert.notEqual(
    heap.status,
    0,
    'the heap timer queue held 1M timers in 64 MB; the test no longer shows anything',
  );
  assert.match(String(heap.stderr), /heap out of memory/);
});
