import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AggregatingStateDescriptor,
  ValueStateDescriptor,
  type AggregateFunction,
  type Collector,
} from '../../packages/api/src/index.js';
import type { TimeWindow } from '../../packages/api/src/eventtime/index.js';
import {
  CountEvictor,
  CountTrigger,
  EventTimeSessionWindows,
  GlobalWindows,
  OutputTag,
  ProcessWindowFunction,
  ProcessingTimeSessionWindows,
  PurgingTrigger,
  SlidingEventTimeWindows,
  TimeEvictor,
  Trigger,
  TriggerResult,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  type Window,
  type WindowAssigner,
} from '../../packages/api/src/eventtime/index.js';
import {
  assignToKeyGroup,
  computeKeyGroupRangeForOperatorIndex,
  KeyGroupRange,
} from '../../packages/core/src/index.js';
import { InternalTimerService } from '../../packages/taskmanager/src/eventtime/internal-timer-service.js';
import type { NamespacedKeyedState } from '../../packages/taskmanager/src/eventtime/namespaced-state.js';
import {
  WindowOperator,
  type WindowOperatorOptions,
} from '../../packages/taskmanager/src/eventtime/window-operator.js';
import { eventTimeStateFor } from '../helpers/event-time-state.js';
import { ManualClock } from '../helpers/manual-clock.js';

const MAX_P = 128;
const ALL = new KeyGroupRange(0, MAX_P - 1);

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

interface Emitted {
  value: unknown;
  ts: number | undefined;
}

type Opts<IN, W extends Window> = Omit<
  WindowOperatorOptions<IN, unknown, unknown, unknown, unknown, W>,
  'state' | 'timers' | 'output' | 'operatorName'
>;

interface Snapshot {
  state: Map<number, Uint8Array>;
  timers: Map<number, Uint8Array>;
  watermark: number;
}

/**
 * A window operator wired to namespaced state and a timer service (on the heap, or in RocksDB
 * when the file runs through window-operator-rocksdb.test.ts) and a manual clock, as the task
 * will wire it.
 */
class Harness<IN, W extends Window> {
  readonly out: Emitted[] = [];
  readonly side: Emitted[] = [];
  readonly clock: ManualClock;
  readonly state: NamespacedKeyedState;
  readonly timers: InternalTimerService<W>;
  readonly op: WindowOperator<IN, unknown, unknown, unknown, unknown, W>;

  constructor(
    readonly opts: Opts<IN, W>,
    readonly range: KeyGroupRange = ALL,
    clock?: ManualClock,
  ) {
    this.clock = clock ?? new ManualClock();
    const eventTime = eventTimeStateFor('Window(test)', range);
    this.state = eventTime.state;
    let op: WindowOperator<IN, unknown, unknown, unknown, unknown, W> | undefined;
    this.timers = new InternalTimerService<W>({
      operatorName: 'Window(test)',
      maxParallelism: MAX_P,
      keyGroupRange: range,
      namespaceSerializer: opts.assigner.getWindowSerializer(),
      keyContext: this.state,
      processingTimeService: this.clock,
      target: { onEventTime: (t) => op!.onEventTime(t), onProcessingTime: (t) => op!.onProcessingTime(t) },
      timerQueues: eventTime.timerQueues,
    });
    op = new WindowOperator<IN, unknown, unknown, unknown, unknown, W>({
      ...opts,
      operatorName: 'Window(test)',
      state: this.state,
      timers: this.timers,
      output: {
        collect: (value, ts) => this.out.push({ value, ts }),
        sideOutput: (tag, value, ts) => this.side.push({ value: [tag.id, value], ts }),
      },
    });
    this.op = op;
  }

  element(key: unknown, value: IN, ts: number | undefined): void {
    this.op.processElement(value, ts, key);
  }

  watermark(wm: number): void {
    this.timers.advanceWatermark(wm);
  }

  snapshot(): Snapshot {
    const state = new Map<number, Uint8Array>();
    for (let kg = this.range.start; kg <= this.range.end; kg++) {
      const d = this.state.snapshotKeyGroup(kg);
      if (d) state.set(kg, d);
    }
    return { state, timers: this.timers.snapshot(), watermark: this.timers.currentWatermark() };
  }

