import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import {
  assignToKeyGroup,
  computeKeyGroupRangeForOperatorIndex,
  decodeRecords,
  decodeValue,
  FileCheckpointStorage,
  fileStorageUri,
  KeyGroupRange,
  normalizeKey,
} from '../../packages/core/src/index.js';
import { eventTimeStores } from '../../packages/taskmanager/src/eventtime/event-time-stores.js';
import {
  InternalTimerService,
  VOID_NAMESPACE_SERIALIZER,
} from '../../packages/taskmanager/src/eventtime/internal-timer-service.js';
import type { NamespacedKeyedState } from '../../packages/taskmanager/src/eventtime/namespaced-state.js';
import { RocksDbTimerQueue } from '../../packages/taskmanager/src/eventtime/rocksdb-timer-queue.js';
import { compareTimers, type InternalTimer } from '../../packages/taskmanager/src/eventtime/timer-heap.js';
import { HeapTimerQueue } from '../../packages/taskmanager/src/eventtime/timer-queue.js';
import {
  restoreFullBatch,
  restoreIncrementalState,
  type IncrementalKeyedHandle,
} from '../../packages/taskmanager/src/state/incremental-snapshot.js';
import type { KeyedStateBackend } from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import {
  RocksDBKeyedStateBackend,
  rocksDBDirectory,
} from '../../packages/taskmanager/src/state/rocksdb-keyed-state-backend.js';
import { AppendList, pack } from '../../packages/taskmanager/src/state/rocksdb/held-values.js';
import { decodeTimerKey, timerKey } from '../../packages/taskmanager/src/state/rocksdb/timer-keys.js';
import { tempDir } from '../helpers/cli.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { MAX_P, TestBackends } from '../helpers/state-backends.js';

const backends = new TestBackends();
const root = tempDir('weir-et-rocks-');
const storage = new FileCheckpointStorage(fileStorageUri(path.join(root, 'checkpoints')));
const incrementalOnes: KeyedStateBackend[] = [];
after(async () => {
  await backends.dispose();
  for (const b of incrementalOnes) await b.dispose();
  rmSync(root, { recursive: true, force: true });
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function rocks(bounds: { maxBufferedEntries?: number } = {}): Promise<RocksDBKeyedStateBackend> {
  return (await backends.open('rocksdb', bounds)) as RocksDBKeyedStateBackend;
}

async function incrementalRocks(): Promise<RocksDBKeyedStateBackend> {
  const b = new RocksDBKeyedStateBackend({
    directory: rocksDBDirectory(path.join(root, 'db'), {
      jobId: 'j',
      operatorId: 'op',
      subtaskIndex: incrementalOnes.length,
      attemptNumber: 0,
    }),
    maxParallelism: MAX_P,
    blockCacheSize: 1 << 20,
    writeBufferSize: 1 << 20,
    maxBufferedEntries: 64,
    incremental: true,
  });
  await b.open();
  incrementalOnes.push(b);
  return b;
}

const ALL = new KeyGroupRange(0, MAX_P - 1);
const rangeOf = (p: number, i: number): KeyGroupRange => computeKeyGroupRangeForOperatorIndex(MAX_P, p, i);

/** Keys of several kinds (numbers, strings, a string starting with NUL, tuples). */
function keyPool(n: number): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; out.length < n; i++) {
    out.push(i % 4 === 0 ? i - 50 : i % 4 === 1 ? `k${i}` : i % 4 === 2 ? ['t', i] : `\u0000x${i}`);
  }
  return out;
}

function randomScalar(r: () => number): string | number {
  const x = r();
  if (x < 0.1) return [0, -0, Infinity, -Infinity, -1.5, 2 ** 53][Math.floor(r() * 6)]!;
  if (x < 0.5) return Math.floor((r() - 0.5) * 1000) / (r() < 0.5 ? 1 : 7);
  const units = [0, 1, 0x41, 0x7f, 0xff, 0x100, 0xd800, 0xdc00, 0xfffe, 0xffff];
  let s = '';
  for (let i = Math.floor(r() * 4); i > 0; i--)
    s += String.fromCharCode(units[Math.floor(r() * units.length)]!);
  return s;
}

