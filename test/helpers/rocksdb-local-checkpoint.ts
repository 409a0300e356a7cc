// The state of the local-checkpoint tests (test/unit/rocksdb-local-checkpoint.test.ts): written
// the same way by the test and by the process it kills, and read back against what it should be.
import assert from 'node:assert/strict';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../../packages/api/src/index.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';

export const KEYS = 30_000;

const count = new ValueStateDescriptor<[number, number]>('count');
const tags = new MapStateDescriptor<string, number>('tags');
const seen = new ListStateDescriptor<number>('seen');

/**
 * Round `round` of writes: every key's count, a map entry on every 10th key, a list element on
 * every 7th; from round 1 on, every 5th key's count is cleared. Enough rows for RocksDB to flush
 * and compact its small memtables several times.
 */
export function writeRound(b: KeyedStateBackend, round: number): void {
  const c = b.getState(count);
  const m = b.getMapState(tags);
  const l = b.getListState(seen);
  for (let k = 0; k < KEYS; k++) {
    b.setCurrentKey(k);
    if (round > 0 && k % 5 === 0) c.clear();
    else c.update([k + round, round]);
    if (k % 10 === 0) m.put(`r${round}`, k);
    if (k % 7 === 0) l.add(k * 100 + round);
  }
}

/** Asserts that `b` holds the state after rounds 0 .. last, exactly. */
export function assertRounds(b: KeyedStateBackend, last: number): void {
  const c = b.getState(count);
  const m = b.getMapState(tags);
  const l = b.getListState(seen);
  for (let k = 0; k < KEYS; k++) {
    b.setCurrentKey(k);
    const expected = last > 0 && k % 5 === 0 ? undefined : [k + last, last];
    assert.deepEqual(c.value(), expected, `key ${k}: count`);
    const entries = [...m.entries()].sort();
    const rounds = Array.from({ length: last + 1 }, (_, r): [string, number] => [`r${r}`, k]);
    assert.deepEqual(entries, k % 10 === 0 ? rounds : [], `key ${k}: map`);
    const list = [...(l.get() ?? [])];
    const elems = Array.from({ length: last + 1 }, (_, r) => k * 100 + r);
    assert.deepEqual(list, k % 7 === 0 ? elems : [], `key ${k}: list`);
  }
}