  restore(snapshot: Snapshot): void {
    for (const [kg, d] of snapshot.state) if (this.range.contains(kg)) this.state.restoreKeyGroup(kg, d);
    for (const [kg, d] of snapshot.timers) if (this.range.contains(kg)) this.timers.restoreKeyGroup(kg, d);
    this.timers.restoreWatermark(snapshot.watermark);
  }
}

type Step = { kind: 'e'; key: string; value: number; ts: number } | { kind: 'w'; wm: number };

/** Keys, values and out-of-order timestamps, with watermarks lagging `bound` behind (no late data) or `lateness` more. */
function stream(
  seed: number,
  n: number,
  opts: { bound: number; keys: number; evenTs?: boolean; lateProb?: number },
): Step[] {
  const r = rng(seed);
  const steps: Step[] = [];
  let maxTs = 0;
  let wm = -Infinity;
  for (let i = 0; i < n; i++) {
    const base = maxTs + Math.floor(r() * 20);
    let ts = Math.max(0, base - Math.floor(r() * opts.bound));
    if (opts.lateProb && r() < opts.lateProb) ts = Math.max(0, ts - Math.floor(r() * 200));
    else if (ts <= wm) ts = wm + 1;
    if (opts.evenTs) ts = ts % 2 === 0 ? ts : ts + 1;
    maxTs = Math.max(maxTs, ts);
    steps.push({ kind: 'e', key: `k${Math.floor(r() * opts.keys)}`, value: 1 + Math.floor(r() * 10), ts });
    if (r() < 0.1) {
      const next = maxTs - opts.bound - 1;
      if (next > wm) {
        wm = next;
        steps.push({ kind: 'w', wm });
      }
    }
  }
  steps.push({ kind: 'w', wm: Infinity });
  return steps;
}

function run<IN, W extends Window>(
  h: Harness<IN, W>,
  steps: Step[],
  toValue: (s: Step & { kind: 'e' }) => NoInfer<IN>,
): void {
  for (const s of steps) {
    if (s.kind === 'e') h.element(s.key, toValue(s), s.ts);
    else h.watermark(s.wm);
  }
}

const pair = (s: Step & { kind: 'e' }): [string, number] => [s.key, s.value];

const sum = (a: [string, number], b: [string, number]): [string, number] => [a[0], a[1] + b[1]];

/** Emits [key, start, end, result] for each firing. */
class Describe<IN> extends ProcessWindowFunction<IN, unknown, string, TimeWindow> {
  constructor(private readonly f: (elements: IN[]) => unknown) {
    super();
  }
  process(
    key: string,
    ctx: ProcessWindowFunction.Context<TimeWindow>,
    elements: Iterable<IN>,
    out: Collector<unknown>,
  ): void {
    out.collect([key, ctx.window().getStart(), ctx.window().getEnd(), this.f([...elements])]);
  }
}

function sorted(xs: unknown[]): string[] {
  return xs.map((x) => JSON.stringify(x)).sort();
}

/** Reference without late data: every window of every key fires once with all its elements. */
function naiveWindows(
  steps: Step[],
  assign: (ts: number) => TimeWindow[],
  f: (vs: number[]) => unknown,
): unknown[] {
  const windows = new Map<string, { key: string; w: TimeWindow; vs: number[] }>();
  for (const s of steps) {
    if (s.kind !== 'e') continue;
    for (const w of assign(s.ts)) {
      const id = `${s.key}|${w.start}|${w.end}`;
      let e = windows.get(id);
      if (!e) windows.set(id, (e = { key: s.key, w, vs: [] }));
      e.vs.push(s.value);
    }
  }
  return [...windows.values()].map((e) => [e.key, e.w.start, e.w.end, f(e.vs)]);
}

const sumOf = (vs: number[]): number => vs.reduce((a, b) => a + b, 0);

const avg: AggregateFunction<[string, number], [number, number], number> = {
  createAccumulator: () => [0, 0],
  add: (v, acc) => [acc[0] + v[1], acc[1] + 1],
  getResult: (acc) => acc[0] / acc[1],
  merge: (a, b) => [a[0] + b[0], a[1] + b[1]],
};

