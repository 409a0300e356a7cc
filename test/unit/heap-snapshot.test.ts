import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from '../../packages/api/src/index.js';
import { decodeRecords, normalizeKey } from '../../packages/core/src/index.js';
import { HeapKeyedStateBackend } from '../../packages/taskmanager/src/state/heap-keyed-state-backend.js';
import { collectBatches } from '../../packages/taskmanager/src/state/heap-snapshot.js';
import type {
  KeyedStateSnapshot,
  KeyedStateSnapshotMaterializer,
} from '../../packages/taskmanager/src/state/keyed-state-backend.js';
import { PreImages, copyValue } from '../../packages/taskmanager/src/state/copy-on-write-table.js';
import { createEventTimeState } from '../../packages/taskmanager/src/eventtime/event-time-state.js';
import {
  VOID_NAMESPACE_SERIALIZER,
  type InternalTimerService,
} from '../../packages/taskmanager/src/eventtime/internal-timer-service.js';
import { KeyGroupRange } from '../../packages/core/src/index.js';
import { ManualClock } from '../helpers/manual-clock.js';

const MAX_P = 128;
const KEYS = 40;

/** mulberry32: the same operations for a seed on every run */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Model = Map<string, Map<string | number, unknown>>;

/**
 * A heap backend with one state of every kind and a model of it (plain maps, the same
 * in-place mutations), driven by random operations, including the ones that mutate objects
 * the state handed out without writing them back.
 */
class Harness {
  readonly backend = new HeapKeyedStateBackend();
  readonly model: Model = new Map(['v', 'l', 'm', 'r', 'a'].map((n) => [n, new Map()]));
  private readonly v = this.backend.getState(new ValueStateDescriptor<{ n: number }>('v'));
  private readonly l = this.backend.getListState(new ListStateDescriptor<number>('l'));
  private readonly m = this.backend.getMapState(new MapStateDescriptor<string, { x: number }>('m'));
  private readonly r = this.backend.getReducingState(
    new ReducingStateDescriptor<number>('r', (a, b) => a + b),
  );
  private readonly a = this.backend.getAggregatingState(
    new AggregatingStateDescriptor<number, { sum: number; n: number }, number>('a', {
      createAccumulator: () => ({ sum: 0, n: 0 }),
      // mutates the accumulator in place, as aggregate functions commonly do
      add: (v, acc) => {
        acc.sum += v;
        acc.n++;
        return acc;
      },
      getResult: (acc) => acc.sum / acc.n,
    }),
  );

  constructor(private readonly rand: () => number) {
    this.backend.snapshotSlicing = { ms: 0, checkEvery: 1 }; // a slice per entry: the most interleaving
  }

  private int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  op(): void {
    const key = this.int(KEYS);
    const nk = normalizeKey(key);
    this.backend.setCurrentKey(key);
    const mv = this.model.get('v')!;
    const ml = this.model.get('l')!;
    const mm = this.model.get('m')!;
    const mr = this.model.get('r')!;
    const ma = this.model.get('a')!;
    const x = this.int(1000);
    switch (this.int(16)) {
      case 0:
        this.v.update({ n: x });
        mv.set(nk, { n: x });
        break;
      case 1: {
        const o = this.v.value();
        if (o) o.n++; // mutated in place, never written back
        const mo = mv.get(nk) as { n: number } | undefined;
        if (mo) mo.n++;
        break;
      }
      case 2:
        this.v.clear();
        mv.delete(nk);
        break;
      case 3:
        this.l.add(x);
        if (!ml.has(nk)) ml.set(nk, []);
        (ml.get(nk) as number[]).push(x);
        break;
      case 4:
        this.l.update([x, x + 1]);
        ml.set(nk, [x, x + 1]);
        break;
      case 5:
        this.l.clear();
        ml.delete(nk);
        break;
      case 6:
      case 7: {
        const uk = `u${this.int(5)}`;
        this.m.put(uk, { x });
        if (!mm.has(nk)) mm.set(nk, new Map());
        (mm.get(nk) as Map<string, { x: number }>).set(uk, { x });
        break;
      }
      case 8: {
        const uk = `u${this.int(5)}`;
        this.m.remove(uk);
        const inner = mm.get(nk) as Map<string, unknown> | undefined;
        if (inner) {
          inner.delete(uk);
          if (inner.size === 0) mm.delete(nk);
        }
        break;
      }
      case 9: {
        const uk = `u${this.int(5)}`;
        const o = this.m.get(uk);
        if (o) o.x++; // in place
        const mo = (mm.get(nk) as Map<string, { x: number }> | undefined)?.get(uk);
        if (mo) mo.x++;
        break;
      }
      case 10:
        this.m.clear();
        mm.delete(nk);
        break;
      case 11:
        this.r.add(x);
        mr.set(nk, ((mr.get(nk) as number | undefined) ?? 0) + x);
        break;
      case 12:
        this.r.clear();
        mr.delete(nk);
        break;
      case 13:
      case 14: {
        this.a.add(x);
        const acc = (ma.get(nk) as { sum: number; n: number } | undefined) ?? { sum: 0, n: 0 };
        acc.sum += x;
        acc.n++;
        ma.set(nk, acc);
        break;
      }
      default:
        this.a.clear();
        ma.delete(nk);
    }
  }

