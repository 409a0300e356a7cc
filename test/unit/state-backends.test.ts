import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  StreamExecutionEnvironment,
  ValueStateDescriptor,
} from '../../packages/api/src/index.js';
import {
  assignToKeyGroup,
  buildJobGraph,
  computeKeyGroupRangeForOperatorIndex,
  decodeRecords,
  parseClusterConfig,
  parseConfigFile,
  parseMemorySize,
  type KeyGroupRange,
} from '../../packages/core/src/index.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import type { RocksDBKeyedStateBackend } from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { createKeyedStateBackend } from '../../packages/taskmanager/src/state/state-backends.js';
import { tempDir } from '../helpers/cli.js';
import { MAX_P, TestBackends } from '../helpers/state-backends.js';

const root = tempDir('weir-state-');
const backends = new TestBackends();

type Kind = 'heap' | 'rocksdb' | 'rocksdb, tiny buffer and cache';

/** A fresh, opened backend; RocksDB ones on real files under a temp directory. */
function make(kind: Kind): Promise<KeyedStateBackend> {
  if (kind === 'heap') return backends.open('heap');
  // bounds this small make nearly every access go through a flush or a cache drop
  return backends.open('rocksdb', kind === 'rocksdb' ? {} : { maxBufferedEntries: 3, maxCachedEntries: 5 });
}

/** Snapshot `from` and restore the key groups of `range` (all when absent) into `to`. */
async function copy(from: KeyedStateBackend, to: KeyedStateBackend, range?: KeyGroupRange): Promise<void> {
  const snap = await from.snapshot(MAX_P)();
  assert.ok(snap, 'a snapshot of non-empty state');
  for (const [kg, [off, len]] of Object.entries(snap.index)) {
    if (range && !range.contains(Number(kg))) continue;
    to.restoreEntries(snap.kinds, decodeRecords(snap.data.subarray(off, off + len)));
  }
}

const count = new ValueStateDescriptor<number>('count');
const withDefault = new ValueStateDescriptor<string>('label', 'none');
const items = new ListStateDescriptor<string>('items');
const attrs = new MapStateDescriptor<string, number>('attrs');
const sum = new ReducingStateDescriptor<number>('sum', (a, b) => a + b);
const avg = new AggregatingStateDescriptor<number, [number, number], number>('avg', {
  createAccumulator: () => [0, 0],
  add: (v, acc) => [acc[0] + v, acc[1] + 1],
  getResult: (acc) => acc[0] / acc[1],
});

/** Writes every state type for keys 0..n-1 (numbers) and a few tuple keys. */
function fill(b: KeyedStateBackend, n: number): void {
  for (let k = 0; k < n; k++) {
    b.setCurrentKey(k);
    b.getState(count).update(k * 10);
    b.getListState(items).addAll([`a${k}`, `b${k}`]);
    b.getMapState(attrs).putAll([
      [`x${k}`, k],
      ['y', -k - 1],
    ]);
    b.getReducingState(sum).add(k);
    b.getReducingState(sum).add(1);
    b.getAggregatingState(avg).add(k);
    b.getAggregatingState(avg).add(k + 2);
  }
  b.setCurrentKey(['tuple', 1]);
  b.getState(withDefault).update('tuple-label');
}

function check(b: KeyedStateBackend, keys: Iterable<number>): void {
  for (const k of keys) {
    b.setCurrentKey(k);
    assert.equal(b.getState(count).value(), k * 10, `count of ${k}`);
    assert.deepEqual([...b.getListState(items).get()], [`a${k}`, `b${k}`]);
    assert.deepEqual(
      new Map(b.getMapState(attrs).entries()),
      new Map([
        [`x${k}`, k],
        ['y', -k - 1],
      ]),
    );
    assert.equal(b.getReducingState(sum).get(), k + 1);
    assert.equal(b.getAggregatingState(avg).get(), k + 1);
    assert.equal(b.getState(withDefault).value(), 'none');
  }
}

function checkAbsent(b: KeyedStateBackend, k: number): void {
  b.setCurrentKey(k);
  assert.equal(b.getState(count).value(), undefined, `no count for ${k}`);
  assert.deepEqual([...b.getListState(items).get()], []);
  assert.ok(b.getMapState(attrs).isEmpty());
  assert.equal(b.getReducingState(sum).get(), undefined);
  assert.equal(b.getAggregatingState(avg).get(), undefined);
}

after(async () => {
  await backends.dispose();
  rmSync(root, { recursive: true, force: true });
});

