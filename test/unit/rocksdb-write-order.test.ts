import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeValue, decodeValues, normalizeKey } from '../../packages/core/src/index.js';
import { OpLog } from '../../packages/taskmanager/src/state/rocksdb/change-tracker.js';
import { pack } from '../../packages/taskmanager/src/state/rocksdb/held-values.js';
import {
  KEY_HEADER_BYTES,
  keyGroupOf,
  stateKeyPrefix,
} from '../../packages/taskmanager/src/state/rocksdb/key-layout.js';
import { OP_DELETE_KEY, OP_PUT } from '../../packages/taskmanager/src/state/rocksdb/snapshot-batches.js';
import { WriteOrder } from '../../packages/taskmanager/src/state/rocksdb/write-order.js';
import {
  PENDING_DELETE,
  PENDING_HELD,
  PendingValues,
} from '../../packages/taskmanager/src/state/rocksdb/pending-values.js';
import { ABSENT } from '../../packages/taskmanager/src/state/rocksdb/held-values.js';

const MAX_P = 128;

/** The keys in write order, sorted from a Map's keys and from an array (the same order, each key's position kept). */
function ordered(keys: Array<string | number>): Array<string | number> {
  const dirty = new Map(keys.map((k) => [k, 1] as const));
  const order = new WriteOrder();
  const runs: Array<Array<string | number>> = [];
  for (const given of [dirty, [...dirty.keys()]]) {
    const n = order.sort(given, MAX_P);
    const out: Array<string | number> = [];
    const positions = new Set<number>();
    for (let i = 0; i < n; i++) {
      const nk = order.nkAt(i);
      assert.equal(order.groupAt(i), keyGroupOf(stateKeyPrefix(1, nk, MAX_P)));
      assert.equal([...dirty.keys()][order.indexAt(i)], nk, `position of ${nk}`);
      positions.add(order.indexAt(i));
      out.push(nk);
    }
    assert.equal(positions.size, n, 'every position once');
    runs.push(out);
  }
  assert.deepEqual(runs[1], runs[0]);
  return runs[0]!;
}

describe('RocksDB write order', () => {
  it('orders unsigned 32-bit keys exactly as RocksDB orders their keys', () => {
    const keys = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1];
    for (let i = 0; i < 5000; i++) keys.push((Math.imul(i, 0x9e3779b1) >>> 0) % (i < 2500 ? 1000 : 2 ** 32));
    const unique = [...new Set(keys)];
    const got = ordered(unique);
    const want = [...unique].sort((a, b) =>
      Buffer.compare(stateKeyPrefix(1, a, MAX_P), stateKeyPrefix(1, b, MAX_P)),
    );
    assert.deepEqual(got, want);
  });

  it('orders other keys (strings, negative numbers, fractions, 2^32) by key group, each key once', () => {
    const keys: Array<string | number> = [-1, 1.5, 2 ** 32, 7];
    for (let i = 0; i < 500; i++) keys.push(normalizeKey(`key-${i}`));
    const got = ordered(keys);
    assert.deepEqual(new Set(got), new Set(keys));
    assert.equal(got.length, keys.length);
    const groups = got.map((k) => keyGroupOf(stateKeyPrefix(1, k, MAX_P)));
    assert.deepEqual(
      groups,
      [...groups].sort((a, b) => a - b),
    );
  });

  it('at any max parallelism (1000, 32768): key groups in order, keys in RocksDB order within each', () => {
    for (const maxP of [1000, 32768]) {
      const keys = [
        ...new Set(Array.from({ length: 3000 }, (_, i) => (Math.imul(i, 0x9e3779b1) >>> 0) % 100_000)),
      ];
      const order = new WriteOrder();
      const n = order.sort(keys, maxP);
      const got = Array.from({ length: n }, (_, i) => order.nkAt(i));
      const want = [...keys].sort((a, b) =>
        Buffer.compare(stateKeyPrefix(1, a, maxP), stateKeyPrefix(1, b, maxP)),
      );
      assert.deepEqual(got, want, `max parallelism ${maxP}`);
      for (let i = 0; i < n; i++) assert.equal(keys[order.indexAt(i)], got[i]);
    }
  });

  it('sorts more keys than its first array holds, and again after clear()', () => {
    const order = new WriteOrder();
    for (const size of [3000, 10]) {
      const dirty = new Map(Array.from({ length: size }, (_, i) => [size - i, 0] as const));
      assert.equal(order.sort(dirty, MAX_P), size);
      const seen = new Set<number>();
      for (let i = 0; i < size; i++) seen.add(order.nkAt(i) as number);
      assert.equal(seen.size, size);
      order.clear();
    }
  });

  it("sorts an array's first `count` keys only; clear() drops every key the sorts since held", () => {
    const order = new WriteOrder();
    const keys: Array<string | number> = Array.from({ length: 2000 }, (_, i) => normalizeKey(`k${i}`));
    assert.equal(order.sort(keys, MAX_P), 2000);
    // a later, shorter sort (the write buffer's arrays keep their length from flush to flush)
    const n = order.sort([5, 3, 9, 'stale', 'stale too'], MAX_P, 3);
    assert.equal(n, 3);
    assert.deepEqual(new Set(Array.from({ length: n }, (_, i) => order.nkAt(i))), new Set([3, 5, 9]));
    order.clear();
    const held = (order as unknown as { nks: unknown[] }).nks;
    assert.ok(
      held.every((k) => typeof k !== 'string'),
      'no key of either sort kept alive',
    );
  });
});