describe('RocksDB timer keys', () => {
  test('byte order of timer keys is compareTimers order within a key group; keys decode to what was encoded', () => {
    const r = rng(3);
    const timer = (ts: number, nk: string | number, ns: string | number): InternalTimer<unknown> => ({
      timestamp: ts,
      key: nk,
      normalizedKey: nk,
      keyGroup: 7,
      namespace: undefined,
      namespaceKey: ns,
      heapIndex: -1,
    });
    for (let i = 0; i < 20000; i++) {
      const a = [r() < 0.5 ? 5 : (randomScalar(r) as number), randomScalar(r), randomScalar(r)] as const;
      const b = [
        r() < 0.5 ? 5 : (randomScalar(r) as number),
        r() < 0.3 ? a[1] : randomScalar(r),
        randomScalar(r),
      ] as const;
      const ta = typeof a[0] === 'number' ? a[0] : 1;
      const tb = typeof b[0] === 'number' ? b[0] : 1;
      const ka = timerKey(3, 7, ta, a[1], a[2]);
      const kb = timerKey(3, 7, tb, b[1], b[2]);
      const want = Math.sign(compareTimers(timer(ta, a[1], a[2]), timer(tb, b[1], b[2])));
      assert.equal(Math.sign(ka.compare(kb)), want, JSON.stringify([ta, a[1], a[2], tb, b[1], b[2]]));
      const d = decodeTimerKey(ka);
      assert.ok(Object.is(d.timestamp, ta === 0 ? 0 : ta));
      assert.equal(d.normalizedKey === a[1] || (d.normalizedKey === 0 && a[1] === 0), true);
      assert.equal(d.namespaceKey === a[2] || (d.namespaceKey === 0 && a[2] === 0), true);
    }
  });
});

describe('AppendList', () => {
  test('appends to stored lists of every msgpack array header (fixarray, array16, array32) and grows', () => {
    for (const n of [0, 3, 15, 16, 20, 65535, 65536, 70000]) {
      const arr = Array.from({ length: n }, (_, i) => ({ i }));
      const list = new AppendList(n === 0 ? undefined : pack(arr));
      for (let j = 0; j < 100; j++) list.push(pack(['x', j]));
      const got = decodeValue(list.bytes()) as unknown[];
      assert.equal(got.length, n + 100);
      assert.deepEqual(got.slice(0, Math.min(n, 50)), arr.slice(0, 50));
      assert.deepEqual(got.at(-1), ['x', 99]);
    }
    assert.throws(() => new AppendList(pack('not a list')), /not a msgpack array/);
  });
});