for (const kind of ['heap', 'rocksdb', 'rocksdb, tiny buffer and cache'] as const) {
  describe(`keyed state backend: ${kind}`, () => {
    test('the keys -0 and 0 are one key (as in a Map), through flushes, snapshots and restores', async () => {
      const b = await make(kind);
      const v = b.getState(count);
      b.setCurrentKey(-0);
      v.update(1);
      b.setCurrentKey(0);
      assert.equal(v.value(), 1, '0 reads what -0 wrote');
      v.update(2);
      for (let i = 1; i <= 20; i++) {
        b.setCurrentKey(i);
        v.update(i);
      }
      b.setCurrentKey(-0);
      assert.equal(v.value(), 2, '-0 reads what 0 wrote');
      assert.equal(assignToKeyGroup(-0, MAX_P), assignToKeyGroup(0, MAX_P));
      const restored = await make(kind);
      await copy(b, restored);
      restored.setCurrentKey(-0);
      assert.equal(restored.getState(count).value(), 2);
      restored.setCurrentKey(0);
      assert.equal(restored.getState(count).value(), 2);
    });

    test('value state: default value, update, null and clear delete, keys isolated', async () => {
      const b = await make(kind);
      const v = b.getState(count);
      const d = b.getState(withDefault);
      b.setCurrentKey('a');
      assert.equal(v.value(), undefined);
      assert.equal(d.value(), 'none');
      v.update(1);
      d.update('A');
      b.setCurrentKey('b');
      assert.equal(v.value(), undefined, 'another key sees nothing');
      assert.equal(d.value(), 'none');
      v.update(2);
      for (let i = 0; i < 20; i++) {
        b.setCurrentKey(`filler-${i}`);
        v.update(i);
      }
      b.setCurrentKey('a');
      assert.equal(v.value(), 1);
      assert.equal(d.value(), 'A');
      v.update(null as unknown as number);
      assert.equal(v.value(), undefined);
      d.clear();
      assert.equal(d.value(), 'none');
      b.setCurrentKey('b');
      assert.equal(v.value(), 2);
      v.clear();
      assert.equal(v.value(), undefined);
      assert.equal(b.getState(count), v, 'the same state object for the same descriptor');
      assert.equal(b.numKeys(), 20);
      assert.equal(b.getCurrentKey(), 'b');
    });

    test('list state: add, addAll, update copies, update([]) and clear empty it', async () => {
      const b = await make(kind);
      const l = b.getListState(items);
      b.setCurrentKey(1);
      assert.deepEqual([...l.get()], []);
      l.add('x');
      l.addAll(['y', 'z']);
      b.setCurrentKey(2);
      assert.deepEqual([...l.get()], []);
      const input = ['p', 'q'];
      l.update(input);
      input.push('not in state');
      b.setCurrentKey(1);
      assert.deepEqual([...l.get()], ['x', 'y', 'z']);
      l.update([]);
      assert.deepEqual([...l.get()], []);
      b.setCurrentKey(2);
      assert.deepEqual([...l.get()], ['p', 'q']);
      l.clear();
      assert.deepEqual([...l.get()], []);
      assert.equal(b.numKeys(), 0);
    });

    test('map state: put, get, contains, remove, entries, keys, values, isEmpty, clear; keys isolated', async () => {
      const b = await make(kind);
      const m = b.getMapState(attrs);
      b.setCurrentKey('k1');
      assert.ok(m.isEmpty());
      m.put('a', 1);
      m.putAll([
        ['b', 2],
        ['c', 3],
      ]);
      m.put('a', 10);
      assert.equal(m.get('a'), 10);
      assert.ok(m.contains('b'));
      assert.ok(!m.contains('zz'));
      assert.equal(m.get('zz'), undefined);
      b.setCurrentKey('k2');
      assert.ok(m.isEmpty(), 'another key has its own map');
      m.put('a', -1);
      b.setCurrentKey('k1');
      m.remove('b');
      m.remove('not there');
      assert.ok(!m.contains('b'));
      assert.deepEqual([...m.entries()].sort(), [
        ['a', 10],
        ['c', 3],
      ]);
      assert.deepEqual([...m.keys()].sort(), ['a', 'c']);
      assert.deepEqual(
        [...m.values()].sort((x, y) => x - y),
        [3, 10],
      );
      assert.equal(b.numKeys(), 2);
      m.clear();
      assert.ok(m.isEmpty());
      assert.equal(m.get('a'), undefined);
      b.setCurrentKey('k2');
      assert.deepEqual([...m.entries()], [['a', -1]]);
      m.remove('a');
      assert.ok(m.isEmpty());
      assert.equal(b.numKeys(), 0, 'removing the last entry removes the key');
    });

    test('reducing and aggregating state fold values per key', async () => {
      const b = await make(kind);
      const r = b.getReducingState(sum);
      const a = b.getAggregatingState(avg);
      for (let i = 0; i < 30; i++) {
        b.setCurrentKey(i % 3);
        r.add(i);
        a.add(i);
      }
      b.setCurrentKey(0);
      assert.equal(r.get(), 0 + 3 + 6 + 9 + 12 + 15 + 18 + 21 + 24 + 27);
      assert.equal(a.get(), 13.5);
      r.clear();
      assert.equal(r.get(), undefined);
      b.setCurrentKey(2);
      assert.equal(a.get(), 15.5);
      b.setCurrentKey(99);
      assert.equal(r.get(), undefined);
      assert.equal(a.get(), undefined);
    });

    test('a state name keeps its kind', async () => {
      const b = await make(kind);
      b.getState(new ValueStateDescriptor('s'));
      assert.throws(
        () => b.getListState(new ListStateDescriptor('s')),
        /State 's' is already registered as value state, not list/,
      );
    });

    test('no state: the snapshot is empty', async () => {
      const b = await make(kind);
      b.getState(count);
      assert.equal(await b.snapshot(MAX_P)(), undefined);
    });

    test('a snapshot is the state at the moment of the synchronous part', async () => {
      const b = await make(kind);
      fill(b, 10);
      const materialize = b.snapshot(MAX_P);
      b.setCurrentKey(3);
      b.getState(count).update(-1);
      b.getListState(items).add('late');
      b.getMapState(attrs).put('late', 1);
      b.setCurrentKey(1000);
      b.getState(count).update(1);
      const snap = (await materialize())!;
      const restored = await make('heap');
      for (const [off, len] of Object.values(snap.index))
        restored.restoreEntries(snap.kinds, decodeRecords(snap.data.subarray(off, off + len)));
      check(restored, [0, 3, 9]);
      checkAbsent(restored, 1000);
      assert.deepEqual(snap.kinds, {
        count: 'value',
        items: 'list',
        attrs: 'map',
        sum: 'reducing',
        avg: 'aggregating',
        label: 'value',
      });
      for (const kg of Object.keys(snap.index).map(Number)) assert.ok(kg >= 0 && kg < MAX_P);
    });

    for (const other of ['heap', 'rocksdb'] as const) {
      test(`snapshot -> restoreEntries into ${other}: every state type, every key`, async () => {
        const from = await make(kind);
        fill(from, 40);
        const to = await make(other);
        await copy(from, to);
        check(
          to,
          Array.from({ length: 40 }, (_, i) => i),
        );
        to.setCurrentKey(['tuple', 1]);
        assert.equal(to.getState(withDefault).value(), 'tuple-label');
        assert.equal(to.numKeys(), 41);
        // and the restored state goes on working
        to.setCurrentKey(5);
        to.getListState(items).add('c5');
        assert.deepEqual([...to.getListState(items).get()], ['a5', 'b5', 'c5']);
      });
    }

    test('restore filters by key-group range: each subtask of a rescale gets exactly its keys', async () => {
      const from = await make(kind);
      fill(from, 60);
      const parts: KeyedStateBackend[] = [];
      for (let i = 0; i < 3; i++) {
        const range = computeKeyGroupRangeForOperatorIndex(MAX_P, 3, i);
        const to = await make(i === 1 ? 'heap' : 'rocksdb');
        await copy(from, to, range);
        const mine = Array.from({ length: 60 }, (_, k) => k).filter((k) =>
          range.contains(assignToKeyGroup(k, MAX_P)),
        );
        check(to, mine);
        for (let k = 0; k < 60; k++) if (!mine.includes(k)) checkAbsent(to, k);
        parts.push(to);
      }
      assert.equal(
        parts.reduce((s, p) => s + p.numKeys(), 0),
        61,
      );
    });
  });
}

