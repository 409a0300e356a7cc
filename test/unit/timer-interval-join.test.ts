import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Collector } from '../../packages/api/src/index.js';
import { OutputTag, ProcessJoinFunction } from '../../packages/api/src/eventtime/index.js';
import { KeyGroupRange } from '../../packages/core/src/index.js';
import { InternalTimerService } from '../../packages/taskmanager/src/eventtime/internal-timer-service.js';
import {
  IntervalJoinOperator,
  JOIN_SIDE_SERIALIZER,
  type IntervalJoinOptions,
  type JoinSide,
} from '../../packages/taskmanager/src/eventtime/interval-join-operator.js';

import { eventTimeStateFor } from '../helpers/event-time-state.js';

type Rec = { id: string; ts: number };

class Pair extends ProcessJoinFunction<Rec, Rec, string> {
  processElement(l: Rec, r: Rec, ctx: ProcessJoinFunction.Context, out: Collector<string>): void {
    assert.equal(ctx.getLeftTimestamp(), l.ts);
    assert.equal(ctx.getRightTimestamp(), r.ts);
    out.collect(`${l.id}+${r.id}`);
  }
}

function harness(
  opts: Partial<IntervalJoinOptions<Rec, Rec, string>> & { lowerBound: number; upperBound: number },
) {
  const range = new KeyGroupRange(0, 127);
  const eventTime = eventTimeStateFor('IntervalJoin', range);
  const state = eventTime.state;
  let op: IntervalJoinOperator<Rec, Rec, string> | undefined;
  const timers = new InternalTimerService<JoinSide>({
    operatorName: 'IntervalJoin',
    maxParallelism: 128,
    keyGroupRange: range,
    namespaceSerializer: JOIN_SIDE_SERIALIZER,
    keyContext: state,
    processingTimeService: { getCurrentProcessingTime: () => 0, registerTimer: () => ({ cancel() {} }) },
    target: { onEventTime: (t) => op!.onEventTime(t), onProcessingTime: () => {} },
    timerQueues: eventTime.timerQueues,
  });
  const out: { value: string; ts: number | undefined }[] = [];
  const side: unknown[] = [];
  op = new IntervalJoinOperator<Rec, Rec, string>({
    operatorName: 'IntervalJoin',
    fn: new Pair(),
    state,
    timers,
    output: {
      collect: (value, ts) => out.push({ value, ts }),
      sideOutput: (tag, v) => side.push([tag.id, v]),
    },
    ...opts,
  });
  return { op, timers, state, out, side };
}

describe('IntervalJoinOperator', () => {
  test('joins every pair with right.ts - left.ts in [lower, upper] among on-time records (random, vs brute force)', () => {
    let seed = 3;
    const r = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (const [lower, upper, lx, ux] of [
      [-5, 10, false, false],
      [0, 0, false, false],
      [3, 20, true, false],
      [-30, -2, false, true],
    ] as const) {
      const lateTag = new OutputTag<Rec>('late-left');
      const h = harness({
        lowerBound: lower,
        upperBound: upper,
        lowerBoundExclusive: lx,
        upperBoundExclusive: ux,
        leftLateDataOutputTag: lateTag,
      });
      const onTime: { side: 'l' | 'r'; key: string; rec: Rec }[] = [];
      let lateLeft = 0;
      let lateRight = 0;
      let wm = -Infinity;
      let maxTs = 0;
      for (let i = 0; i < 3000; i++) {
        const key = `k${Math.floor(r() * 8)}`;
        const ts = Math.max(0, maxTs + Math.floor(r() * 6) - Math.floor(r() * 25));
        maxTs = Math.max(maxTs, ts);
        const isLeft = r() < 0.5;
        const rec = { id: `${isLeft ? 'L' : 'R'}${i}`, ts };
        if (ts <= wm) {
          if (isLeft) lateLeft++;
          else lateRight++;
        } else onTime.push({ side: isLeft ? 'l' : 'r', key, rec });
        if (isLeft) h.op.processElement1(rec, ts, key);
        else h.op.processElement2(rec, ts, key);
        if (r() < 0.05) {
          wm = Math.max(wm, maxTs - 15);
          h.timers.advanceWatermark(wm);
        }
      }
      const lo = lx ? lower + 1 : lower;
      const hi = ux ? upper - 1 : upper;
      const expected: string[] = [];
      for (const a of onTime) {
        if (a.side !== 'l') continue;
        for (const b of onTime) {
          if (b.side === 'r' && b.key === a.key && b.rec.ts - a.rec.ts >= lo && b.rec.ts - a.rec.ts <= hi) {
            expected.push(`${a.rec.id}+${b.rec.id} ${Math.max(a.rec.ts, b.rec.ts)}`);
          }
        }
      }
      const label = `[${lower}, ${upper}] exclusive ${lx}/${ux}`;
      assert.ok(expected.length > 50, label);
      assert.deepEqual(h.out.map((o) => `${o.value} ${o.ts}`).sort(), expected.sort(), label);
      assert.equal(h.side.length, lateLeft, label);
      assert.equal(h.op.numLateRecordsDropped, lateRight, label);
      h.timers.advanceWatermark(Infinity);
      assert.equal(h.state.numEntries(), 0, `${label}: buffers are cleaned up`);
    }
  });

  test('bad bounds and records without timestamps fail clearly', () => {
    assert.throws(
      () => harness({ lowerBound: 5, upperBound: 1 }),
      /'IntervalJoin': between\(5, 1\) is empty; the lower bound must not be above the upper bound/,
    );
    assert.throws(
      () => harness({ lowerBound: 0, upperBound: 0, upperBoundExclusive: true }),
      /between\(0, 0\) is empty with exclusive bounds/,
    );
    assert.throws(() => harness({ lowerBound: NaN, upperBound: 1 }), /lower bound must be a finite number/);
    const h = harness({ lowerBound: 0, upperBound: 1 });
    assert.throws(
      () => h.op.processElement2({ id: 'x', ts: 0 }, undefined, 'k'),
      /'IntervalJoin' got a right record without a timestamp/,
    );
  });
});