describe('RocksDbTimerQueue', () => {
  test('a timer the cache gave back to RocksDB while its write was still buffered is found by the next reload', async () => {
    const b = await rocks({ maxBufferedEntries: 100_000 });
    const key = 'k';
    const kg = assignToKeyGroup(key, MAX_P);
    const ctx = {
      operatorName: 'op',
      maxParallelism: MAX_P,
      keyGroupRange: new KeyGroupRange(kg, kg),
      namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
    };
    const q = new RocksDbTimerQueue(b.eventTimeHost(), 'timers/event', ctx, { load: 1, max: 2 });
    for (const ts of [10, 20, 5]) assert.equal(q.add(ts, key, key, kg, undefined, 0), true);
    // the cache holds 5 and 10; 20 is only in the write buffer
    assert.deepEqual([q.poll()?.timestamp, q.poll()?.timestamp, q.poll()?.timestamp], [5, 10, 20]);
    assert.equal(q.poll(), undefined);
    assert.equal(q.size, 0);
  });

  test('with tiny caches it adds, dedups, deletes, peeks and polls exactly as the heap queue (random operations)', async () => {
    // a large write buffer: reloads must see the writes still buffered
    const b = await rocks({ maxBufferedEntries: 100_000 });
    const range = rangeOf(2, 1);
    const ctx = {
      operatorName: 'op',
      maxParallelism: MAX_P,
      keyGroupRange: range,
      namespaceSerializer: { toKey: (n: string | number) => n, fromKey: (k: string | number) => k },
    };
    const rq = new RocksDbTimerQueue(b.eventTimeHost(), 'timers/event', ctx, { load: 3, max: 5 });
    const hq = new HeapTimerQueue<string | number>(range);
    const keys = keyPool(200).filter((k) => range.contains(assignToKeyGroup(k, MAX_P)));
    const r = rng(11);
    const live: Array<[number, unknown, string | number]> = [];
    let polls = 0;
    let dupsSeen = 0;
    const same = (x: InternalTimer<unknown> | undefined, y: InternalTimer<unknown> | undefined): void => {
      if (!x || !y) return assert.equal(x, y);
      assert.deepEqual(
        [x.timestamp, x.key, x.normalizedKey, x.keyGroup, x.namespace, x.namespaceKey],
        [y.timestamp, y.key, y.normalizedKey, y.keyGroup, y.namespace, y.namespaceKey],
      );
    };
    for (let i = 0; i < 40000; i++) {
      const x = r();
      if (x < 0.6) {
        const k = keys[Math.floor(r() * keys.length)]!;
        const ns = r() < 0.5 ? 0 : `${Math.floor(r() * 3)}:9`;
        const ts = Math.floor(r() * 300) - 20;
        const nk = normalizeKey(k);
        const kg = assignToKeyGroup(k, MAX_P);
        const added = hq.add(ts, k, nk, kg, ns, ns);
        // false only for a timer surely queued (beyond its cache it cannot tell, and says true)
        if (added) assert.equal(rq.add(ts, k, nk, kg, ns, ns), true);
        else dupsSeen += rq.add(ts, k, nk, kg, ns, ns) ? 0 : 1;
        if (added) live.push([ts, k, ns]);
      } else if (x < 0.8) {
        // a live timer, or one that may not exist
        const [ts, k, ns] =
          live.length > 0 && r() < 0.7
            ? live[Math.floor(r() * live.length)]!
            : ([Math.floor(r() * 300), keys[Math.floor(r() * keys.length)]!, 0] as const);
        const kg = assignToKeyGroup(k, MAX_P);
        const removed = hq.delete(ts, normalizeKey(k), kg, ns);
        if (removed) assert.equal(rq.delete(ts, normalizeKey(k), kg, ns), true);
        else rq.delete(ts, normalizeKey(k), kg, ns);
      } else {
        same(rq.poll(), hq.poll());
        polls++;
      }
      if (i % 500 === 0) assert.equal(rq.size, hq.size);
      same(rq.peek(), hq.peek());
    }
    assert.equal(rq.size, hq.size);
    assert.ok(
      polls > 5000 && hq.size > 100 && dupsSeen > 10,
      `${polls} polls, ${hq.size} left, ${dupsSeen} dups`,
    );
    for (let kg = range.start; kg <= range.end; kg++) {
      const got: string[] = [];
      const want: string[] = [];
      rq.forEachInKeyGroup(kg, (k, ns, ts) => got.push(JSON.stringify([k, ns, ts])));
      hq.forEachInKeyGroup(kg, (k, ns, ts) => want.push(JSON.stringify([k, ns, ts])));
      assert.deepEqual(got.sort(), want.sort());
    }
    // a queue made over the same database finds the timers (restore) and drains in order
    b.flush();
    const again = new RocksDbTimerQueue(b.eventTimeHost(), 'timers/event', ctx, { load: 2, max: 4 });
    assert.equal(again.size, hq.size);
    while (hq.size > 0) same(again.poll(), hq.poll());
    assert.equal(again.poll(), undefined);
  });
});

interface Subtask {
  backend: KeyedStateBackend | undefined;
  state: NamespacedKeyedState;
  timers: InternalTimerService<undefined>;
  fired: string[];
  range: KeyGroupRange;
  clock: ManualClock;
}