describe('RocksDB state files', () => {
  test('one fresh directory per task attempt under the local directory, deleted on dispose', async () => {
    const local = path.join(root, 'local');
    const t = {
      jobId: 'job1',
      operatorId: 'uid-count',
      subtaskIndex: 0,
      attemptNumber: 0,
      maxParallelism: MAX_P,
      parallelism: 1,
    };
    const settings = { localDir: local, memory: { perSlot: 8 << 20 } };
    const a = createKeyedStateBackend('rocksdb', settings, t) as RocksDBKeyedStateBackend;
    const b = createKeyedStateBackend('rocksdb', settings, t) as RocksDBKeyedStateBackend;
    assert.notEqual(a.directory, b.directory, 'the same attempt twice still gets two directories');
    await a.open();
    await b.open();
    assert.equal(readdirSync(local).length, 2);
    a.setCurrentKey('k');
    a.getState(count).update(1);
    a.flush();
    b.setCurrentKey('k');
    assert.equal(b.getState(count).value(), undefined, 'nothing of another database is visible');
    await a.dispose();
    await a.dispose();
    assert.ok(!existsSync(a.directory));
    assert.throws(() => a.getState(count).value(), /used after it was disposed/);
    await b.dispose();
    assert.deepEqual(readdirSync(local), []);
  });

  test('an unusable local directory fails with the path named', async () => {
    const file = path.join(root, 'not-a-dir');
    writeFileSync(file, 'x');
    const b = createKeyedStateBackend(
      'rocksdb',
      { localDir: path.join(file, 'tm-1'), memory: { perSlot: 8 << 20 } },
      {
        jobId: 'j',
        operatorId: 'o',
        subtaskIndex: 0,
        attemptNumber: 0,
        maxParallelism: MAX_P,
        parallelism: 1,
      },
    );
    await assert.rejects(b.open(), (e: Error) => e.message.includes(path.join(file, 'tm-1')));
    await b.dispose();
  });

  test('dispose during a snapshot ends the snapshot with an error, not a crash', async () => {
    const b = await make('rocksdb');
    for (let k = 0; k < 5000; k++) {
      b.setCurrentKey(k);
      b.getState(count).update(k);
    }
    const materialize = b.snapshot(MAX_P);
    const p = materialize();
    await b.dispose();
    await p.then(
      (snap) => assert.ok(snap, 'finished before dispose'),
      (e: Error) => assert.match(e.message, /task ended while its RocksDB state was being snapshotted/),
    );
  });
});