describe('WindowOperator: event-time windows vs a naive reference', () => {
  test('tumbling windows with reduce (+ process for the window): every window once, timestamp = maxTimestamp', () => {
    for (const seed of [1, 2, 3]) {
      const steps = stream(seed, 3000, { bound: 50, keys: 20 });
      const h = new Harness<[string, number], TimeWindow>({
        assigner: TumblingEventTimeWindows.of(100, 7) as WindowAssigner<[string, number], TimeWindow>,
        reduce: sum,
        process: new Describe<[string, number]>((vs) => vs[0]![1]) as never,
      });
      run(h, steps, pair);
      assert.equal(h.op.numLateRecordsDropped, 0);
      const expected = naiveWindows(
        steps,
        (ts) => TumblingEventTimeWindows.of(100, 7).assignWindows(null, ts),
        sumOf,
      );
      assert.deepEqual(sorted(h.out.map((o) => o.value)), sorted(expected));
      for (const o of h.out) assert.equal(o.ts, (o.value as number[])[2]! - 1);
      assert.equal(h.state.numEntries(), 0, 'all window state is cleaned up');
      assert.equal(h.timers.numEventTimeTimers(), 0);
    }
  });

  test('sliding windows with aggregate (average) and without a window function', () => {
    const steps = stream(4, 2000, { bound: 30, keys: 5 });
    const assigner = SlidingEventTimeWindows.of(60, 20);
    const h = new Harness<[string, number], TimeWindow>({
      assigner: assigner as WindowAssigner<[string, number], TimeWindow>,
      aggregate: avg as AggregateFunction<[string, number], unknown, unknown>,
    });
    run(h, steps, pair);
    const expected = naiveWindows(
      steps,
      (ts) => assigner.assignWindows(null, ts),
      (vs) => sumOf(vs) / vs.length,
    );
    assert.deepEqual(
      h.out.map((o) => o.value as number).sort((a, b) => a - b),
      expected.map((e) => (e as number[])[3]!).sort((a, b) => a - b),
    );
    assert.equal(h.out.length, expected.length);
  });

  test('sliding windows keeping all elements (process only)', () => {
    const steps = stream(5, 1500, { bound: 40, keys: 7 });
    const assigner = SlidingEventTimeWindows.of(90, 30, 10);
    const h = new Harness<[string, number], TimeWindow>({
      assigner: assigner as WindowAssigner<[string, number], TimeWindow>,
      process: new Describe<[string, number]>((es) => es.map((e) => e[1]).sort((a, b) => a - b)) as never,
    });
    run(h, steps, pair);
    const expected = naiveWindows(
      steps,
      (ts) => assigner.assignWindows(null, ts),
      (vs) => [...vs].sort((a, b) => a - b),
    );
    assert.deepEqual(sorted(h.out.map((o) => o.value)), sorted(expected));
  });

  test('session windows (merging) equal a brute-force sessionization, with process, reduce and aggregate', () => {
    const gap = 31; // odd gap, even timestamps: no element lands exactly on a fired session's end
    for (const seed of [6, 7]) {
      const steps = stream(seed, 2500, { bound: 60, keys: 10, evenTs: true });
      // brute force: per key, sort timestamps and cut where the next starts after the session's end
      const byKey = new Map<string, { ts: number; v: number }[]>();
      for (const s of steps)
        if (s.kind === 'e')
          (byKey.get(s.key) ?? byKey.set(s.key, []).get(s.key)!).push({ ts: s.ts, v: s.value });
      const expected: unknown[] = [];
      for (const [key, es] of byKey) {
        es.sort((a, b) => a.ts - b.ts);
        let start = es[0]!.ts;
        let end = start + gap;
        let vs: number[] = [];
        for (const e of es) {
          if (e.ts > end) {
            expected.push([key, start, end, sumOf(vs)]);
            start = e.ts;
            end = e.ts + gap;
            vs = [];
          }
          end = Math.max(end, e.ts + gap);
          vs.push(e.v);
        }
        expected.push([key, start, end, sumOf(vs)]);
      }
      const variants: Opts<[string, number], TimeWindow>[] = [
        {
          assigner: EventTimeSessionWindows.withGap(gap) as never,
          process: new Describe<[string, number]>((es) => sumOf(es.map((e) => e[1]))) as never,
        },
        {
          assigner: EventTimeSessionWindows.withGap(gap) as never,
          reduce: sum,
          process: new Describe<[string, number]>((es) => es[0]![1]) as never,
        },
        {
          assigner: EventTimeSessionWindows.withGap(gap) as never,
          aggregate: avg as never,
          process: new Describe<number>((es) => es[0]) as never,
        },
      ];
      for (const [i, v] of variants.entries()) {
        const h = new Harness<[string, number], TimeWindow>(v);
        run(h, steps, pair);
        const exp =
          i === 2
            ? sorted(
                expected.map((e) => {
                  const [k, s0, e0] = e as [string, number, number, number];
                  const vs = byKey
                    .get(k)!
                    .filter((x) => x.ts >= s0 && x.ts < e0 - gap + 1)
                    .map((x) => x.v);
                  return [k, s0, e0, sumOf(vs) / vs.length];
                }),
              )
            : sorted(expected);
        assert.deepEqual(sorted(h.out.map((o) => o.value)), exp, `seed ${seed} variant ${i}`);
        assert.equal(h.state.numEntries(), 0, 'sessions and the merging window set are cleaned up');
      }
    }
  });
});

