import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignNormalizedKeyToKeyGroup, normalizeKey } from '../../packages/core/src/index.js';
import { ChangeTracker } from '../../packages/taskmanager/src/state/rocksdb/change-tracker.js';
import { emptyChains, planGroups } from '../../packages/taskmanager/src/state/rocksdb/incremental-chains.js';
import {
  groupBound,
  keyGroupOf,
  normalizedKeyEnd,
  prefixEnd,
  stateIdOf,
  stateKeyPrefix,
} from '../../packages/taskmanager/src/state/rocksdb/key-layout.js';

describe('RocksDB key layout', () => {
  it('puts the key group first, then the state id, so byte order is key group order', () => {
    const maxParallelism = 128;
    const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
    const encoded = keys.map((k) => stateKeyPrefix(3, normalizeKey(k), maxParallelism));
    for (const [i, b] of encoded.entries()) {
      assert.equal(keyGroupOf(b), assignNormalizedKeyToKeyGroup(normalizeKey(keys[i]), maxParallelism));
      assert.equal(stateIdOf(b), 3);
    }
    const sorted = [...encoded].sort(Buffer.compare);
    const groups = sorted.map(keyGroupOf);
    assert.deepEqual(
      groups,
      [...groups].sort((a, b) => a - b),
    );
    // every key of key group g sorts before groupBound(g + 1)
    for (const b of encoded) assert.ok(Buffer.compare(b, groupBound(keyGroupOf(b) + 1)) < 0);
    for (const b of encoded) assert.ok(Buffer.compare(b, groupBound(keyGroupOf(b))) >= 0);
  });

  it('finds where the normalized key ends, for strings and numbers of every width', () => {
    for (const k of [
      '',
      'a',
      'x'.repeat(40),
      'y'.repeat(300),
      'z'.repeat(70_000),
      0,
      5,
      -3,
      200,
      70_000,
      2 ** 40,
      1.5,
    ]) {
      const p = stateKeyPrefix(1, k, 128);
      assert.equal(
        normalizedKeyEnd(Buffer.concat([p, Buffer.from([0xa1, 0x61])])),
        p.length,
        `key ${String(k).slice(0, 10)}`,
      );
    }
  });

  it('bounds a prefix scan by the first key after the prefix', () => {
    assert.deepEqual(prefixEnd(Buffer.from([1, 2, 3])), Buffer.from([1, 2, 4]));
    assert.deepEqual(prefixEnd(Buffer.from([1, 0xff, 0xff])), Buffer.from([2]));
    assert.equal(prefixEnd(Buffer.from([0xff, 0xff])), undefined);
    const prefix = stateKeyPrefix(2, 'k', 128);
    const end = prefixEnd(prefix)!;
    const inside = Buffer.concat([prefix, Buffer.from([0xff, 0xff, 0xff])]);
    assert.ok(Buffer.compare(inside, end) < 0);
    assert.ok(Buffer.compare(prefix, end) < 0);
    // the same key of the next state id is outside
    assert.ok(Buffer.compare(stateKeyPrefix(3, 'k', 128), end) >= 0);
  });
});

describe('ChangeTracker', () => {
  const key = (g: number, s: string): Buffer => Buffer.concat([groupBound(g), Buffer.from(s)]);

  it('starts as everything changed, then tracks keys per key group', () => {
    const t = new ChangeTracker();
    t.track(key(1, 'a'), 'k');
    const first = t.freeze(1);
    assert.deepEqual({ all: first.all, changed: first.changed }, { all: true, changed: new Map() });
    t.completed(1);
    t.track(key(1, 'a'), 'k');
    t.track(key(1, 'a'), 'k');
    t.track(key(2, 'b'), 'p');
    const { all, changed } = t.freeze(2);
    assert.equal(all, false);
    assert.deepEqual([...changed.keys()].sort(), [1, 2]);
    assert.deepEqual([...changed.get(1)!], ['k' + key(1, 'a').toString('latin1')]);
    assert.deepEqual([...changed.get(2)!], ['p' + key(2, 'b').toString('latin1')]);
  });

  it('keeps the changes of a checkpoint that did not complete for the next one', () => {
    const t = new ChangeTracker();
    t.reset();
    t.track(key(1, 'a'), 'k');
    t.freeze(1); // checkpoint 1 never completes
    t.track(key(1, 'b'), 'k');
    const second = t.freeze(2);
    assert.equal(second.changed.get(1)!.size, 2);
    t.completed(2);
    t.track(key(3, 'c'), 'k');
    assert.deepEqual([...t.freeze(3).changed.keys()], [3]);
  });

  it('gives up past maxTrackedKeys: the next checkpoint is full', () => {
    const t = new ChangeTracker(3);
    t.reset();
    for (const s of ['a', 'b', 'c', 'd']) t.track(key(1, s), 'k');
    assert.equal(t.freeze(1).all, true);
    t.completed(1);
    t.track(key(1, 'e'), 'k');
    const { all, changed } = t.freeze(2);
    assert.deepEqual(
      { all, changed },
      {
        all: false,
        changed: new Map([[1, new Set(['k' + key(1, 'e').toString('latin1')])]]),
      },
    );
  });
});

describe('planGroups (incremental chains)', () => {
  const keys = (n: number): Set<string> => new Set(Array.from({ length: n }, (_, i) => `k${i}`));
  const link = {
    file: { path: 'f', size: 1, sha256: '', checkpointId: 1 },
    offset: 0,
    length: 1,
    full: true,
  };

  it('writes a delta for a small change, and a group whole when half of it changed or its deltas outgrew it', () => {
    const base = emptyChains();
    base.groups.set(1, [link]).set(2, [link]).set(3, [link]);
    base.stats.set(1, { entries: 100, fullBytes: 1000, deltaBytes: 10 });
    base.stats.set(2, { entries: 100, fullBytes: 1000, deltaBytes: 10 });
    base.stats.set(3, { entries: 100, fullBytes: 1000, deltaBytes: 1001 });
    const changed = new Map([
      [2, keys(50)],
      [1, keys(3)],
      [3, keys(1)],
      [4, keys(1)], // new key group: no base, a delta
    ]);
    const { fullGroups, deltaGroups } = planGroups(base, changed, 64);
    assert.deepEqual(fullGroups, [2, 3]);
    assert.deepEqual(
      deltaGroups.map(([g]) => g),
      [1, 4],
    );
  });

  it('rewrites a key group whose chain reached its staggered limit, between half the maximum and the maximum', () => {
    const limits: number[] = [];
    for (let g = 0; g < 64; g++) {
      let n = 1;
      for (; n <= 8; n++) {
        const base = emptyChains();
        base.groups.set(
          g,
          // the full batch of a large key group spans two links: they count as one
          [link, link, ...Array.from({ length: n - 1 }, () => ({ ...link, full: false }))],
        );
        base.stats.set(g, { entries: 1000, fullBytes: 1000, deltaBytes: 0 });
        if (planGroups(base, new Map([[g, keys(1)]]), 8).fullGroups.length === 1) break;
      }
      limits.push(n);
    }
    assert.ok(limits.every((n) => n >= 4 && n <= 8));
    assert.ok(new Set(limits).size > 1, 'limits differ between key groups');
  });
});
