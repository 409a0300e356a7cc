/**
 * Registers TIMERS event-time timers through an InternalTimerService on the given state
 * backend (argv[2]: rocksdb or heap), fires them all, checks they fired in the exact total
 * order, and prints {fired, maxHeapUsed, registerMs, fireMs} as JSON. Run under a small heap
 * (--max-old-space-size) by test/chaos/million-timers.test.ts.
 */
import { KeyGroupRange } from '../../packages/core/src/index.js';
import { eventTimeStores } from '../../packages/taskmanager/src/eventtime/event-time-stores.js';
import {
  InternalTimerService,
  VOID_NAMESPACE_SERIALIZER,
} from '../../packages/taskmanager/src/eventtime/internal-timer-service.js';
import { compareTimers, type InternalTimer } from '../../packages/taskmanager/src/eventtime/timer-heap.js';
import { MAX_P, TestBackends } from './state-backends.js';

const kind = process.argv[2] === 'heap' ? 'heap' : 'rocksdb';
const n = Number(process.env.TIMERS ?? 1_000_000);
const range = new KeyGroupRange(0, MAX_P - 1);
const backends = new TestBackends();
const et = eventTimeStores(kind === 'heap' ? undefined : await backends.open('rocksdb'), {
  operatorName: 'million-timers',
  maxParallelism: MAX_P,
  keyGroupRange: range,
});
let maxHeapUsed = 0;
// the live heap: collected first (run with --expose-gc), so garbage not yet collected does not count
const gc = (globalThis as { gc?: () => void }).gc;
const sample = (): void => {
  gc?.();
  maxHeapUsed = Math.max(maxHeapUsed, process.memoryUsage().heapUsed);
};
let fired = 0;
let previous: InternalTimer<unknown> | undefined;
const service = new InternalTimerService<undefined>({
  operatorName: 'million-timers',
  maxParallelism: MAX_P,
  keyGroupRange: range,
  namespaceSerializer: VOID_NAMESPACE_SERIALIZER,
  keyContext: et.state,
  processingTimeService: { getCurrentProcessingTime: () => 0, registerTimer: () => ({ cancel() {} }) },
  target: {
    onEventTime: (t) => {
      if (et.state.getCurrentKey() !== t.key)
        throw new Error(`timer of key ${String(t.key)} fired with another key current`);
      if (previous && compareTimers(previous, t) >= 0)
        throw new Error(
          `out of order: ${JSON.stringify([previous.timestamp, previous.keyGroup, previous.normalizedKey])} before ${JSON.stringify([t.timestamp, t.keyGroup, t.normalizedKey])}`,
        );
      // keep only what the comparison needs, not the timer
      previous = { ...t, namespace: undefined };
      if (++fired % 100_000 === 0) sample();
    },
    onProcessingTime: () => {},
  },
  timerQueues: et.timerQueues,
});
const t0 = performance.now();
for (let i = 0; i < n; i++) {
  // 100k keys; every timestamp has 4 timers (ties broken by key group and key), in shuffled order
  et.state.setCurrentKey(i % 100_000);
  service.registerEventTimeTimer(undefined, ((i * 7919) % n) >> 2);
  if (i % 100_000 === 0) sample();
}
const registered = service.numEventTimeTimers();
sample();
const t1 = performance.now();
service.advanceWatermark(Infinity);
const t2 = performance.now();
sample();
await backends.dispose();
console.log(
  JSON.stringify({
    registered,
    fired,
    maxHeapUsed,
    registerMs: Math.round(t1 - t0),
    fireMs: Math.round(t2 - t1),
  }),
);
