import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CountEvictor,
  CountTrigger,
  EventTimeSessionWindows,
  GlobalWindow,
  GlobalWindows,
  OutputTag,
  ProcessingTimeSessionWindows,
  SlidingEventTimeWindows,
  SlidingProcessingTimeWindows,
  TimeEvictor,
  TimeWindow,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  Watermark,
  WatermarkStrategy,
  type TimestampedValue,
  type WatermarkOutput,
} from '../../packages/api/src/eventtime/index.js';

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

describe('window assigners', () => {
  test('bad sizes, slides, gaps and offsets fail at construction, naming the assigner', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => TumblingEventTimeWindows.of(0), /TumblingEventTimeWindows: the size must be .* > 0, got 0/],
      [() => TumblingEventTimeWindows.of(-5), /TumblingEventTimeWindows: the size/],
      [() => TumblingEventTimeWindows.of(NaN), /TumblingEventTimeWindows: the size/],
      [
        () => TumblingEventTimeWindows.of(10, Infinity),
        /TumblingEventTimeWindows: the offset .* got Infinity/,
      ],
      [() => TumblingEventTimeWindows.of(10, NaN), /TumblingEventTimeWindows: the offset/],
      [() => TumblingEventTimeWindows.of(10, 10), /\|offset\| < size/],
      [
        () => SlidingEventTimeWindows.of(10, 20),
        /SlidingEventTimeWindows: the slide \(20 ms\) must not be larger than the size \(10 ms\)/,
      ],
      [() => SlidingEventTimeWindows.of(10, 0), /SlidingEventTimeWindows: the slide must be/],
      [() => SlidingEventTimeWindows.of(10, 5, -Infinity), /SlidingEventTimeWindows: the offset/],
      [() => SlidingProcessingTimeWindows.of(10, 11), /SlidingProcessingTimeWindows: the slide/],
      [
        () => EventTimeSessionWindows.withGap(0),
        /EventTimeSessionWindows: the session gap must be .* > 0, got 0/,
      ],
      [() => EventTimeSessionWindows.withGap(-1), /EventTimeSessionWindows: the session gap/],
      [() => ProcessingTimeSessionWindows.withGap(0), /ProcessingTimeSessionWindows: the session gap/],
      [() => TumblingProcessingTimeWindows.of(0), /TumblingProcessingTimeWindows: the size/],
      [() => CountTrigger.of(0), /CountTrigger.of needs a positive integer count, got 0/],
      [() => CountTrigger.of(1.5), /CountTrigger.of/],
      [() => CountEvictor.of(-1), /CountEvictor.of/],
      [() => TimeEvictor.of(NaN), /TimeEvictor.of/],
      [() => new OutputTag(''), /OutputTag needs a non-empty id/],
      [() => WatermarkStrategy.forBoundedOutOfOrderness(-1), /forBoundedOutOfOrderness.*>= 0, got -1/],
      [() => WatermarkStrategy.forMonotonousTimestamps().withIdleness(0), /withIdleness.*> 0, got 0/],
    ];
    for (const [make, message] of cases) assert.throws(make, message);
  });

  test('an event-time assigner rejects records without a timestamp, saying how to fix it', () => {
    assert.throws(
      () => TumblingEventTimeWindows.of(10).assignWindows('x', undefined),
      /TumblingEventTimeWindows got a record without a timestamp: call assignTimestampsAndWatermarks/,
    );
  });

  test('tumbling windows contain their timestamp, with offsets and negative timestamps', () => {
    const r = rng(1);
    for (let i = 0; i < 2000; i++) {
      const size = 1 + Math.floor(r() * 100);
      const offset = Math.floor((r() * 2 - 1) * (size - 1));
      const ts = Math.floor((r() * 2 - 1) * 100000);
      const [w] = TumblingEventTimeWindows.of(size, offset).assignWindows(null, ts);
      assert.ok(w!.start <= ts && ts < w!.end, `${ts} in ${String(w)}`);
      assert.equal(w!.end - w!.start, size);
      // aligned to the offset
      assert.equal((((w!.start - offset) % size) + size) % size, 0);
    }
  });

  test('sliding windows are exactly the aligned windows that contain the timestamp (brute force)', () => {
    const r = rng(2);
    for (let i = 0; i < 500; i++) {
      const slide = 1 + Math.floor(r() * 20);
      const size = slide * (1 + Math.floor(r() * 5)) + Math.floor(r() * slide);
      const ts = Math.floor((r() * 2 - 1) * 1000);
      const got = SlidingEventTimeWindows.of(size, slide)
        .assignWindows(null, ts)
        .map((w) => `${w.start}:${w.end}`)
        .sort();
      const expected: string[] = [];
      for (let start = Math.floor(-3000 / slide) * slide; start <= 3000; start += slide) {
        if (start <= ts && ts < start + size) expected.push(`${start}:${start + size}`);
      }
      assert.deepEqual(got, expected.sort(), `size ${size} slide ${slide} ts ${ts}`);
    }
  });

  test('processing-time assigners use the clock, not the record timestamp', () => {
    const ctx = { getCurrentProcessingTime: () => 1234 };
    assert.equal(
      String(TumblingProcessingTimeWindows.of(100).assignWindows(null, 5, ctx)[0]),
      String(new TimeWindow(1200, 1300)),
    );
    assert.equal(SlidingProcessingTimeWindows.of(100, 50).assignWindows(null, 5, ctx).length, 2);
    assert.equal(
      String(ProcessingTimeSessionWindows.withGap(10).assignWindows(null, 5, ctx)[0]),
      'TimeWindow{start=1234, end=1244}',
    );
    assert.equal(TumblingProcessingTimeWindows.of(1).isEventTime(), false);
  });

  test('global windows: one window, a never-firing default trigger, infinite max timestamp', () => {
    const g = GlobalWindows.create();
    assert.equal(g.assignWindows(), g.assignWindows());
    assert.equal(g.assignWindows()[0], GlobalWindow.get());
    assert.equal(GlobalWindow.get().maxTimestamp(), Infinity);
    assert.equal(
      g.getWindowSerializer().fromKey(g.getWindowSerializer().toKey(GlobalWindow.get())),
      GlobalWindow.get(),
    );
  });

  test('TimeWindow: maxTimestamp, serializer round trip with negative bounds', () => {
    const w = new TimeWindow(-20, -10);
    assert.equal(w.maxTimestamp(), -11);
    const k = TimeWindow.serializer.toKey(w);
    assert.ok(TimeWindow.serializer.fromKey(k).equals(w));
    assert.ok(
      TimeWindow.serializer
        .fromKey(TimeWindow.serializer.toKey(new TimeWindow(5, 1e12)))
        .equals(new TimeWindow(5, 1e12)),
    );
  });

  test('session merging equals a brute-force merge of intervals', () => {
    const r = rng(3);
    for (let iter = 0; iter < 300; iter++) {
      const gap = 1 + Math.floor(r() * 10);
      const windows = Array.from({ length: 1 + Math.floor(r() * 20) }, () => {
        const ts = Math.floor(r() * 100);
        return new TimeWindow(ts, ts + gap);
      });
      // brute force: repeatedly union intersecting intervals until nothing changes
      let groups = windows.map((w) => ({ start: w.start, end: w.end, n: 1 }));
      let changed = true;
      while (changed) {
        changed = false;
        outer: for (let i = 0; i < groups.length; i++) {
          for (let j = i + 1; j < groups.length; j++) {
            const a = groups[i]!;
            const b = groups[j]!;
            if (a.start <= b.end && a.end >= b.start) {
              groups[i] = { start: Math.min(a.start, b.start), end: Math.max(a.end, b.end), n: a.n + b.n };
              groups.splice(j, 1);
              changed = true;
              break outer;
            }
          }
        }
      }
      groups = groups.filter((g) => g.n > 1);
      const got: { start: number; end: number; n: number }[] = [];
      EventTimeSessionWindows.withGap(gap).mergeWindows(windows, (merged, result) => {
        for (const m of merged) assert.ok(result.start <= m.start && m.end <= result.end);
        got.push({ start: result.start, end: result.end, n: merged.length });
      });
      const key = (g: { start: number; end: number; n: number }): string => `${g.start}:${g.end}:${g.n}`;
      assert.deepEqual(got.map(key).sort(), groups.map(key).sort());
    }
  });
});

