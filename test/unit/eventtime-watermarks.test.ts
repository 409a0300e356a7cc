import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
// through @weir/api, as the TaskManager code sees it (it recognises the built-in generator's class)
import { Watermark, WatermarkStrategy, type WatermarkGenerator, type WatermarkOutput } from '@weir/api';
import {
  StatusWatermarkValve,
  TwoInputWatermarkCombiner,
  type WatermarkSink,
} from '../../packages/taskmanager/src/eventtime/watermark-valve.js';
import { CombinedWatermark } from '../../packages/taskmanager/src/eventtime/combined-watermark.js';
import {
  TimestampsAndWatermarks,
  validateTimestamp,
} from '../../packages/taskmanager/src/eventtime/watermark-generation.js';

function sink(): WatermarkSink & { events: string[]; watermarks: number[] } {
  const events: string[] = [];
  const watermarks: number[] = [];
  return {
    events,
    watermarks,
    emitWatermark: (t) => {
      events.push(`wm ${t}`);
      watermarks.push(t);
    },
    emitWatermarkStatus: (idle) => events.push(idle ? 'idle' : 'active'),
  };
}

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

describe('StatusWatermarkValve', () => {
  test('emits the minimum over channels, only when it advances', () => {
    const s = sink();
    const v = new StatusWatermarkValve(3, s);
    v.inputWatermark(10, 0);
    v.inputWatermark(5, 1);
    assert.deepEqual(s.events, []);
    v.inputWatermark(7, 2);
    assert.deepEqual(s.events, ['wm 5']);
    v.inputWatermark(3, 1); // goes back on its channel: ignored
    v.inputWatermark(8, 1);
    assert.deepEqual(s.events, ['wm 5', 'wm 7']);
    assert.equal(v.getOutputWatermark(), 7);
  });

  test('without idleness the output is the running minimum of per-channel maxima (random, vs reference)', () => {
    const r = rng(7);
    for (let iter = 0; iter < 200; iter++) {
      const n = 1 + Math.floor(r() * 6);
      const s = sink();
      const v = new StatusWatermarkValve(n, s);
      const max = new Array<number>(n).fill(-Infinity);
      let last = -Infinity;
      const expected: number[] = [];
      for (let step = 0; step < 50; step++) {
        const ch = Math.floor(r() * n);
        const wm = Math.floor(r() * 100);
        v.inputWatermark(wm, ch);
        max[ch] = Math.max(max[ch]!, wm);
        const min = Math.min(...max);
        if (min > last) {
          last = min;
          expected.push(min);
        }
      }
      assert.deepEqual(s.watermarks, expected);
    }
  });

  test('an idle channel stops holding the watermark back; all idle flushes the max and turns the valve idle', () => {
    const s = sink();
    const v = new StatusWatermarkValve(3, s);
    v.inputWatermark(10, 0);
    v.inputWatermark(20, 1);
    v.inputWatermark(5, 2);
    assert.deepEqual(s.events, ['wm 5']);
    v.inputWatermarkStatus(true, 2); // held the minimum: min over the others
    assert.deepEqual(s.events, ['wm 5', 'wm 10']);
    v.inputWatermarkStatus(true, 0);
    assert.deepEqual(s.events, ['wm 5', 'wm 10', 'wm 20']);
    v.inputWatermarkStatus(true, 1);
    assert.deepEqual(s.events, ['wm 5', 'wm 10', 'wm 20', 'idle']);
    assert.equal(v.isIdle(), true);
    v.inputWatermark(99, 1); // idle channel: ignored
    assert.equal(v.getOutputWatermark(), 20);
    v.inputWatermarkStatus(false, 2);
    assert.deepEqual(s.events.slice(4), ['active']);
  });

  test('a channel that comes back behind the output does not pull it back and rejoins once caught up', () => {
    const s = sink();
    const v = new StatusWatermarkValve(2, s);
    v.inputWatermark(5, 0);
    v.inputWatermark(5, 1);
    v.inputWatermarkStatus(true, 0);
    v.inputWatermark(100, 1);
    assert.deepEqual(s.watermarks, [5, 100]);
    v.inputWatermarkStatus(false, 0); // active again at 5 < 100: not aligned
    v.inputWatermark(200, 1);
    assert.deepEqual(s.watermarks, [5, 100, 200]);
    v.inputWatermark(150, 0); // still behind: not aligned, no output
    v.inputWatermark(250, 1);
    assert.deepEqual(s.watermarks, [5, 100, 200, 250]);
    v.inputWatermark(260, 0); // caught up: aligned again, minimum is now 250 -> no change
    v.inputWatermark(300, 1);
    assert.deepEqual(s.watermarks, [5, 100, 200, 250, 260]);
  });

  test('random statuses and watermarks: output strictly increasing and never above any active aligned channel', () => {
    const r = rng(11);
    for (let iter = 0; iter < 200; iter++) {
      const n = 1 + Math.floor(r() * 5);
      const s = sink();
      const v = new StatusWatermarkValve(n, s);
      const max = new Array<number>(n).fill(-Infinity);
      for (let step = 0; step < 60; step++) {
        const ch = Math.floor(r() * n);
        const x = r();
        if (x < 0.15) v.inputWatermarkStatus(true, ch);
        else if (x < 0.3) v.inputWatermarkStatus(false, ch);
        else {
          const wm = Math.floor(r() * 200);
          const before = v.channelWatermark(ch);
          v.inputWatermark(wm, ch);
          if (v.channelWatermark(ch) !== before) max[ch] = Math.max(max[ch]!, wm);
        }
      }
      for (let i = 1; i < s.watermarks.length; i++) assert.ok(s.watermarks[i]! > s.watermarks[i - 1]!);
      if (s.watermarks.length) assert.ok(s.watermarks.at(-1)! <= Math.max(...max));
    }
  });
});

