import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedProcessFunction, type Collector } from '../../packages/api/src/index.js';
import {
  KeyedCoProcessFunction,
  OutputTag,
  TimeDomain,
  type KeyedTimerContext,
  type OnTimerContext,
} from '../../packages/api/src/eventtime/index.js';
import { KeyGroupRange } from '../../packages/core/src/index.js';
import {
  InternalTimerService,
  VOID_NAMESPACE_SERIALIZER,
} from '../../packages/taskmanager/src/eventtime/internal-timer-service.js';
import { KeyedProcessOperator } from '../../packages/taskmanager/src/eventtime/keyed-process-operator.js';
import { KeyedCoProcessOperator } from '../../packages/taskmanager/src/eventtime/keyed-co-process-operator.js';
import { TwoInputWatermarkCombiner } from '../../packages/taskmanager/src/eventtime/watermark-valve.js';
import { eventTimeStateFor } from '../helpers/event-time-state.js';
import { ManualClock } from '../helpers/manual-clock.js';

const alerts = new OutputTag<string>('alerts');

/** Emits each value; an event-time timer 10 ms after it and a processing-time timer 100 ms after arrival. */
class Timeouts extends KeyedProcessFunction<string, number, string> {
  processElement(value: number, ctx: KeyedProcessFunction.Context<string>, out: Collector<string>): void {
    const c = ctx as unknown as KeyedTimerContext<string>;
    out.collect(`${c.getCurrentKey()}:${value}@${c.timestamp()}`);
    if (value < 0) c.output(alerts, `negative ${value}`);
    if (value === 0) c.timerService().deleteEventTimeTimer(c.timestamp()! + 10);
    else c.timerService().registerEventTimeTimer(c.timestamp()! + 10);
    c.timerService().registerProcessingTimeTimer(c.timerService().currentProcessingTime() + 100);
  }

  override onTimer(timestamp: number, ctx: OnTimerContext<string>, out: Collector<string>): void {
    out.collect(`${ctx.timeDomain()} ${ctx.getCurrentKey()} ${timestamp} ts=${ctx.timestamp()}`);
  }
}

function harness(fn: KeyedProcessFunction<string, number, string>, clock = new ManualClock()) {
  const out: { value: string; ts: number | undefined }[] = [];
  const side: { value: unknown; ts: number | undefined }[] = [];
  let current: unknown;
  const keyContext = { getCurrentKey: () => current, setCurrentKey: (k: unknown) => (current = k) };
  let op: KeyedProcessOperator<string, number, string> | undefined;
  const timers = new InternalTimerService<undefined>({
    operatorName: 'KeyedProcess: timeouts',
    maxParallelism: 128,
    keyGroupRange: new KeyGroupRange(0, 127),
    namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
    keyContext,
    processingTimeService: clock,
    target: { onEventTime: (t) => op!.onEventTime(t), onProcessingTime: (t) => op!.onProcessingTime(t) },
    timerQueues: eventTimeStateFor('KeyedProcess: timeouts', new KeyGroupRange(0, 127)).timerQueues,
  });
  op = new KeyedProcessOperator('KeyedProcess: timeouts', fn, keyContext, timers, {
    collect: (value, ts) => out.push({ value, ts }),
    sideOutput: (tag, value, ts) => side.push({ value: [tag.id, value], ts }),
  });
  return { op, timers, out, side, clock };
}

describe('KeyedProcessOperator', () => {
  test('context: timestamp, current key, side output; timers fire with their key, domain and timestamp', () => {
    const h = harness(new Timeouts());
    h.op.processElement(5, 100, 'a');
    h.op.processElement(-1, 103, 'b');
    h.op.processElement(7, 100, 'a'); // same timer (a, 110): deduplicated
    assert.deepEqual(h.out, [
      { value: 'a:5@100', ts: 100 },
      { value: 'b:-1@103', ts: 103 },
      { value: 'a:7@100', ts: 100 },
    ]);
    assert.deepEqual(h.side, [{ value: ['alerts', 'negative -1'], ts: 103 }]);
    h.out.length = 0;
    h.timers.advanceWatermark(112);
    assert.deepEqual(h.out, [{ value: 'EVENT_TIME a 110 ts=110', ts: 110 }]);
    h.op.processElement(0, 103, 'b'); // deletes (b, 113)
    h.timers.advanceWatermark(Infinity);
    assert.equal(h.out.length, 2);
    h.out.length = 0;
    h.clock.advance(100);
    // equal timestamps fire in key-group order, which is not alphabetical
    assert.deepEqual(h.out.map((o) => `${o.value} ${o.ts}`).sort(), [
      `${TimeDomain.PROCESSING_TIME} a 100 ts=100 undefined`,
      'PROCESSING_TIME b 100 ts=100 undefined',
    ]);
  });

  test('random timers fire in timestamp order, once per (key, timestamp), vs a reference', () => {
    const h = harness(new Timeouts());
    let s = 1;
    const r = (): number => (s = (s * 48271) % 2147483647) / 2147483647;
    const expected = new Set<string>();
    let wm = 0;
    for (let i = 0; i < 2000; i++) {
      const key = `k${Math.floor(r() * 30)}`;
      const ts = wm + 1 + Math.floor(r() * 50);
      h.op.processElement(1 + Math.floor(r() * 9), ts, key);
      expected.add(`${key} ${ts + 10}`);
      if (i % 100 === 99) {
        wm += 40;
        h.timers.advanceWatermark(wm);
      }
    }
    h.timers.advanceWatermark(Infinity);
    const fired = h.out
      .filter((o) => o.value.startsWith('EVENT_TIME'))
      .map((o) => o.value.split(' ').slice(1, 3).join(' '));
    assert.deepEqual([...fired].sort(), [...expected].sort());
    // within each watermark step the firing is in timestamp order; overall no timer fires twice
    assert.equal(new Set(fired).size, fired.length);
  });

  test('a timer without onTimer fails naming the operator and the function', () => {
    class NoOnTimer extends KeyedProcessFunction<string, number, string> {
      processElement(_v: number, ctx: KeyedProcessFunction.Context<string>): void {
        (ctx as unknown as KeyedTimerContext<string>).timerService().registerEventTimeTimer(1);
      }
    }
    const h = harness(new NoOnTimer());
    h.op.processElement(1, 0, 'a');
    assert.throws(
      () => h.timers.advanceWatermark(5),
      /'KeyedProcess: timeouts' registered a timer but its NoOnTimer has no onTimer/,
    );
  });
});