/** Flink's semantics, simulated directly: late firings within the allowed lateness, late records after it. */
function lateReference(
  steps: Step[],
  assign: (ts: number) => TimeWindow[],
  lateness: number,
): { fired: unknown[]; late: unknown[] } {
  const fired: unknown[] = [];
  const late: unknown[] = [];
  const contents = new Map<string, { key: string; w: TimeWindow; sum: number }>();
  let wm = -Infinity;
  for (const s of steps) {
    if (s.kind === 'e') {
      let kept = false;
      for (const w of assign(s.ts)) {
        if (w.maxTimestamp() + lateness <= wm) continue;
        kept = true;
        const id = `${s.key}|${w.start}`;
        let c = contents.get(id);
        if (!c) contents.set(id, (c = { key: s.key, w, sum: 0 }));
        c.sum += s.value;
        if (w.maxTimestamp() <= wm) fired.push([s.key, w.start, w.end, c.sum]);
      }
      if (!kept && s.ts + lateness <= wm) late.push([s.key, s.value]);
    } else {
      for (const [id, c] of contents) {
        if (c.w.maxTimestamp() > wm && c.w.maxTimestamp() <= s.wm)
          fired.push([c.key, c.w.start, c.w.end, c.sum]);
        if (c.w.maxTimestamp() + lateness <= s.wm) contents.delete(id);
      }
      wm = s.wm;
    }
  }
  return { fired, late };
}

describe('WindowOperator: lateness', () => {
  test('late records: dropped and counted, or sent to the side output; allowed lateness makes late firings', () => {
    const lateTag = new OutputTag<[string, number]>('late');
    for (const [seed, lateness] of [
      [10, 0],
      [11, 25],
      [12, 150],
    ] as const) {
      const steps = stream(seed, 3000, { bound: 20, keys: 6, lateProb: 0.1 });
      for (const assigner of [TumblingEventTimeWindows.of(50), SlidingEventTimeWindows.of(50, 25)]) {
        const ref = lateReference(steps, (ts) => assigner.assignWindows(null, ts), lateness);
        assert.ok(ref.late.length > 0 || lateness > 100, 'the stream has late records');
        for (const withTag of [false, true]) {
          const h = new Harness<[string, number], TimeWindow>({
            assigner: assigner as never,
            reduce: sum,
            allowedLateness: lateness,
            lateDataOutputTag: withTag ? lateTag : undefined,
            process: new Describe<[string, number]>((vs) => vs[0]![1]) as never,
          });
          run(h, steps, pair);
          const label = `seed ${seed} lateness ${lateness} ${assigner.toString()} tag ${withTag}`;
          assert.deepEqual(sorted(h.out.map((o) => o.value)), sorted(ref.fired), label);
          if (withTag) {
            assert.equal(h.op.numLateRecordsDropped, 0);
            assert.deepEqual(
              sorted(h.side.map((o) => (o.value as [string, unknown])[1])),
              sorted(ref.late),
              label,
            );
            assert.ok(h.side.every((o) => (o.value as [string])[0] === 'late'));
          } else {
            assert.equal(h.side.length, 0);
            assert.equal(h.op.numLateRecordsDropped, ref.late.length, label);
          }
          assert.equal(h.state.numEntries(), 0);
        }
      }
    }
  });

  test('a hand-checked late firing', () => {
    const h = new Harness<number, TimeWindow>({
      assigner: TumblingEventTimeWindows.of(10) as never,
      reduce: (a, b) => a + b,
      allowedLateness: 5,
    });
    h.element('a', 1, 3);
    h.element('a', 2, 8);
    h.watermark(9);
    assert.deepEqual(h.out, [{ value: 3, ts: 9 }]);
    h.element('a', 4, 5); // late but within 5 ms of lateness: fires again with the update
    assert.deepEqual(h.out.at(-1), { value: 7, ts: 9 });
    h.watermark(14); // cleanup at 9 + 5
    h.element('a', 8, 6); // too late
    assert.equal(h.out.length, 2);
    assert.equal(h.op.numLateRecordsDropped, 1);
  });
});

