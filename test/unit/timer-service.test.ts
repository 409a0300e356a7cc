import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assignToKeyGroup,
  computeKeyGroupRangeForOperatorIndex,
  KeyGroupRange,
} from '../../packages/core/src/index.js';
import {
  InternalTimerService,
  VOID_NAMESPACE_SERIALIZER,
} from '../../packages/taskmanager/src/eventtime/internal-timer-service.js';
import {
  TimerHeap,
  compareTimers,
  type InternalTimer,
} from '../../packages/taskmanager/src/eventtime/timer-heap.js';
import { TimeWindow } from '../../packages/api/src/eventtime/index.js';
import { eventTimeStateFor } from '../helpers/event-time-state.js';
import { ManualClock } from '../helpers/manual-clock.js';

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

const MAX_P = 128;

function makeService<N>(
  range: KeyGroupRange,
  clock: ManualClock,
  fired: string[],
  serializer = VOID_NAMESPACE_SERIALIZER as never,
): { service: InternalTimerService<N>; key: { current: unknown } } {
  const key = { current: undefined as unknown };
  const keyContext = {
    getCurrentKey: () => key.current,
    setCurrentKey: (k: unknown) => (key.current = k),
  };
  const service: InternalTimerService<N> = new InternalTimerService<N>({
    operatorName: 'KeyedProcess: alerts',
    maxParallelism: MAX_P,
    keyGroupRange: range,
    namespaceSerializer: serializer,
    keyContext,
    processingTimeService: clock,
    target: {
      onEventTime: (t: InternalTimer<N>) => {
        assert.equal(key.current, t.key, 'the timer key is the current key while it fires');
        fired.push(`e ${t.timestamp} ${String(t.key)} ${t.namespaceKey}`);
      },
      onProcessingTime: (t: InternalTimer<N>) => {
        assert.equal(key.current, t.key);
        fired.push(`p ${t.timestamp} ${String(t.key)} ${t.namespaceKey}`);
      },
    },
    timerQueues: eventTimeStateFor('KeyedProcess: alerts', range).timerQueues,
  });
  return { service, key };
}

const ALL = new KeyGroupRange(0, MAX_P - 1);

describe('TimerHeap', () => {
  test('polls in the total order, with deletes anywhere (random, vs a sorted reference)', () => {
    const r = rng(5);
    const heap = new TimerHeap<undefined>();
    const live: InternalTimer<undefined>[] = [];
    const polled: InternalTimer<undefined>[] = [];
    for (let i = 0; i < 20000; i++) {
      const x = r();
      if (x < 0.6 || live.length === 0) {
        const key = Math.floor(r() * 50);
        const t: InternalTimer<undefined> = {
          timestamp: Math.floor(r() * 1000),
          key,
          normalizedKey: key,
          keyGroup: key % 7,
          namespace: undefined,
          namespaceKey: 0,
          heapIndex: -1,
        };
        heap.add(t);
        live.push(t);
      } else if (x < 0.8) {
        const i2 = Math.floor(r() * live.length);
        heap.remove(live[i2]!);
        live.splice(i2, 1);
      } else {
        const t = heap.poll()!;
        const ref = [...live].sort(compareTimers)[0]!;
        assert.equal(compareTimers(t, ref), 0);
        live.splice(live.indexOf(t), 1);
        polled.push(t);
      }
      assert.equal(heap.size, live.length);
    }
    assert.ok(polled.length > 1000);
  });
});