describe('choosing the state backend', () => {
  test('configuration keys: state.backend.type (or state.backend), RocksDB directory and memory sizes', () => {
    const text = `
state:
  backend:
    type: rocksdb
    rocksdb:
      localdir: /var/weir/state
      block.cache-size: 64 mb
      writebuffer.size: 512kb
`;
    const c = parseClusterConfig(text, 'n.yaml');
    const file = parseConfigFile(text, 'n.yaml');
    assert.equal(c.stateBackend, 'rocksdb');
    assert.equal(file.get('state.backend.rocksdb.localdir'), '/var/weir/state');
    assert.equal(file.get('state.backend.rocksdb.block.cache-size'), 64 * 1024 * 1024);
    assert.equal(file.get('state.backend.rocksdb.writebuffer.size'), 512 * 1024);
    assert.equal(parseClusterConfig('state.backend: hashmap', 'f.yaml').stateBackend, 'heap');
    assert.equal(parseMemorySize(4096, 'k'), 4096);
    assert.equal(parseMemorySize('1g', 'k'), 1024 ** 3);
    assert.throws(
      () => parseClusterConfig('state.backend.type: leveldb', 'f.yaml'),
      /'state.backend.type'.*heap or hashmap or rocksdb/,
    );
    assert.throws(
      () => parseClusterConfig('state.backend.rocksdb.writebuffer.size: lots', 'f.yaml'),
      /'state.backend.rocksdb.writebuffer.size'.*memory size such as/,
    );
  });

  test('env.setStateBackend travels in the job graph; unset leaves the choice to the cluster', () => {
    const graph = (backend?: 'heap' | 'rocksdb') => {
      const env = StreamExecutionEnvironment.getExecutionEnvironment();
      if (backend) env.setStateBackend(backend);
      env
        .fromElements(1, 2)
        .keyBy((n) => n)
        .sinkTo({ createWriter: () => ({ write: () => {} }) });
      return buildJobGraph(env.getStreamGraph('j'));
    };
    assert.equal(graph('rocksdb').stateBackend, 'rocksdb');
    assert.equal(graph().stateBackend, undefined);
    assert.throws(
      () => StreamExecutionEnvironment.getExecutionEnvironment().setStateBackend('disk' as 'heap'),
      /Unknown state backend "disk"/,
    );
  });
});