describe('WindowOperator: triggers, evictors, global and processing-time windows', () => {
  test('countWindow: GlobalWindows + PurgingTrigger(CountTrigger(3)) sums every 3 records of a key', () => {
    const h = new Harness<number, Window>({
      assigner: GlobalWindows.create() as never,
      trigger: PurgingTrigger.of(CountTrigger.of(3)) as never,
      reduce: (a, b) => a + b,
    });
    const r = rng(13);
    const perKey = new Map<string, number[]>();
    for (let i = 0; i < 1000; i++) {
      const k = `k${Math.floor(r() * 5)}`;
      const v = Math.floor(r() * 100);
      h.element(k, v, undefined);
      (perKey.get(k) ?? perKey.set(k, []).get(k)!).push(v);
    }
    const expected: number[] = [];
    for (const vs of perKey.values())
      for (let i = 0; i + 3 <= vs.length; i += 3) expected.push(vs[i]! + vs[i + 1]! + vs[i + 2]!);
    assert.deepEqual(h.out.map((o) => o.value).sort(), expected.sort());
    assert.ok(h.out.every((o) => o.ts === Infinity));
    h.watermark(Infinity); // global windows never fire by time
    assert.equal(h.out.length, expected.length);
  });

  test('CountTrigger without purging fires running totals; its count is per window and checkpointed', () => {
    const h = new Harness<number, Window>({
      assigner: GlobalWindows.create() as never,
      trigger: CountTrigger.of(2) as never,
      reduce: (a, b) => a + b,
    });
    for (const v of [1, 2, 3]) h.element('a', v, undefined);
    const snap = h.snapshot();
    const h2 = new Harness<number, Window>(h.opts);
    h2.restore(snap);
    h2.element('a', 4, undefined);
    assert.deepEqual(
      h.out.map((o) => o.value),
      [3],
    );
    assert.deepEqual(
      h2.out.map((o) => o.value),
      [10],
    );
  });

  test('session windows with CountTrigger: the per-window counts merge when sessions merge', () => {
    const h = new Harness<number, TimeWindow>({
      assigner: EventTimeSessionWindows.withGap(10) as never,
      trigger: CountTrigger.of(3) as never,
      reduce: (a, b) => a + b,
    });
    h.element('a', 1, 0); // session [0,10), count 1
    h.element('a', 2, 20); // session [20,30), count 1
    assert.equal(h.out.length, 0);
    h.element('a', 4, 10); // bridges both: [0,30) with count 1 + 1 + 1 = 3 -> fires
    assert.deepEqual(h.out, [{ value: 7, ts: 29 }]);
    h.element('a', 8, 5); // count restarted after the firing
    assert.equal(h.out.length, 1);
    h.watermark(Infinity); // CountTrigger never fires by time; cleanup removes everything
    assert.equal(h.out.length, 1);
    assert.equal(h.state.numEntries(), 0);
    assert.equal(h.timers.numEventTimeTimers(), 0);
  });

  test('processing-time sessions merge by arrival time and fire when the clock passes their end', () => {
    const clock = new ManualClock();
    const h = new Harness<number, TimeWindow>(
      { assigner: ProcessingTimeSessionWindows.withGap(100) as never, reduce: (a, b) => a + b },
      ALL,
      clock,
    );
    clock.now = 0;
    h.element('a', 1, undefined);
    clock.advance(50);
    h.element('a', 2, undefined); // [0,150)
    clock.advance(148);
    assert.equal(h.out.length, 0);
    clock.advance(149); // the window's last millisecond
    assert.deepEqual(h.out, [{ value: 3, ts: 149 }]);
    clock.advance(300);
    h.element('a', 5, undefined);
    clock.advance(400);
    assert.deepEqual(h.out.at(-1), { value: 5, ts: 399 });
    assert.equal(h.state.numEntries(), 0);
  });

  test('CountEvictor keeps the last n elements of a window; TimeEvictor the newest span', () => {
    const h = new Harness<[string, number], TimeWindow>({
      assigner: TumblingEventTimeWindows.of(100) as never,
      evictor: CountEvictor.of(2) as never,
      process: new Describe<[string, number]>((es) => es.map((e) => e[1])) as never,
    });
    for (const [v, ts] of [
      [1, 10],
      [2, 50],
      [3, 20],
      [4, 30],
    ])
      h.element('a', ['a', v!], ts);
    h.watermark(99);
    assert.deepEqual(
      h.out.map((o) => o.value),
      [['a', 0, 100, [3, 4]]],
    );

    const t = new Harness<[string, number], TimeWindow>({
      assigner: TumblingEventTimeWindows.of(100) as never,
      evictor: TimeEvictor.of(25) as never,
      reduce: sum,
    });
    for (const [v, ts] of [
      [1, 10],
      [2, 50],
      [3, 20],
      [4, 30],
      [5, 40],
    ])
      t.element('a', ['a', v!], ts);
    t.watermark(99);
    // newest 50: keeps ts > 25 -> values 2 (50), 4 (30), 5 (40)
    assert.deepEqual(
      t.out.map((o) => o.value),
      [['a', 11]],
    );
  });

  test('processing-time tumbling windows fire by the clock', () => {
    const clock = new ManualClock();
    const h = new Harness<number, TimeWindow>(
      { assigner: TumblingProcessingTimeWindows.of(1000) as never, reduce: (a, b) => a + b },
      ALL,
      clock,
    );
    clock.now = 100;
    h.element('a', 1, undefined);
    h.element('b', 10, undefined);
    clock.now = 900;
    h.element('a', 2, undefined);
    clock.advance(998);
    assert.equal(h.out.length, 0);
    clock.advance(1000);
    assert.deepEqual(
      sorted(h.out),
      sorted([
        { value: 3, ts: 999 },
        { value: 10, ts: 999 },
      ]),
    );
    clock.now = 1500;
    h.element('a', 5, undefined);
    clock.advance(2100);
    assert.deepEqual(h.out.at(-1), { value: 5, ts: 1999 });
    assert.equal(h.state.numEntries(), 0);
  });

  test('ProcessWindowFunction: windowState lives per window until cleanup, globalState across windows', () => {
    const firings = new ValueStateDescriptor<number>('firings', 0);
    const total = new AggregatingStateDescriptor<number, number, number>('total', {
      createAccumulator: () => 0,
      add: (v, a) => a + v,
      getResult: (a) => a,
    });
    let cleared = 0;
    class Fn extends ProcessWindowFunction<number, unknown, string, TimeWindow> {
      process(
        key: string,
        ctx: ProcessWindowFunction.Context<TimeWindow>,
        els: Iterable<number>,
        out: Collector<unknown>,
      ): void {
        const f = ctx.windowState().getState(firings);
        f.update(f.value()! + 1);
        const s = [...els][0]!;
        ctx.globalState().getAggregatingState(total).add(s);
        out.collect([
          key,
          ctx.window().getStart(),
          f.value(),
          ctx.globalState().getAggregatingState(total).get(),
        ]);
      }
      override clear(ctx: ProcessWindowFunction.Context<TimeWindow>): void {
        cleared++;
        ctx.windowState().getState(firings).clear();
      }
    }
    const h = new Harness<number, TimeWindow>({
      assigner: TumblingEventTimeWindows.of(10) as never,
      reduce: (a, b) => a + b,
      allowedLateness: 100,
      process: new Fn() as never,
    });
    h.element('a', 1, 1);
    h.watermark(9);
    h.element('a', 2, 2); // late firing of [0,10): second firing, sum 3
    h.element('a', 5, 15);
    h.watermark(19);
    assert.deepEqual(
      h.out.map((o) => o.value),
      [
        ['a', 0, 1, 1],
        ['a', 0, 2, 4],
        ['a', 10, 1, 9],
      ],
    );
    h.watermark(Infinity);
    assert.equal(cleared, 2);
    // only the global state is left
    assert.equal(h.state.numEntries(), 1);
  });

  test('per-window state is refused on merging windows, as in Flink', () => {
    class UsesWindowState extends ProcessWindowFunction<number, unknown, string, TimeWindow> {
      process(_k: string, ctx: ProcessWindowFunction.Context<TimeWindow>): void {
        ctx.windowState().getState(new ValueStateDescriptor<number>('x'));
      }
    }
    const h = new Harness<number, TimeWindow>({
      assigner: EventTimeSessionWindows.withGap(10) as never,
      process: new UsesWindowState() as never,
    });
    h.element('a', 1, 0);
    assert.throws(
      () => h.watermark(Infinity),
      /'Window\(test\)': per-window state \(windowState\(\)\) is not available with merging windows \(EventTimeSessionWindows\(10\)\)/,
    );
  });

  test('construction errors name the operator and say what to do', () => {
    const noMerge: AggregateFunction<number, number, number> = {
      createAccumulator: () => 0,
      add: (v, a) => a + v,
      getResult: (a) => a,
    };
    class NoMergeTrigger extends Trigger<unknown, Window> {
      onElement(): TriggerResult {
        return TriggerResult.CONTINUE;
      }
      onEventTime(): TriggerResult {
        return TriggerResult.CONTINUE;
      }
      onProcessingTime(): TriggerResult {
        return TriggerResult.CONTINUE;
      }
      clear(): void {}
    }
    assert.throws(
      () =>
        new Harness<number, TimeWindow>({
          assigner: EventTimeSessionWindows.withGap(10) as never,
          aggregate: noMerge as never,
        }),
      /'Window\(test\)': session windows \(EventTimeSessionWindows\(10\)\) with aggregate\(\) need AggregateFunction.merge/,
    );
    assert.throws(
      () =>
        new Harness<number, TimeWindow>({
          assigner: EventTimeSessionWindows.withGap(10) as never,
          trigger: new NoMergeTrigger() as never,
          reduce: (a, b) => a + b,
        }),
      /the trigger NoMergeTrigger\(\) cannot be used with the merging window assigner/,
    );
    assert.throws(
      () =>
        new Harness<number, TimeWindow>({
          assigner: TumblingEventTimeWindows.of(10) as never,
          reduce: (a, b) => a + b,
          aggregate: noMerge as never,
        }),
      /reduce\(\) or aggregate\(\), not both/,
    );
    assert.throws(
      () =>
        new Harness<number, TimeWindow>({
          assigner: TumblingEventTimeWindows.of(10) as never,
          reduce: (a, b) => a + b,
          allowedLateness: -1,
        }),
      /allowedLateness must be a number of milliseconds >= 0, got -1/,
    );
  });
});