describe('two-input and split combination', () => {
  test('a two-input operator emits the minimum of both inputs; an idle input is left out', () => {
    const s = sink();
    const c = new TwoInputWatermarkCombiner(s);
    c.inputWatermark(0, 10);
    assert.deepEqual(s.events, []);
    c.inputWatermark(1, 4);
    c.inputWatermark(0, 20);
    c.inputWatermark(1, 15);
    assert.deepEqual(s.watermarks, [4, 15]);
    c.inputWatermarkStatus(1, true);
    assert.deepEqual(s.watermarks, [4, 15, 20]);
    c.inputWatermarkStatus(0, true);
    assert.deepEqual(s.events.slice(-1), ['idle']);
    c.inputWatermarkStatus(1, false);
    assert.deepEqual(s.events.slice(-1), ['active']);
    // back from idleness at 15 < 20: the combined watermark does not go back
    assert.equal(c.getCombinedWatermark(), 20);
  });

  test('CombinedWatermark: min over active partials, monotonic', () => {
    const c = new CombinedWatermark(2);
    c.setWatermark(0, 5);
    assert.equal(c.update(), false); // input 1 still at -Infinity
    c.setWatermark(1, 7);
    assert.equal(c.update(), true);
    assert.equal(c.getCombinedWatermark(), 5);
    c.setIdle(0, true);
    assert.equal(c.update(), true);
    assert.equal(c.getCombinedWatermark(), 7);
    c.setIdle(0, false);
    assert.equal(c.update(), false);
    assert.equal(c.getCombinedWatermark(), 7);
  });
});