describe("a write buffer's pending values", () => {
  const at = (p: PendingValues, slot: number): unknown =>
    decodeValue(p.bytes.subarray(p.startOf(slot), p.endOf(slot)));

  it('hold the last value of each place; a rewrite that fits takes the old bytes, a longer one new ones', () => {
    const p = new PendingValues();
    p.set(0, [1, 2], true);
    p.set(1, 'abc', true);
    const start0 = p.startOf(0);
    const size = p.size;
    p.set(0, [3, 4], false);
    assert.deepEqual([p.startOf(0), p.size], [start0, size], 'in place');
    assert.deepEqual(at(p, 0), [3, 4]);
    p.set(0, [100_000, 2], false);
    assert.ok(p.startOf(0) > start0 && p.size > size, 'grown: appended');
    assert.deepEqual(at(p, 0), [100_000, 2]);
    assert.equal(at(p, 1), 'abc', 'the neighbour is untouched');
    p.set(1, ABSENT, false);
    assert.equal(p.startOf(1), PENDING_DELETE);
    p.set(1, { n: 1 }, false);
    assert.deepEqual(at(p, 1), { n: 1 });
    p.set(2, Buffer.from([0x91, 1]), true);
    assert.equal(p.startOf(2), PENDING_HELD);
  });

  it('after a reset, a place written first does not reuse bytes another place now holds', () => {
    const p = new PendingValues();
    for (let i = 0; i < 3000; i++) p.set(i, [i, `v${i}`], true);
    for (let i = 0; i < 3000; i++) assert.deepEqual(at(p, i), [i, `v${i}`]);
    p.reset();
    p.set(1, 'long value of place one', true);
    // place 0 held bytes at the start before the reset: a first write there must not go back
    p.set(0, 'x', true);
    assert.equal(at(p, 1), 'long value of place one');
    assert.equal(at(p, 0), 'x');
  });
});

describe('recorded delta operations (OpLog)', () => {
  it('splits into chunks of at most 256 KiB (one larger operation alone), every operation once, in order', () => {
    const log = new OpLog();
    const name = pack('s');
    const key = stateKeyPrefix(1, 0, MAX_P);
    const sizes = [10, 300_000, 10, ...Array.from({ length: 5000 }, (_, i) => 50 + (i % 200))];
    for (const [i, n] of sizes.entries()) {
      const k = stateKeyPrefix(1, i, MAX_P);
      log.add(OP_PUT, name, i === 0 ? key : k, KEY_HEADER_BYTES, pack('v'.repeat(n)));
    }
    log.add(OP_DELETE_KEY, name, key, KEY_HEADER_BYTES);
    const batches = log.batches();
    assert.ok(batches.length > 3, `${batches.length} chunks`);
    const ops: unknown[][] = [];
    for (const b of batches) {
      assert.ok(b.bytes.length <= 256 * 1024 || b.count === 1, `${b.bytes.length} bytes, ${b.count} ops`);
      const decoded = decodeValues(b.bytes) as unknown[][];
      assert.equal(decoded.length, b.count);
      ops.push(...decoded);
    }
    assert.equal(ops.length, sizes.length + 1);
    for (const [i, n] of sizes.entries()) assert.deepEqual(ops[i], [0, 's', i, 'v'.repeat(n)]);
    assert.deepEqual(ops[sizes.length], [1, 's', 0]);
    assert.equal(log.batches().length, batches.length, 'asking again adds nothing');
  });
});