describe('WindowOperator: snapshot and restore', () => {
  for (const [name, assigner] of [
    ['tumbling', TumblingEventTimeWindows.of(100)],
    ['session', EventTimeSessionWindows.withGap(41)],
  ] as const) {
    test(`${name}: restoring mid-stream at another parallelism gives the undisturbed output`, () => {
      const steps = stream(31, 4000, { bound: 50, keys: 40, evenTs: true, lateProb: 0.02 });
      const opts: Opts<[string, number], TimeWindow> = {
        assigner: assigner as never,
        reduce: sum,
        allowedLateness: 30,
        lateDataOutputTag: new OutputTag('late'),
        process: new Describe<[string, number]>((vs) => vs[0]![1]) as never,
      };
      const undisturbed = new Harness<[string, number], TimeWindow>(opts);
      run(undisturbed, steps, pair);

      const cut = steps.findIndex((s, i) => i > steps.length / 2 && s.kind === 'w');
      const ranges = (p: number): KeyGroupRange[] =>
        Array.from({ length: p }, (_, i) => computeKeyGroupRangeForOperatorIndex(MAX_P, p, i));
      const route = <H extends { range: KeyGroupRange }>(hs: H[], key: string): H =>
        hs.find((x) => x.range.contains(assignToKeyGroup(key, MAX_P)))!;
      const feed = (hs: Harness<[string, number], TimeWindow>[], part: Step[]): void => {
        for (const s of part) {
          if (s.kind === 'e') route(hs, s.key).element(s.key, pair(s), s.ts);
          else for (const h of hs) h.watermark(s.wm);
        }
      };
      const before = ranges(2).map((r) => new Harness<[string, number], TimeWindow>(opts, r));
      feed(before, steps.slice(0, cut + 1));
      const snaps = before.map((h) => h.snapshot());
      const after = ranges(3).map((r) => new Harness<[string, number], TimeWindow>(opts, r));
      for (const h of after) {
        for (const s of snaps) h.restore({ ...s, watermark: Math.min(...snaps.map((x) => x.watermark)) });
      }
      feed(after, steps.slice(cut + 1));
      const all = [...before, ...after];
      assert.deepEqual(sorted(all.flatMap((h) => h.out)), sorted(undisturbed.out));
      assert.deepEqual(sorted(all.flatMap((h) => h.side)), sorted(undisturbed.side));
      assert.ok(undisturbed.side.length > 0);
    });
  }
});