describe('evictors', () => {
  const elems = (ts: number[]): TimestampedValue<number>[] => ts.map((t, i) => ({ value: i, timestamp: t }));
  const w = new TimeWindow(0, 100);
  const ctx = { getCurrentProcessingTime: () => 0, getCurrentWatermark: () => 0 };

  test('CountEvictor keeps the last n, before or after the function', () => {
    const e = elems([1, 2, 3, 4, 5]);
    CountEvictor.of(2).evictBefore(e, e.length, w, ctx);
    assert.deepEqual(
      e.map((x) => x.value),
      [3, 4],
    );
    const after = elems([1, 2, 3]);
    CountEvictor.of(1, true).evictBefore(after, after.length, w, ctx);
    assert.equal(after.length, 3);
    CountEvictor.of(1, true).evictAfter(after, after.length, w, ctx);
    assert.deepEqual(
      after.map((x) => x.value),
      [2],
    );
  });

  test('TimeEvictor keeps elements newer than newest - size; no timestamps keeps all', () => {
    const e = elems([10, 50, 30, 60, 20]);
    TimeEvictor.of(30).evictBefore(e, e.length, w, ctx);
    assert.deepEqual(
      e.map((x) => x.timestamp),
      [50, 60],
    );
    const none: TimestampedValue<number>[] = [
      { value: 1, timestamp: undefined },
      { value: 2, timestamp: undefined },
    ];
    TimeEvictor.of(0).evictBefore(none, 2, w, ctx);
    assert.equal(none.length, 2);
  });
});