describe('TimestampsAndWatermarks (watermark generation)', () => {
  test('per-split generators combined by minimum; periodic emission follows the injected clock', () => {
    let now = 0;
    const s = sink();
    const tw = new TimestampsAndWatermarks<{ t: number }>(
      WatermarkStrategy.forBoundedOutOfOrderness<{ t: number }>(10).withTimestampAssigner((e) => e.t),
      'Source: events',
      () => now,
      s,
      200,
    );
    const a = tw.addSplit('a');
    const b = tw.addSplit('b');
    assert.equal(a.onRecord({ t: 1000 }, undefined), 1000);
    b.onRecord({ t: 500 }, undefined);
    now = 199;
    assert.equal(tw.onProcessingTime(now), 200);
    assert.deepEqual(s.watermarks, []);
    now = 200;
    assert.equal(tw.onProcessingTime(now), 400);
    assert.deepEqual(s.watermarks, [489]);
    b.onRecord({ t: 2000 }, undefined);
    now = 400;
    tw.onProcessingTime(now);
    assert.deepEqual(s.watermarks, [489, 989]);
    // a finished split no longer holds the watermark back
    tw.removeSplit(a);
    now = 600;
    tw.onProcessingTime(now);
    assert.deepEqual(s.watermarks, [489, 989, 1989]);
    tw.endInput();
    assert.deepEqual(s.watermarks, [489, 989, 1989, Infinity]);
  });

  test("the built-in bounded-out-of-orderness generator gives the same watermarks as one of the user's own", () => {
    // the runtime keeps the built-in generator's maximum itself; a copy of it as a custom
    // generator goes through onEvent per record: both must emit the same watermarks
    class MaxMinus<T> implements WatermarkGenerator<T> {
      private max = -Infinity;
      onEvent(_e: T, ts: number): void {
        if (ts > this.max) this.max = ts;
      }
      onPeriodicEmit(out: WatermarkOutput): void {
        if (this.max !== -Infinity) out.emitWatermark(new Watermark(this.max - 25 - 1));
      }
    }
    const run = (strategy: WatermarkStrategy<number>, inlined: boolean): number[] => {
      let now = 0;
      const s = sink();
      const tw = new TimestampsAndWatermarks<number>(strategy, 'Source: n', () => now, s, 200);
      const a = tw.addSplit('a');
      const b = tw.addSplit('b');
      assert.equal(a.emitsOnEvent, !inlined);
      for (let i = 0; i < 5000; i++) {
        (i % 3 === 0 ? b : a).onRecord((i * 7919) % 10_000, undefined);
        if (i % 100 === 99) tw.onProcessingTime((now += 200));
      }
      tw.removeSplit(a);
      tw.onProcessingTime((now += 200));
      tw.endInput();
      return s.watermarks;
    };
    const builtIn = run(
      WatermarkStrategy.forBoundedOutOfOrderness<number>(25).withTimestampAssigner((e) => e),
      true,
    );
    const own = run(
      WatermarkStrategy.forGenerator<number>(() => new MaxMinus()).withTimestampAssigner((e) => e),
      false,
    );
    assert.ok(builtIn.length > 3);
    assert.deepEqual(builtIn, own);
  });

  test('idle splits are left out; all idle makes the subtask idle; an event makes it active', () => {
    let now = 0;
    const s = sink();
    const tw = new TimestampsAndWatermarks<number>(
      WatermarkStrategy.forMonotonousTimestamps<number>()
        .withTimestampAssigner((e) => e)
        .withIdleness(1000),
      'Source: s',
      () => now,
      s,
      100,
    );
    const a = tw.addSplit('a');
    const b = tw.addSplit('b');
    a.onRecord(50, undefined);
    b.onRecord(10, undefined);
    for (now = 100; now <= 1000; now += 100) {
      a.onRecord(50 + now, undefined);
      tw.onProcessingTime(now);
    }
    // b stopped at 10 and went idle after 1000 ms: only a counts from then on
    for (; now <= 1300; now += 100) {
      a.onRecord(50 + now, undefined);
      tw.onProcessingTime(now);
    }
    assert.equal(tw.getCurrentWatermark(), 50 + 1300 - 1);
    assert.ok(s.watermarks.includes(9));
    assert.ok(!s.events.includes('idle'));
    for (; now <= 2600; now += 100) tw.onProcessingTime(now);
    assert.equal(s.events.at(-1), 'idle');
    assert.equal(tw.isIdle(), true);
    b.onRecord(5000, undefined);
    assert.equal(s.events.at(-1), 'active');
  });

  test('the timestamp assigner is validated: non-number, NaN, -Infinity fail naming the operator', () => {
    const bad: unknown[] = ['12', NaN, -Infinity, Infinity, undefined, null, {}];
    for (const value of bad) {
      const tw = new TimestampsAndWatermarks<{ id: number }>(
        WatermarkStrategy.forMonotonousTimestamps<{ id: number }>().withTimestampAssigner(
          () => value as number,
        ),
        'Timestamps/Watermarks: clicks',
        () => 0,
        sink(),
      );
      const split = tw.addSplit('subtask');
      assert.throws(
        () => split.onRecord({ id: 7 }, undefined),
        /The timestamp assigner of 'Timestamps\/Watermarks: clicks' returned .* for the record \{"id":7\}; it must return a finite number of milliseconds/,
        `value ${String(value)}`,
      );
    }
    // without an assigner the record's own timestamp is used, and must exist
    const tw = new TimestampsAndWatermarks<number>(
      WatermarkStrategy.forMonotonousTimestamps<number>(),
      'op',
      () => 0,
      sink(),
    );
    const split = tw.addSplit('x');
    assert.equal(split.onRecord(1, 42), 42);
    assert.throws(() => split.onRecord(1, undefined), /The timestamp assigner of 'op' returned undefined/);
    assert.equal(validateTimestamp(-5, 'op', null), -5);
  });

  test('a custom generator sees every event and emits through the split output', () => {
    const seen: number[] = [];
    const strategy = WatermarkStrategy.forGenerator<number>((): WatermarkGenerator<number> => ({
      onEvent: (_e, ts, out) => {
        seen.push(ts);
        if (ts % 10 === 0) out.emitWatermark({ timestamp: ts } as never);
      },
      onPeriodicEmit: () => {},
    })).withTimestampAssigner((e) => e);
    const s = sink();
    const tw = new TimestampsAndWatermarks<number>(strategy, 'op', () => 0, s);
    const split = tw.addSplit('only');
    for (const e of [3, 10, 7, 20, 15]) split.onRecord(e, undefined);
    assert.deepEqual(seen, [3, 10, 7, 20, 15]);
    assert.deepEqual(s.watermarks, [10, 20]);
  });
});