describe('NamespacedKeyedState', () => {
  test('values per (key, namespace), per-key-group snapshot and restore, forEachKey, key range checks', () => {
    const range = computeKeyGroupRangeForOperatorIndex(MAX_P, 2, 1);
    const s = eventTimeStateFor('Window(counts)', range).state;
    const keys: unknown[] = [];
    for (let i = 0; keys.length < 50; i++)
      if (range.contains(assignToKeyGroup(['t', i], MAX_P))) keys.push(['t', i]);
    const v = s.getValueState<number>('v');
    const l = s.getListState<string>('l');
    for (const [i, k] of keys.entries()) {
      s.setCurrentKey(k);
      v.update('0:10', i);
      v.update(0, 100 - i);
      l.add('0:10', `a${i}`);
      l.add('0:10', `b${i}`);
    }
    assert.equal(s.numEntries(), 150);
    const copy = eventTimeStateFor('Window(counts)', range).state;
    for (let kg = range.start; kg <= range.end; kg++) {
      const d = s.snapshotKeyGroup(kg);
      if (d) copy.restoreKeyGroup(kg, d);
    }
    const cv = copy.getValueState<number>('v');
    const cl = copy.getListState<string>('l');
    for (const [i, k] of keys.entries()) {
      copy.setCurrentKey(k);
      assert.equal(cv.get('0:10'), i);
      assert.equal(cv.get(0), 100 - i);
      assert.deepEqual(cl.get('0:10'), [`a${i}`, `b${i}`]);
      assert.equal(cv.get('10:20'), undefined);
    }
    let seen = 0;
    copy.forEachKey('v', (_k, kg) => {
      assert.ok(range.contains(kg));
      seen++;
    });
    assert.equal(seen, 50);
    // clearing the last namespace of a key removes the key
    for (const k of keys) {
      copy.setCurrentKey(k);
      cv.clear('0:10');
      cv.update(0, undefined as unknown as number);
      cl.clear('0:10');
    }
    assert.equal(copy.numEntries(), 0);
    let foreign = 0;
    while (range.contains(assignToKeyGroup(foreign, MAX_P))) foreign++;
    assert.throws(
      () => s.setCurrentKey(foreign),
      /'Window\(counts\)' got key \d+ of key group \d+, outside its KeyGroupRange\{64\.\.127\}/,
    );
    assert.throws(
      () => copy.restoreKeyGroup(0, new Uint8Array()),
      /cannot restore key group 0: not in its KeyGroupRange\{64\.\.127\}/,
    );
  });
});