function subtask(backend: KeyedStateBackend | undefined, range: KeyGroupRange): Subtask {
  const et = eventTimeStores(backend, {
    operatorName: 'op',
    maxParallelism: MAX_P,
    keyGroupRange: range,
  });
  const fired: string[] = [];
  const clock = new ManualClock();
  const timers = new InternalTimerService<undefined>({
    operatorName: 'op',
    maxParallelism: MAX_P,
    keyGroupRange: range,
    namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
    keyContext: et.state,
    processingTimeService: clock,
    target: {
      onEventTime: (t) => fired.push(`e ${t.timestamp} ${JSON.stringify(t.key)}`),
      onProcessingTime: (t) => fired.push(`p ${t.timestamp} ${JSON.stringify(t.key)}`),
    },
    timerQueues: et.timerQueues,
  });
  return { backend, state: et.state, timers, fired, range, clock };
}

/** Every namespaced entry and timer of a subtask, decoded from its per-key-group snapshots. */
function contents(s: Subtask): { state: string[]; timers: string[] } {
  const state: string[] = [];
  const timers: string[] = [];
  for (let kg = s.range.start; kg <= s.range.end; kg++) {
    const d = s.state.snapshotKeyGroup(kg);
    if (d) for (const e of decodeRecords(d)) state.push(JSON.stringify(e));
    const t = s.timers.snapshotKeyGroup(kg);
    if (t) for (const e of decodeRecords(t)) timers.push(JSON.stringify(e));
  }
  return { state: state.sort(), timers: timers.sort() };
}

function fire(s: Subtask): string[] {
  s.fired.length = 0;
  s.timers.advanceWatermark(Infinity);
  s.timers.onProcessingTime(Infinity);
  return [...s.fired];
}