  /** The model in the snapshot's canonical form (map state as [user key, value] lists), copied. */
  expected(): Record<string, Array<[string | number, unknown]>> {
    const out: Record<string, Array<[string | number, unknown]>> = {};
    for (const [name, t] of this.model) {
      const rows: Array<[string | number, unknown]> = [];
      for (const [k, v] of t) rows.push([k, name === 'm' ? [...(v as Map<string, unknown>)] : v]);
      if (rows.length > 0) out[name] = sortRows(copyValue(rows) as Array<[string | number, unknown]>);
    }
    return out;
  }
}

function sortRows(rows: Array<[string | number, unknown]>): Array<[string | number, unknown]> {
  return rows.sort((a, b) => String(a[0]).localeCompare(String(b[0])));
}

/** A snapshot's entries, by state name, in the same form as Harness.expected(). */
function contents(snap: KeyedStateSnapshot | undefined): Record<string, Array<[string | number, unknown]>> {
  const out: Record<string, Array<[string | number, unknown]>> = {};
  if (!snap) return out;
  for (const [, [off, len]] of Object.entries(snap.index))
    for (const [name, k, v] of decodeRecords(snap.data.subarray(off, off + len)) as Array<
      [string, string | number, unknown]
    >)
      (out[name] ??= []).push([k, v]);
  for (const rows of Object.values(out)) sortRows(rows);
  return out;
}

/** Produces a snapshot batch by batch while `op` runs between the serializer's slices. */
async function materializeDuring(
  m: KeyedStateSnapshotMaterializer,
  op: () => void,
): Promise<{ snap: KeyedStateSnapshot | undefined; interleaved: number }> {
  let done = false;
  const p = collectBatches(m.batches!()).finally(() => (done = true));
  let interleaved = 0;
  while (!done) {
    op();
    interleaved++;
    await tick();
  }
  return { snap: await p, interleaved };
}

