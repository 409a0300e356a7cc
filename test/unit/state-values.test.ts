import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
} from '../../packages/api/src/index.js';
import { decodeRecords } from '../../packages/core/src/index.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import { MAX_P, TestBackends } from '../helpers/state-backends.js';

const backends = new TestBackends();
after(() => backends.dispose());

type Kind = 'heap' | 'rocksdb, tiny cache' | 'rocksdb, large cache';

function make(kind: Kind): Promise<KeyedStateBackend> {
  if (kind === 'heap') return backends.open('heap');
  return backends.open(
    'rocksdb',
    kind === 'rocksdb, tiny cache'
      ? { maxBufferedEntries: 1, maxCachedEntries: 1 }
      : { maxBufferedEntries: 1_000_000, maxCachedEntries: 1_000_000 },
  );
}

/** Values of every type the codec keeps, as state values and as keys. */
const VALUE = {
  m: new Map<unknown, unknown>([
    [{ id: 1 }, new Set([1n, 'x'])],
    [2, new Date(1_700_000_000_123)],
  ]),
  big: 2n ** 70n,
  bytes: new Float32Array([1.5, -2]),
  u: undefined,
  n: null,
};
const KEYS: unknown[] = ['true', true, '[1,2]', [1, 2], 1, '1', 5n, new Date(7), new Map([['a', 1]])];

for (const kind of ['rocksdb, tiny cache', 'rocksdb, large cache'] as const) {
  describe(`RocksDB state reads are copies: ${kind}`, () => {
    test('mutating a read value without update() is never seen by the next read', async () => {
      const b = await make(kind);
      const s = b.getState(new ValueStateDescriptor<{ n: number; tags: string[] }>('v'));
      const list = b.getListState(new ListStateDescriptor<number[]>('l'));
      const map = b.getMapState(new MapStateDescriptor<string, { c: number }>('m'));
      for (let k = 0; k < 20; k++) {
        b.setCurrentKey(`k${k}`);
        s.update({ n: k, tags: ['a'] });
        list.add([k]);
        map.put('x', { c: k });
      }
      for (let round = 0; round < 3; round++) {
        for (let k = 0; k < 20; k++) {
          b.setCurrentKey(`k${k}`);
          const v = s.value()!;
          v.n = -1;
          v.tags.push('mutated');
          (list.get() as number[][])[0]!.push(99);
          map.get('x')!.c = -1;
        }
        for (let k = 0; k < 20; k++) {
          b.setCurrentKey(`k${k}`);
          assert.deepStrictEqual(s.value(), { n: k, tags: ['a'] }, `round ${round}, key ${k}`);
          assert.deepStrictEqual([...list.get()], [[k]]);
          assert.deepStrictEqual(map.get('x'), { c: k });
        }
      }
    });

    test('an object passed to update() and changed afterwards is stored as it was at update()', async () => {
      const b = await make(kind);
      const s = b.getState(new ValueStateDescriptor<{ n: number }>('v'));
      b.setCurrentKey('a');
      const obj = { n: 1 };
      s.update(obj);
      obj.n = 2;
      assert.deepStrictEqual(s.value(), { n: 1 });
    });
  });
}

for (const kind of ['heap', 'rocksdb, tiny cache', 'rocksdb, large cache'] as const) {
  describe(`state values and keys keep their types: ${kind}`, () => {
    test('values of every type, under keys that differ only in type, through snapshot and restore', async () => {
      const b = await make(kind);
      const s = b.getState(new ValueStateDescriptor<unknown>('v'));
      const map = b.getMapState(new MapStateDescriptor<unknown, unknown>('m'));
      KEYS.forEach((k, i) => {
        b.setCurrentKey(k);
        s.update({ ...VALUE, i });
        map.put([1, 2], i);
        map.put('[1,2]', -i);
      });
      const check = (x: KeyedStateBackend): void => {
        const xs = x.getState(new ValueStateDescriptor<unknown>('v'));
        const xm = x.getMapState(new MapStateDescriptor<unknown, unknown>('m'));
        KEYS.forEach((k, i) => {
          x.setCurrentKey(structuredClone(k));
          assert.deepStrictEqual(xs.value(), { ...VALUE, i }, `key ${String(k)}`);
          assert.equal(xm.get([1, 2]), i);
          assert.equal(xm.get('[1,2]'), -i);
        });
        assert.equal(x.numKeys(), KEYS.length);
      };
      check(b);
      const snap = await b.snapshot(MAX_P)();
      assert.ok(snap);
      for (const target of ['heap', 'rocksdb, tiny cache'] as const) {
        const r = await make(target);
        for (const [, [off, len]] of Object.entries(snap.index))
          r.restoreEntries(snap.kinds, decodeRecords(snap.data.subarray(off, off + len)));
        check(r);
      }
    });
  });
}

describe('state values the codec refuses', () => {
  class Session {
    started = 1;
  }
  test('RocksDB: update() fails at once, naming the state and the type', async () => {
    const b = await make('rocksdb, large cache');
    const s = b.getState(new ValueStateDescriptor<unknown>('session'));
    b.setCurrentKey('a');
    assert.throws(
      () => s.update({ s: new Session() }),
      /Cannot store keyed state 'session': the value\.s is an instance of class Session/,
    );
    const m = b.getMapState(new MapStateDescriptor<unknown, unknown>('bySession'));
    assert.throws(
      () => m.put(new Session(), 1),
      /Cannot store keyed state 'bySession': the map key is an instance/,
    );
  });
  test('heap: the checkpoint fails naming the state and the type', async () => {
    const b = await make('heap');
    const s = b.getState(new ValueStateDescriptor<unknown>('session'));
    b.setCurrentKey('a');
    s.update([new Session()]);
    await assert.rejects(
      async () => b.snapshot(MAX_P)(),
      /Cannot checkpoint keyed state 'session': the value\[0\] is an instance of class Session/,
    );
  });
});