describe('RocksDbNamespacedKeyedState and timers on the backends', () => {
  test('per-key-group snapshots: heap restores into RocksDB and RocksDB into the heap, equal contents and firing order', async () => {
    const keys = keyPool(120);
    const heap = subtask(undefined, ALL);
    fill(heap, keys, 5);
    const want = contents(heap);
    assert.ok(want.state.length > 300 && want.timers.length > 300);
    assert.ok(want.state.every((e) => (JSON.parse(e) as unknown[]).length === 4));
    // heap -> RocksDB
    const rocksSub = subtask(await rocks({ maxBufferedEntries: 100 }), ALL);
    for (let kg = 0; kg < MAX_P; kg++) {
      const d = heap.state.snapshotKeyGroup(kg);
      if (d) rocksSub.state.restoreKeyGroup(kg, d);
      const t = heap.timers.snapshotKeyGroup(kg);
      if (t) rocksSub.timers.restoreKeyGroup(kg, t);
    }
    assert.deepEqual(contents(rocksSub), want);
    assert.equal(rocksSub.state.numEntries(), heap.state.numEntries());
    // RocksDB -> heap
    const back = subtask(undefined, ALL);
    for (let kg = 0; kg < MAX_P; kg++) {
      const d = rocksSub.state.snapshotKeyGroup(kg);
      if (d) back.state.restoreKeyGroup(kg, d);
      const t = rocksSub.timers.snapshotKeyGroup(kg);
      if (t) back.timers.restoreKeyGroup(kg, t);
    }
    assert.deepEqual(contents(back), want);
    // same reads, same namespaces, same keys
    for (const k of keys) {
      for (const s of [rocksSub, back]) s.state.setCurrentKey(k);
      heap.state.setCurrentKey(k);
      assert.deepEqual(
        rocksSub.state.namespaces('window-contents').sort(),
        heap.state.namespaces('window-contents').sort(),
      );
      for (const ns of heap.state.namespaces('window-contents'))
        assert.deepEqual(
          rocksSub.state.getListState('window-contents').get(ns),
          heap.state.getListState('window-contents').get(ns),
        );
    }
    const keysOf = (s: Subtask): string[] => {
      const out: string[] = [];
      s.state.forEachKey('window:acc', (k, kg) => out.push(`${kg} ${JSON.stringify(k)}`));
      return out.sort();
    };
    assert.deepEqual(keysOf(rocksSub), keysOf(heap));
    const order = fire(heap);
    assert.ok(order.length > 300);
    assert.deepEqual(fire(rocksSub), order);
    assert.deepEqual(fire(back), order);
  });

  test("the RocksDB backend's full snapshot holds namespaced state and timers; restored by key group from 2 subtasks into 3 (RocksDB, RocksDB, heap) it equals one heap subtask", async () => {
    const keys = keyPool(150);
    const undisturbed = subtask(undefined, ALL);
    fill(undisturbed, keys, 8);
    // the same input on 2 RocksDB subtasks, each record routed by key group (one fill per subtask, same seed)
    const old = [0, 1].map((i) => ({ range: rangeOf(2, i) }));
    const oldSubs: Subtask[] = [];
    for (const { range } of old) {
      const s = subtask(await rocks({ maxBufferedEntries: 100 }), range);
      const mine = keys.filter((k) => range.contains(assignToKeyGroup(k, MAX_P)));
      fill(s, keys, 8, mine);
      oldSubs.push(s);
    }
    const snaps = await Promise.all(oldSubs.map((s) => s.backend!.snapshot(MAX_P)()));
    for (const snap of snaps) {
      assert.ok(snap);
      assert.equal(snap.kinds['window-contents'], 'namespaced');
      assert.equal(snap.kinds['timers/event'], 'timers');
      const [off, len] = Object.values(snap.index)[0]!;
      const entries = decodeRecords(snap.data.subarray(off, off + len)) as unknown[][];
      assert.ok(entries.some((e) => e[0] === 'window-contents' && e.length === 4 && Array.isArray(e[2])));
      assert.ok(entries.some((e) => e[0] === 'timers/event' && e.length === 4 && typeof e[2] === 'number'));
    }
    const fresh: Subtask[] = [];
    for (let i = 0; i < 3; i++) {
      const range = rangeOf(3, i);
      // the third new subtask is on the heap: a RocksDB checkpoint restores into the heap backend
      const b = i < 2 ? await rocks({ maxBufferedEntries: 100 }) : await backends.open('heap');
      // as task-state-restore does: the key groups of this subtask's range, then the operator opens
      for (const snap of snaps)
        for (const [kg, [off, len]] of Object.entries(snap!.index))
          if (range.contains(Number(kg)))
            restoreFullBatch(b, snap!.kinds, snap!.data.subarray(off, off + len));
      fresh.push(subtask(b, range));
    }
    const want = contents(undisturbed);
    const got = fresh.map(contents);
    // the earliest restored processing-time timer of each subtask is on its clock
    for (const [i, f] of fresh.entries()) {
      const earliest = Math.min(
        ...got[i]!.timers.map((e) => JSON.parse(e) as number[])
          .filter((e) => e[0] === 1)
          .map((e) => e[3]!),
      );
      assert.deepEqual(f.clock.pending(), [earliest]);
    }
    assert.deepEqual(got.flatMap((c) => c.state).sort(), want.state);
    assert.deepEqual(got.flatMap((c) => c.timers).sort(), want.timers);
    const order = fire(undisturbed);
    for (const f of fresh) {
      const own = fire(f);
      const set = new Set(own);
      assert.ok(own.length > 0);
      assert.deepEqual(
        own,
        order.filter((x) => set.has(x)),
      );
    }
  });

  test('timers restored into the RocksDB backend after its timer queues were made are found (the caches are read again)', async () => {
    const keys = keyPool(60);
    const src = subtask(await rocks({ maxBufferedEntries: 100 }), ALL);
    fill(src, keys, 21);
    const snap = (await src.backend!.snapshot(MAX_P)())!;
    const late = subtask(await rocks({ maxBufferedEntries: 100 }), ALL);
    late.state.setCurrentKey('extra');
    late.timers.registerEventTimeTimer(undefined, 500);
    assert.equal(late.timers.nextEventTimeTimer(), 500);
    for (const [off, len] of Object.values(snap.index))
      restoreFullBatch(late.backend!, snap.kinds, snap.data.subarray(off, off + len));
    src.state.setCurrentKey('extra');
    src.timers.registerEventTimeTimer(undefined, 500);
    assert.equal(late.timers.numEventTimeTimers(), src.timers.numEventTimeTimers());
    assert.deepEqual(fire(late), fire(src));
  });

  test('incremental checkpoints carry namespaced and timer changes as deltas; the chain restores into RocksDB and into the heap', async () => {
    const keys = keyPool(100);
    const src = subtask(await incrementalRocks(), ALL);
    fill(src, keys, 13);
    const checkpoint = async (id: number): Promise<IncrementalKeyedHandle> => {
      const h = await src.backend!.snapshotIncremental!(
        id,
        MAX_P,
      )(async (name, data) => {
        const w = await storage.write(`job/shared/${id}-${name}`, Buffer.concat(data));
        return { ...w, path: `../shared/${id}-${name}` };
      });
      src.backend!.notifyCheckpointComplete!(id);
      return h!;
    };
    const first = await checkpoint(1);
    assert.ok(Object.values(first.groups).every((chain) => chain.every((l) => l[3] === 1)));
    // a few changes: one window appended, one cleared, one timer added, one deleted
    const k = keys[0]!;
    src.state.setCurrentKey(k);
    src.state.getListState<{ n: number }>('window-contents').add('0:10', { n: -1 });
    src.state.getValueState<[number, string]>('window:acc').clear('10:20');
    src.timers.registerEventTimeTimer(undefined, 5000);
    const kg = assignToKeyGroup(k, MAX_P);
    const second = await checkpoint(2);
    const chain = second.groups[kg]!;
    assert.equal(chain.at(-1)![3], 0, 'the changed key group got a delta link');
    const deltas = Object.values(second.groups).flatMap((c) => c.filter((l) => l[3] === 0));
    assert.equal(deltas.length, 1, 'only the changed key group has a delta');
    const [fi, off, len] = chain.at(-1)!;
    const file = second.files[fi]!;
    const bytes = await storage.read(`job/shared/${path.basename(file.path)}`, file.sha256);
    const ops = decodeRecords(bytes.subarray(off, off + len)) as unknown[][];
    assert.ok(
      ops.some((o) => o[1] === 'window-contents'),
      JSON.stringify(ops),
    );
    assert.ok(ops.some((o) => o[1] === 'window:acc'));
    assert.ok(ops.some((o) => o[1] === 'timers/event' && o[4] === 5000));
    // restore the chain into a fresh RocksDB backend (and into the heap through per-key-group snapshots)
    const into = await rocks({ maxBufferedEntries: 100 });
    await restoreIncrementalState(`${storage.root}/job/chk-2`, [second], into, () => true);
    const restored = subtask(into, ALL);
    const intoHeap = await backends.open('heap');
    await restoreIncrementalState(`${storage.root}/job/chk-2`, [second], intoHeap, () => true);
    const onHeap = subtask(intoHeap, ALL);
    assert.equal(intoHeap.numKeys(), 0, 'no namespaced state or timer in the heap tables of keyed state');
    const want = contents(src);
    assert.deepEqual(contents(restored), want);
    assert.deepEqual(contents(onHeap), want);
    const order = fire(src);
    assert.deepEqual(fire(restored), order);
    assert.deepEqual(fire(onHeap), order);
  });
});

