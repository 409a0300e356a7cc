/**
 * In-process micro-benchmark of event-time state on the heap vs in RocksDB (real files in a
 * temp dir), through eventTimeStores as the runtime gets it: timers registered and fired
 * per second (TIMERS distinct timers, default 1,000,000, over 100k keys, timestamps in
 * shuffled order), window-contents appends per second (namespaced list state, 1k keys, 1,000
 * elements per window), and the window operator keeping contents (process function, tumbling
 * 1 s windows over 1k keys, EVENTS records, default 1,000,000).
 * `node --import tsx bench/eventtime-rocksdb.ts`. Medians of 3.
 */
import {
  ProcessWindowFunction,
  TumblingEventTimeWindows,
  type TimeWindow,
} from '../packages/api/src/eventtime/index.js';
import type { Collector } from '../packages/api/src/index.js';
import { KeyGroupRange } from '../packages/core/src/index.js';
import {
  eventTimeStores,
  type EventTimeState,
} from '../packages/taskmanager/src/eventtime/event-time-stores.js';
import {
  InternalTimerService,
  VOID_NAMESPACE_SERIALIZER,
} from '../packages/taskmanager/src/eventtime/internal-timer-service.js';
import { WindowOperator } from '../packages/taskmanager/src/eventtime/window-operator.js';
import { MAX_P, TestBackends } from '../test/helpers/state-backends.js';

const TIMERS = Number(process.env.TIMERS ?? 1_000_000);
const EVENTS = Number(process.env.EVENTS ?? 1_000_000);
const range = new KeyGroupRange(0, MAX_P - 1);
const clock = { getCurrentProcessingTime: () => 0, registerTimer: () => ({ cancel() {} }) };
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const backends = new TestBackends();

async function eventTime(kind: 'heap' | 'rocksdb'): Promise<EventTimeState> {
  const backend = kind === 'heap' ? undefined : await backends.open('rocksdb');
  return eventTimeStores(backend, {
    operatorName: 'bench',
    maxParallelism: MAX_P,
    keyGroupRange: range,
  });
}

async function timers(kind: 'heap' | 'rocksdb'): Promise<[number, number]> {
  const et = await eventTime(kind);
  let fired = 0;
  let last = -Infinity;
  const service = new InternalTimerService<undefined>({
    operatorName: 'bench',
    maxParallelism: MAX_P,
    keyGroupRange: range,
    namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
    keyContext: et.state,
    processingTimeService: clock,
    target: {
      onEventTime: (t) => {
        if (t.timestamp < last) throw new Error('timers fired out of order');
        last = t.timestamp;
        fired++;
      },
      onProcessingTime: () => {},
    },
    timerQueues: et.timerQueues,
  });
  const t0 = performance.now();
  for (let i = 0; i < TIMERS; i++) {
    et.state.setCurrentKey(i % 100_000);
    service.registerEventTimeTimer(undefined, (i * 7919) % TIMERS);
  }
  const t1 = performance.now();
  service.advanceWatermark(Infinity);
  const t2 = performance.now();
  if (fired !== TIMERS) throw new Error(`${fired} of ${TIMERS} timers fired`);
  return [(TIMERS / (t1 - t0)) * 1000, (TIMERS / (t2 - t1)) * 1000];
}

async function appends(kind: 'heap' | 'rocksdb'): Promise<number> {
  const et = await eventTime(kind);
  const list = et.state.getListState<[number, number]>('window-contents');
  const t0 = performance.now();
  for (let i = 0; i < EVENTS; i++) {
    et.state.setCurrentKey(i % 1000);
    list.add(`${Math.floor(i / 1_000_000) * 1000}:${Math.floor(i / 1_000_000) * 1000 + 1000}`, [i, i]);
  }
  return (EVENTS / (performance.now() - t0)) * 1000;
}

class CountContents extends ProcessWindowFunction<number, number, number, TimeWindow> {
  process(_k: number, _ctx: unknown, elements: Iterable<number>, out: Collector<number>): void {
    let n = 0;
    for (const _ of elements) n++;
    out.collect(n);
  }
}

async function windowContents(kind: 'heap' | 'rocksdb'): Promise<number> {
  const et = await eventTime(kind);
  const assigner = TumblingEventTimeWindows.of(1000);
  let op: WindowOperator<number, unknown, unknown, unknown, number, TimeWindow> | undefined;
  const timers = new InternalTimerService<TimeWindow>({
    operatorName: 'bench',
    maxParallelism: MAX_P,
    keyGroupRange: range,
    namespaceSerializer: assigner.getWindowSerializer(),
    keyContext: et.state,
    processingTimeService: clock,
    target: { onEventTime: (t) => op!.onEventTime(t), onProcessingTime: (t) => op!.onProcessingTime(t) },
    timerQueues: et.timerQueues,
  });
  let counted = 0;
  op = new WindowOperator<number, unknown, unknown, unknown, number, TimeWindow>({
    operatorName: 'bench',
    assigner: assigner as never,
    process: new CountContents() as never,
    state: et.state,
    timers,
    output: { collect: (n) => (counted += n as number), sideOutput: () => {} },
  });
  const t0 = performance.now();
  for (let i = 0; i < EVENTS; i++) {
    op.processElement(1, i / 10, (i * 7919) % 1000);
    if (i % 1000 === 999) timers.advanceWatermark(i / 10 - 50);
  }
  timers.advanceWatermark(Infinity);
  const ms = performance.now() - t0;
  if (counted !== EVENTS) throw new Error(`windows held ${counted} of ${EVENTS} records`);
  return (EVENTS / ms) * 1000;
}

const rows: string[] = [];
for (const kind of ['heap', 'rocksdb'] as const) {
  const reg: number[] = [];
  const fire: number[] = [];
  const app: number[] = [];
  const win: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [r, f] = await timers(kind);
    reg.push(r);
    fire.push(f);
    app.push(await appends(kind));
    win.push(await windowContents(kind));
  }
  rows.push(
    `| ${kind} | ${fmt(median(reg))} | ${fmt(median(fire))} | ${fmt(median(app))} | ${fmt(median(win))} |`,
  );
}
await backends.dispose();
console.log(`${fmt(TIMERS)} timers, ${fmt(EVENTS)} appends / window records, medians of 3`);
console.log(
  '| state | timers registered/s | timers fired/s | window-contents appends/s | window operator with contents, records/s |',
);
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) console.log(r);