describe('watermark strategies', () => {
  function recorder(): WatermarkOutput & { events: string[] } {
    const events: string[] = [];
    return {
      events,
      emitWatermark: (wm: Watermark) => events.push(`wm ${wm.timestamp}`),
      markIdle: () => events.push('idle'),
      markActive: () => events.push('active'),
    };
  }

  test('bounded out-of-orderness: periodic watermark = max timestamp - bound - 1, nothing before the first event', () => {
    const gen = WatermarkStrategy.forBoundedOutOfOrderness<number>(5).createWatermarkGenerator({
      currentProcessingTime: () => 0,
      operatorName: 'op',
    });
    const out = recorder();
    gen.onPeriodicEmit(out);
    gen.onEvent(0, 100, out);
    gen.onEvent(0, 90, out);
    gen.onPeriodicEmit(out);
    gen.onEvent(0, 120, out);
    gen.onPeriodicEmit(out);
    assert.deepEqual(out.events, ['wm 94', 'wm 114']);
  });

  test('monotonous timestamps: watermark = max - 1', () => {
    const gen = WatermarkStrategy.forMonotonousTimestamps<number>().createWatermarkGenerator({
      currentProcessingTime: () => 0,
      operatorName: 'op',
    });
    const out = recorder();
    gen.onEvent(0, 7, out);
    gen.onPeriodicEmit(out);
    assert.deepEqual(out.events, ['wm 6']);
  });

  test('withIdleness marks idle after the timeout without events, active again on the next event', () => {
    let now = 0;
    const gen = WatermarkStrategy.forMonotonousTimestamps<number>()
      .withIdleness(1000)
      .createWatermarkGenerator({ currentProcessingTime: () => now, operatorName: 'op' });
    const out = recorder();
    gen.onEvent(0, 10, out);
    now = 200;
    gen.onPeriodicEmit(out);
    now = 1100;
    gen.onPeriodicEmit(out); // activity seen at 200: not idle yet
    now = 1300;
    gen.onPeriodicEmit(out); // 1100 ms without events
    now = 1500;
    gen.onPeriodicEmit(out); // stays idle, emits nothing
    gen.onEvent(0, 20, out);
    now = 1700;
    gen.onPeriodicEmit(out);
    assert.deepEqual(out.events, ['wm 9', 'wm 9', 'idle', 'active', 'wm 19']);
  });

  test('strategies are immutable; forGenerator checks what the supplier returns', () => {
    const base = WatermarkStrategy.forMonotonousTimestamps<{ t: number }>();
    const withTs = base.withTimestampAssigner((e) => e.t);
    assert.equal(base.timestampAssigner, undefined);
    assert.equal(withTs.timestampAssigner!({ t: 3 }, undefined), 3);
    assert.equal(WatermarkStrategy.noWatermarks().emitsWatermarks, false);
    const bad = WatermarkStrategy.forGenerator(() => ({}) as never);
    assert.throws(
      () => bad.createWatermarkGenerator({ currentProcessingTime: () => 0, operatorName: 'Source: orders' }),
      /supplier of 'Source: orders' must return an object with onEvent and onPeriodicEmit/,
    );
    assert.throws(() => new Watermark(NaN), /numeric timestamp/);
  });
});
