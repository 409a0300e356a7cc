/**
 * In-process micro-benchmark of the event-time building blocks, without tasks or network:
 * the window operator core (tumbling event-time count over 1k keys on heap state, watermark
 * every 1000 records), the timer service, and the Nexmark generator.
 * `node --import tsx bench/eventtime-micro.ts`; EVENTS (default 2,000,000). Medians of 3.
 */
import { TumblingEventTimeWindows, type TimeWindow } from '../packages/api/src/eventtime/index.js';
import { NexmarkGenerator } from '../packages/api/src/sources/nexmark/index.js';
import { KeyGroupRange } from '../packages/core/src/index.js';
import {
  InternalTimerService,
  VOID_NAMESPACE_SERIALIZER,
} from '../packages/taskmanager/src/eventtime/internal-timer-service.js';
import { HeapNamespacedKeyedState } from '../packages/taskmanager/src/eventtime/namespaced-state.js';
import { WindowOperator } from '../packages/taskmanager/src/eventtime/window-operator.js';

const EVENTS = Number(process.env.EVENTS ?? 2_000_000);
const MAX_P = 128;
const range = new KeyGroupRange(0, MAX_P - 1);
const clock = { getCurrentProcessingTime: () => 0, registerTimer: () => ({ cancel() {} }) };
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function windowCount(): number {
  const state = new HeapNamespacedKeyedState('bench', MAX_P, range);
  let op: WindowOperator<number, unknown, unknown, unknown, number, TimeWindow> | undefined;
  const timers = new InternalTimerService<TimeWindow>({
    operatorName: 'bench',
    maxParallelism: MAX_P,
    keyGroupRange: range,
    namespaceSerializer: TumblingEventTimeWindows.of(1000).getWindowSerializer(),
    keyContext: state,
    processingTimeService: clock,
    target: { onEventTime: (t) => op!.onEventTime(t), onProcessingTime: (t) => op!.onProcessingTime(t) },
  });
  let emitted = 0;
  op = new WindowOperator<number, unknown, unknown, unknown, number, TimeWindow>({
    operatorName: 'bench',
    assigner: TumblingEventTimeWindows.of(1000) as never,
    reduce: (a, b) => a + b,
    state,
    timers,
    output: { collect: () => emitted++, sideOutput: () => {} },
  });
  const t0 = performance.now();
  for (let i = 0; i < EVENTS; i++) {
    // 10 events per ms of event time, keys 0..999
    op.processElement(1, i / 10, (i * 7919) % 1000);
    if (i % 1000 === 999) timers.advanceWatermark(i / 10 - 50);
  }
  timers.advanceWatermark(Infinity);
  const ms = performance.now() - t0;
  if (emitted === 0) throw new Error('no windows fired');
  return (EVENTS / ms) * 1000;
}

function timerChurn(): number {
  let key: unknown = 0;
  const service = new InternalTimerService<undefined>({
    operatorName: 'bench',
    maxParallelism: MAX_P,
    keyGroupRange: range,
    namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
    keyContext: { getCurrentKey: () => key, setCurrentKey: (k) => (key = k) },
    processingTimeService: clock,
    target: { onEventTime: () => {}, onProcessingTime: () => {} },
  });
  const n = Math.min(EVENTS, 1_000_000);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    key = i % 10_000;
    service.registerEventTimeTimer(undefined, (i * 7919) % n);
  }
  service.advanceWatermark(Infinity);
  return (n / (performance.now() - t0)) * 1000;
}

function nexmark(): number {
  const gen = new NexmarkGenerator();
  const n = Math.min(EVENTS, 500_000);
  const t0 = performance.now();
  let x = 0;
  for (let i = 0; i < n; i++) x += gen.nextEvent(i).type.length;
  if (x === 0) throw new Error('unreachable');
  return (n / (performance.now() - t0)) * 1000;
}

const rows: [string, number][] = [
  [
    'window operator: tumbling count, 1k keys (records/s)',
    median([windowCount(), windowCount(), windowCount()]),
  ],
  ['timer service: register + fire, 10k keys (timers/s)', median([timerChurn(), timerChurn(), timerChurn()])],
  ['Nexmark generator (events/s)', median([nexmark(), nexmark(), nexmark()])],
];
for (const [name, v] of rows) console.log(`${name.padEnd(56)} ${fmt(v).padStart(12)}`);