/**
 * Namespaced value and list state and event/processing timers from a seeded stream of keys;
 * with `mine`, only the records of those keys (the same random draws, so the union over
 * subtasks equals one subtask owning every key).
 */
function fill(s: Subtask, keys: unknown[], seed: number, mine: unknown[] = keys): void {
  const owned = new Set(mine.map((k) => JSON.stringify(k)));
  const r = rng(seed);
  const v = s.state.getValueState<[number, string]>('window:acc');
  const l = s.state.getListState<{ n: number }>('window-contents');
  for (let i = 0; i < 3000; i++) {
    const k = keys[Math.floor(r() * keys.length)]!;
    const w = `${Math.floor(r() * 5) * 10}:${Math.floor(r() * 5) * 10 + 10}`;
    const a = r();
    const c = r() < 0.05;
    const e = r() < 0.3 ? Math.floor(r() * 1000) : undefined;
    const p = r() < 0.1 ? Math.floor(r() * 1000) : undefined;
    if (!owned.has(JSON.stringify(k))) continue;
    s.state.setCurrentKey(k);
    if (a < 0.5) v.update(w, [i, `v${i}`]);
    else l.add(w, { n: i });
    if (c) v.clear(w);
    if (e !== undefined) s.timers.registerEventTimeTimer(undefined, e);
    if (p !== undefined) s.timers.registerProcessingTimeTimer(undefined, p);
  }
}