describe('InternalTimerService', () => {
  test('event-time timers fire in timestamp order up to the watermark, deduplicated, with their key current', () => {
    const r = rng(9);
    const fired: string[] = [];
    const { service, key } = makeService<undefined>(ALL, new ManualClock(), fired);
    const reference = new Map<string, [number, string]>();
    for (let i = 0; i < 5000; i++) {
      const k = `user-${Math.floor(r() * 200)}`;
      const ts = Math.floor(r() * 10000);
      key.current = k;
      if (r() < 0.8) {
        service.registerEventTimeTimer(undefined, ts);
        reference.set(`${k}|${ts}`, [ts, k]);
      } else {
        service.deleteEventTimeTimer(undefined, ts);
        reference.delete(`${k}|${ts}`);
      }
    }
    assert.equal(service.numEventTimeTimers(), reference.size);
    const sorted = [...reference.values()].sort((a, b) => a[0] - b[0]);
    // fire in three steps; nothing above the watermark fires
    for (const wm of [2500, 7000, Infinity]) {
      fired.length = 0;
      service.advanceWatermark(wm);
      const due = sorted.filter(([ts]) => ts <= wm);
      sorted.splice(0, due.length);
      assert.deepEqual(
        fired.map((f) => Number(f.split(' ')[1])),
        due.map(([ts]) => ts),
      );
      assert.deepEqual([...fired].sort(), due.map(([ts, k]) => `e ${ts} ${k} 0`).sort());
      assert.equal(service.currentWatermark(), wm);
    }
    assert.equal(service.numEventTimeTimers(), 0);
  });

  test('a timer registered while firing that is already due fires in the same advance', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const key = { current: 'a' as unknown };
    const service: InternalTimerService<undefined> = new InternalTimerService<undefined>({
      operatorName: 'op',
      maxParallelism: MAX_P,
      keyGroupRange: ALL,
      namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
      keyContext: { getCurrentKey: () => key.current, setCurrentKey: (k) => (key.current = k) },
      processingTimeService: clock,
      target: {
        onEventTime: (t) => {
          fired.push(`${t.timestamp}`);
          if (t.timestamp === 10) service.registerEventTimeTimer(undefined, 15);
        },
        onProcessingTime: () => {},
      },
      timerQueues: eventTimeStateFor('op', ALL).timerQueues,
    });
    service.registerEventTimeTimer(undefined, 10);
    service.registerEventTimeTimer(undefined, 30);
    service.advanceWatermark(20);
    assert.deepEqual(fired, ['10', '15']);
  });

  test('processing-time timers fire from one physical timer at the earliest due time', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const { service, key } = makeService<undefined>(ALL, clock, fired);
    key.current = 'k1';
    service.registerProcessingTimeTimer(undefined, 500);
    assert.deepEqual(clock.pending(), [500]);
    service.registerProcessingTimeTimer(undefined, 300); // earlier: reschedules
    assert.deepEqual(clock.pending(), [300]);
    key.current = 'k2';
    service.registerProcessingTimeTimer(undefined, 400); // later than the head: no new physical timer
    service.registerProcessingTimeTimer(undefined, 400); // duplicate
    assert.deepEqual(clock.pending(), [300]);
    assert.equal(service.numProcessingTimeTimers(), 3);
    clock.advance(450);
    assert.deepEqual(fired, ['p 300 k1 0', 'p 400 k2 0']);
    assert.deepEqual(clock.pending(), [500]);
    key.current = 'k1';
    service.deleteProcessingTimeTimer(undefined, 500);
    clock.advance(600);
    assert.deepEqual(fired, ['p 300 k1 0', 'p 400 k2 0']);
  });

  test('timers are unique per (key, namespace, timestamp); number and string keys stay apart', () => {
    const fired: string[] = [];
    const { service, key } = makeService<TimeWindow>(
      ALL,
      new ManualClock(),
      fired,
      TimeWindow.serializer as never,
    );
    for (const k of [1, '1']) {
      key.current = k;
      service.registerEventTimeTimer(new TimeWindow(0, 10), 9);
      service.registerEventTimeTimer(new TimeWindow(0, 10), 9);
      service.registerEventTimeTimer(new TimeWindow(5, 10), 9);
    }
    assert.equal(service.numEventTimeTimers(), 4);
    key.current = 1;
    service.deleteEventTimeTimer(new TimeWindow(0, 10), 9);
    assert.equal(service.numEventTimeTimers(), 3);
    service.advanceWatermark(9);
    // left: (1, 5:10), ('1', 0:10), ('1', 5:10)
    assert.deepEqual(fired.sort(), ['e 9 1 0:10', 'e 9 1 5:10', 'e 9 1 5:10']);
  });

  test('a key outside the subtask range or a missing key fails with a clear error', () => {
    const range = computeKeyGroupRangeForOperatorIndex(MAX_P, 2, 0);
    const { service, key } = makeService<undefined>(range, new ManualClock(), []);
    let foreign = 0;
    while (range.contains(assignToKeyGroup(foreign, MAX_P))) foreign++;
    key.current = foreign;
    assert.throws(
      () => service.registerEventTimeTimer(undefined, 1),
      /'KeyedProcess: alerts' got a timer of key group \d+, outside its KeyGroupRange\{0\.\.63\}/,
    );
    key.current = undefined;
    assert.throws(
      () => service.registerEventTimeTimer(undefined, 1),
      /registered a timer without a current key; timers need a keyed stream/,
    );
  });

  test('snapshot per key group and restore at another parallelism fires the same timers in the same order', () => {
    const r = rng(21);
    const regs: [unknown, number, boolean][] = [];
    for (let i = 0; i < 3000; i++) {
      const k = r() < 0.5 ? Math.floor(r() * 300) : ['tuple', Math.floor(r() * 30)];
      regs.push([k, Math.floor(r() * 5000), r() < 0.7]);
    }
    // undisturbed: one subtask owning everything
    const undisturbed: string[] = [];
    const u = makeService<undefined>(ALL, new ManualClock(), undisturbed);
    for (const [k, ts, ev] of regs) {
      u.key.current = k;
      if (ev) u.service.registerEventTimeTimer(undefined, ts);
      else u.service.registerProcessingTimeTimer(undefined, ts);
    }
    // two subtasks register by key group, fire up to 1000, snapshot
    const old = [0, 1].map((i) =>
      makeService<undefined>(computeKeyGroupRangeForOperatorIndex(MAX_P, 2, i), new ManualClock(), []),
    );
    for (const [k, ts, ev] of regs) {
      const owner =
        old[computeKeyGroupRangeForOperatorIndex(MAX_P, 2, 0).contains(assignToKeyGroup(k, MAX_P)) ? 0 : 1]!;
      owner.key.current = k;
      if (ev) owner.service.registerEventTimeTimer(undefined, ts);
      else owner.service.registerProcessingTimeTimer(undefined, ts);
    }
    u.service.advanceWatermark(1000);
    const firedBefore = undisturbed.length;
    for (const o of old) o.service.advanceWatermark(1000);
    const snapshots = new Map<number, Uint8Array>();
    for (const o of old) for (const [kg, data] of o.service.snapshot()) snapshots.set(kg, data);
    // restore into three subtasks
    const restoredFired: string[][] = [[], [], []];
    const clocks = [new ManualClock(), new ManualClock(), new ManualClock()];
    const fresh = [0, 1, 2].map((i) =>
      makeService<undefined>(
        computeKeyGroupRangeForOperatorIndex(MAX_P, 3, i),
        clocks[i]!,
        restoredFired[i]!,
      ),
    );
    for (const [kg, data] of snapshots) {
      const i = fresh.findIndex((_, j) => computeKeyGroupRangeForOperatorIndex(MAX_P, 3, j).contains(kg));
      fresh[i]!.service.restoreKeyGroup(kg, data);
    }
    for (const f of fresh) f.service.restoreWatermark(1000);
    const total = fresh.reduce(
      (n, f) => n + f.service.numEventTimeTimers() + f.service.numProcessingTimeTimers(),
      0,
    );
    assert.equal(total, u.service.numEventTimeTimers() + u.service.numProcessingTimeTimers());
    // every restored subtask scheduled its earliest processing-time timer
    for (let i = 0; i < 3; i++) {
      const head = Math.min(...clocks[i]!.pending());
      assert.ok(Number.isFinite(head));
    }
    u.service.advanceWatermark(Infinity);
    for (const f of fresh) f.service.advanceWatermark(Infinity);
    const after = undisturbed.slice(firedBefore);
    // the union of the restored subtasks' firings is the undisturbed firing, and each subtask's
    // own firing order is the undisturbed order restricted to its keys
    assert.deepEqual(restoredFired.flat().sort(), [...after].sort());
    for (const own of restoredFired) {
      const set = new Set(own);
      assert.deepEqual(
        own,
        after.filter((f) => set.has(f)),
      );
    }
    // restoring a key group into the wrong subtask is refused
    const [kg, data] = [...snapshots][0]!;
    const wrong = fresh.find((_, j) => !computeKeyGroupRangeForOperatorIndex(MAX_P, 3, j).contains(kg))!;
    assert.throws(() => wrong.service.restoreKeyGroup(kg, data), /outside its KeyGroupRange/);
  });

  test('no quadratic path: 200k timers register and fire within a generous bound (a quadratic queue needs ~10^10 steps)', () => {
    const fired: string[] = [];
    let count = 0;
    const key = { current: 0 as unknown };
    const service = new InternalTimerService<undefined>({
      operatorName: 'op',
      maxParallelism: MAX_P,
      keyGroupRange: ALL,
      namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
      keyContext: { getCurrentKey: () => key.current, setCurrentKey: (k) => (key.current = k) },
      processingTimeService: new ManualClock(),
      target: { onEventTime: () => count++, onProcessingTime: () => {} },
      timerQueues: eventTimeStateFor('op', ALL).timerQueues,
    });
    const n = 200_000;
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      key.current = i % 10_000;
      service.registerEventTimeTimer(undefined, (i * 7919) % n);
    }
    service.advanceWatermark(Infinity);
    const ms = performance.now() - start;
    assert.equal(count, n);
    assert.equal(fired.length, 0);
    assert.ok(ms < 30_000, `200k timers took ${ms.toFixed(0)} ms`);
  });
});