describe('KeyedCoProcessOperator', () => {
  test('orders and payments: matched within 100 ms, else an unpaid alert from the timer (vs reference)', () => {
    const unpaid = new OutputTag<string>('unpaid');
    const open = new Map<unknown, number>();
    class Match extends KeyedCoProcessFunction<string, number, number, string> {
      processElement1(_order: number, ctx: KeyedCoProcessFunction.Context<string>): void {
        open.set(ctx.getCurrentKey(), ctx.timestamp()!);
        ctx.timerService().registerEventTimeTimer(ctx.timestamp()! + 100);
      }
      processElement2(
        _payment: number,
        ctx: KeyedCoProcessFunction.Context<string>,
        out: Collector<string>,
      ): void {
        const placed = open.get(ctx.getCurrentKey());
        if (placed === undefined) return;
        open.delete(ctx.getCurrentKey());
        ctx.timerService().deleteEventTimeTimer(placed + 100);
        out.collect(`paid ${ctx.getCurrentKey()}`);
      }
      override onTimer(ts: number, ctx: KeyedCoProcessFunction.OnTimerContext<string>): void {
        assert.equal(ctx.timeDomain(), TimeDomain.EVENT_TIME);
        open.delete(ctx.getCurrentKey());
        ctx.output(unpaid, `unpaid ${ctx.getCurrentKey()} at ${ts}`);
      }
    }
    const out: string[] = [];
    const side: string[] = [];
    let current: unknown;
    const keyContext = { getCurrentKey: () => current, setCurrentKey: (k: unknown) => (current = k) };
    let op: KeyedCoProcessOperator<string, number, number, string> | undefined;
    const timers = new InternalTimerService<undefined>({
      operatorName: 'CoProcess: match',
      maxParallelism: 128,
      keyGroupRange: new KeyGroupRange(0, 127),
      namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
      keyContext,
      processingTimeService: new ManualClock(),
      target: { onEventTime: (t) => op!.onEventTime(t), onProcessingTime: (t) => op!.onProcessingTime(t) },
      timerQueues: eventTimeStateFor('CoProcess: match', new KeyGroupRange(0, 127)).timerQueues,
    });
    op = new KeyedCoProcessOperator('CoProcess: match', new Match(), keyContext, timers, {
      collect: (v) => out.push(v),
      sideOutput: (_tag, v) => side.push(v as string),
    });
    // the operator's watermark is the minimum of both inputs
    const combiner = new TwoInputWatermarkCombiner({
      emitWatermark: (t) => timers.advanceWatermark(t),
      emitWatermarkStatus: () => {},
    });
    // orders every 10 ms; a payment 30 or 80 ms later (in time), 150 or 200 ms later (too late), or never
    const expectedPaid: string[] = [];
    const expectedUnpaid: string[] = [];
    const events: { input: 0 | 1; key: string; ts: number }[] = [];
    for (let i = 0; i < 300; i++) {
      const t = i * 10;
      events.push({ input: 0, key: `o${i}`, ts: t });
      const delay = [undefined, 30, 80, 150, 200][i % 5];
      if (delay !== undefined) events.push({ input: 1, key: `o${i}`, ts: t + delay });
      if (delay !== undefined && delay <= 100) expectedPaid.push(`paid o${i}`);
      else expectedUnpaid.push(`unpaid o${i} at ${t + 100}`);
    }
    // each input in timestamp order, with a monotonous watermark (ts - 1) after every record;
    // the orders input ends after its last record (a bounded input's final watermark)
    events.sort((a, b) => a.ts - b.ts || a.input - b.input);
    const lastOrder = events.filter((e) => e.input === 0).at(-1)!;
    for (const e of events) {
      if (e.input === 0) op.processElement1(0, e.ts, e.key);
      else op.processElement2(0, e.ts, e.key);
      combiner.inputWatermark(e.input, e === lastOrder ? Infinity : e.ts - 1);
      // the operator's watermark never passes the slower input's
      assert.ok(timers.currentWatermark() <= e.ts);
    }
    combiner.inputWatermark(1, Infinity);
    assert.deepEqual([...out].sort(), expectedPaid.sort());
    assert.deepEqual([...side].sort(), expectedUnpaid.sort());
  });
});