describe('heap snapshots are copy-on-write', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    test(`seed ${seed}: a snapshot equals the state at the barrier while every kind is changed during it`, async () => {
      const h = new Harness(rng(seed));
      for (let i = 0; i < 600; i++) h.op();
      const atBarrier = h.expected();
      const m = h.backend.snapshot(MAX_P);
      const { snap, interleaved } = await materializeDuring(m, () => {
        for (let i = 0; i < 3; i++) h.op();
      });
      assert.ok(interleaved > 20, `operations ran between the slices (${interleaved} times)`);
      assert.deepEqual(contents(snap), atBarrier);
      // the live state went on from the barrier: the copies were the snapshot's, not the user's
      assert.equal(h.backend.openSnapshotViews(), 0, 'the views are released');
      const after = h.expected();
      assert.deepEqual(contents(await h.backend.snapshot(MAX_P)()), after);
      // deletes during the snapshot left tombstones; none remain
      const live = Object.values(after).reduce((n, rows) => n + rows.length, 0);
      assert.equal(h.backend.storedEntries(), live, 'no tombstones left once the snapshot ended');
    });
  }

  test('two snapshots in progress at once each see their own barrier', async () => {
    const h = new Harness(rng(42));
    for (let i = 0; i < 400; i++) h.op();
    const first = h.expected();
    const m1 = h.backend.snapshot(MAX_P);
    for (let i = 0; i < 200; i++) h.op();
    const second = h.expected();
    const m2 = h.backend.snapshot(MAX_P);
    assert.equal(h.backend.openSnapshotViews(), 10, 'two views of five tables');
    const [a, b] = await Promise.all([
      materializeDuring(m1, () => h.op()),
      materializeDuring(m2, () => h.op()),
    ]);
    assert.deepEqual(contents(a.snap), first);
    assert.deepEqual(contents(b.snap), second);
    assert.equal(h.backend.openSnapshotViews(), 0);
    const live = Object.values(h.expected()).reduce((n, rows) => n + rows.length, 0);
    assert.equal(h.backend.storedEntries(), live);
  });

  test('a discarded snapshot releases its views and tombstones; the next one is exact', async () => {
    const h = new Harness(rng(7));
    for (let i = 0; i < 400; i++) h.op();
    const m = h.backend.snapshot(MAX_P);
    for (let i = 0; i < 400; i++) h.op(); // deletes among them leave tombstones
    m.discard!();
    assert.equal(h.backend.openSnapshotViews(), 0);
    const now = h.expected();
    assert.equal(
      h.backend.storedEntries(),
      Object.values(now).reduce((n, rows) => n + rows.length, 0),
    );
    assert.deepEqual(contents(await h.backend.snapshot(MAX_P)()), now);
  });

  test('a snapshot abandoned part-way (its writer stopped) releases its views', async () => {
    const h = new Harness(rng(9));
    for (let i = 0; i < 400; i++) h.op();
    const m = h.backend.snapshot(MAX_P);
    const it = m.batches!().batches[Symbol.asyncIterator]();
    await it.next();
    assert.equal(h.backend.openSnapshotViews(), 0, 'every table was read before the first batch');
    await it.return?.();
  });

  test('a value the codec refuses fails the snapshot naming the state, and releases the views', async () => {
    const b = new HeapKeyedStateBackend();
    b.snapshotSlicing = { ms: 0, checkEvery: 1 };
    const s = b.getState(new ValueStateDescriptor<unknown>('handle'));
    for (let k = 0; k < 10; k++) {
      b.setCurrentKey(k);
      s.update(k === 7 ? new (class Socketish {})() : k);
    }
    const m = b.snapshot(MAX_P);
    await assert.rejects(collectBatches(m.batches!()), /Cannot checkpoint keyed state 'handle'/);
    assert.equal(b.openSnapshotViews(), 0);
  });

  test('during a snapshot the user keeps the live objects; the snapshot gets copies', async () => {
    const b = new HeapKeyedStateBackend();
    b.snapshotSlicing = { ms: 0, checkEvery: 1 };
    const s = b.getState(new ValueStateDescriptor<{ n: number; tags: string[] }>('o'));
    const l = b.getListState(new ListStateDescriptor<number>('l'));
    b.setCurrentKey('k');
    const obj = { n: 1, tags: ['a'] };
    s.update(obj);
    l.add(1);
    const list = l.get();
    const m = b.snapshot(MAX_P);
    assert.equal(s.value(), obj, 'the same object, not a copy');
    assert.equal(l.get(), list);
    obj.n = 2;
    obj.tags.push('b');
    l.add(2);
    const snap = await m();
    assert.deepEqual(contents(snap), { o: [['k', { n: 1, tags: ['a'] }]], l: [['k', [1]]] });
    assert.deepEqual(s.value(), { n: 2, tags: ['a', 'b'] });
    assert.deepEqual(l.get(), [1, 2]);
  });

  test('pre-images answer has() exactly for number and string keys (the bit filter only skips lookups)', () => {
    for (const tableSize of [0, 100, 1_000_000]) {
      const pre = new PreImages(tableSize);
      const keys: Array<string | number> = [];
      for (let i = 0; i < 5000; i++) keys.push(i * 7, `key-${i}`, -i - 1, i + 0.5);
      assert.equal(pre.has(1), false, 'nothing saved yet');
      for (const k of keys) pre.set(k, k === 14 ? undefined : [k]);
      assert.equal(pre.size, keys.length);
      for (const k of keys) {
        assert.ok(pre.has(k), `saved key ${k}`);
        assert.deepEqual(pre.get(k), k === 14 ? undefined : [k]);
      }
      for (let i = 0; i < 5000; i++) {
        assert.equal(pre.has(i * 7 + 1), false);
        assert.equal(pre.has(`key-${i}x`), false);
        assert.equal(pre.has(`other-${i}`), false);
      }
      pre.clear();
      assert.equal(pre.has(7), false);
      assert.equal(pre.size, 0);
    }
  });

  test('the synchronous part does not depend on the number of keys', () => {
    const b = new HeapKeyedStateBackend();
    const s = b.getState(new ValueStateDescriptor<number>('count'));
    for (let k = 0; k < 300_000; k++) {
      b.setCurrentKey(k);
      s.update(k);
    }
    const t0 = performance.now();
    const m = b.snapshot(MAX_P);
    const syncMs = performance.now() - t0;
    m.discard!();
    assert.ok(syncMs < 5, `the synchronous part of a 300k-key snapshot took ${syncMs.toFixed(2)} ms`);
  });

  test('window state: the synchronous part does not depend on the number of entries (a view per state and key group)', async () => {
    const b = createEventTimeState(
      new HeapKeyedStateBackend(),
      'Window',
      MAX_P,
      new KeyGroupRange(0, MAX_P - 1),
    );
    await b.open();
    const contents = b.namespacedState().getListState<number>('contents');
    for (let k = 0; k < 100_000; k++) {
      b.setCurrentKey(k);
      contents.add(0, k);
      contents.add(1000, k);
    }
    // the least of three: a loaded machine may take the CPU away during one
    let syncMs = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const m = b.snapshot(MAX_P);
      syncMs = Math.min(syncMs, performance.now() - t0);
      m.discard!();
    }
    // a value the codec refuses fails the asynchronous part: nothing was serialized at the barrier
    b.setCurrentKey(-1);
    b.namespacedState()
      .getValueState<unknown>('bad')
      .update(0, () => 1);
    const m2 = b.snapshot(MAX_P);
    await assert.rejects(m2(), /Cannot checkpoint window state 'bad' of 'Window'/);
    assert.ok(
      syncMs < 5,
      `the synchronous part of a snapshot of 200k window entries took ${syncMs.toFixed(2)} ms`,
    );
  });

  test('heap timers: copied at the barrier, serialized later; the snapshot has the timers of the barrier', async () => {
    const range = new KeyGroupRange(0, MAX_P - 1);
    const make = async (): Promise<{
      backend: ReturnType<typeof createEventTimeState>;
      timers: InternalTimerService<undefined>;
    }> => {
      const heap = new HeapKeyedStateBackend();
      heap.snapshotSlicing = { ms: 0, checkEvery: 1 };
      const backend = createEventTimeState(heap, 'KeyedProcess: timers', MAX_P, range);
      const timers = backend.createTimerService<undefined>(
        VOID_NAMESPACE_SERIALIZER as never,
        new ManualClock(),
        { onEventTime: () => {}, onProcessingTime: () => {} },
      );
      await backend.open();
      return { backend, timers };
    };
    /** every timer as 'domain key ts', from the synchronous per-key-group snapshot */
    const timersOf = (t: InternalTimerService<undefined>): string[] => {
      const out: string[] = [];
      for (const [, bytes] of t.snapshot())
        for (const [d, k, , ts] of decodeRecords(bytes) as Array<[number, unknown, unknown, number]>)
          out.push(`${d} ${String(k)} ${ts}`);
      return out.sort();
    };
    const { backend, timers } = await make();
    const count = backend.getState(new ValueStateDescriptor<number>('count'));
    const r = rng(11);
    const op = (): void => {
      const k = Math.floor(r() * 300);
      backend.setCurrentKey(k);
      const ts = Math.floor(r() * 50);
      if (r() < 0.6) timers.registerEventTimeTimer(undefined, ts);
      else timers.deleteEventTimeTimer(undefined, ts);
      if (r() < 0.2) timers.registerProcessingTimeTimer(undefined, 1000 + ts);
      count.update((count.value() ?? 0) + 1);
    };
    for (let i = 0; i < 3000; i++) op();
    const atBarrier = timersOf(timers);
    const m = backend.snapshot(MAX_P);
    const { snap, interleaved } = await materializeDuring(m, () => {
      for (let i = 0; i < 5; i++) op();
    });
    assert.ok(interleaved > 20, `operations ran between the slices (${interleaved} times)`);
    assert.notDeepEqual(timersOf(timers), atBarrier, 'the timers changed during the snapshot');
    const restored = await make();
    for (const [, [off, len]] of Object.entries(snap!.index))
      restored.backend.restoreEntries(snap!.kinds, decodeRecords(snap!.data.subarray(off, off + len)));
    restored.backend.restoreFinished();
    assert.deepEqual(timersOf(restored.timers), atBarrier);
    timers.close();
    restored.timers.close();
  });
  test('namespaced (window) state: views at the barrier, serialized later; the snapshot has the state of the barrier', async () => {
    const range = new KeyGroupRange(0, MAX_P - 1);
    const make = async (): Promise<ReturnType<typeof createEventTimeState>> => {
      const heap = new HeapKeyedStateBackend();
      heap.snapshotSlicing = { ms: 0, checkEvery: 1 };
      const backend = createEventTimeState(heap, 'Window: contents', MAX_P, range);
      await backend.open();
      return backend;
    };
    /** every namespaced entry as 'name key namespace value', from the synchronous per-key-group snapshot */
    const entriesOf = (b: ReturnType<typeof createEventTimeState>): string[] => {
      const ns = b.namespacedState();
      const out: string[] = [];
      for (let kg = 0; kg < MAX_P; kg++) {
        const bytes = ns.snapshotKeyGroup(kg);
        if (bytes)
          for (const [name, k, v, w] of decodeRecords(bytes) as Array<[string, unknown, unknown, unknown]>)
            out.push(`${name} ${String(k)} ${String(w)} ${JSON.stringify(v)}`);
      }
      return out.sort();
    };
    const backend = await make();
    const ns = backend.namespacedState();
    const contents = ns.getListState<number>('contents');
    const acc = ns.getValueState<{ sum: number }>('acc');
    const r = rng(23);
    const op = (): void => {
      backend.setCurrentKey(Math.floor(r() * 200));
      const w = Math.floor(r() * 4) * 1000;
      const x = r();
      if (x < 0.5) {
        contents.add(w, Math.floor(r() * 100));
        const a = acc.get(w);
        // changed in place, never written back: the snapshot must hold the value of the barrier
        if (a) a.sum += 1;
        else acc.update(w, { sum: 1 });
      } else if (x < 0.65) {
        contents.clear(w);
        acc.clear(w);
      } else if (x < 0.8) (contents.get(w) as number[] | undefined)?.push(-1);
      else contents.update(w, [7, 8]);
    };
    for (let i = 0; i < 3000; i++) op();
    const atBarrier = entriesOf(backend);
    const m = backend.snapshot(MAX_P);
    const { snap, interleaved } = await materializeDuring(m, () => {
      for (let i = 0; i < 5; i++) op();
    });
    assert.ok(interleaved > 20, `operations ran between the slices (${interleaved} times)`);
    const live = entriesOf(backend);
    assert.notDeepEqual(live, atBarrier, 'the window state changed during the snapshot');
    const restored = await make();
    for (const [, [off, len]] of Object.entries(snap!.index))
      restored.restoreEntries(snap!.kinds, decodeRecords(snap!.data.subarray(off, off + len)));
    restored.restoreFinished();
    assert.deepEqual(entriesOf(restored), atBarrier);
    // the next snapshot (no views left open, no tombstones) is the live state
    const again = await backend.snapshot(MAX_P)();
    const next = await make();
    for (const [, [off, len]] of Object.entries(again!.index))
      next.restoreEntries(again!.kinds, decodeRecords(again!.data.subarray(off, off + len)));
    assert.deepEqual(entriesOf(next), live);
    assert.equal(ns.numEntries(), live.length);
  });
});
