import type { KeyGroupRange } from '@weir/core/runtime';
import { assignNormalizedKeyToKeyGroup, encodeRecords } from '@weir/core/runtime';
import { HeapKeyedStateBackend } from '../state/heap-keyed-state-backend.js';
import type { KeyedStateBackend } from '../state/keyed-state-backend.js';
import type { EventTimeRow } from '../state/restored-event-time-rows.js';
import { RocksDBKeyedStateBackend } from '../state/rocksdb-keyed-state-backend.js';
import { denormalizeKey } from '../state/rocksdb/timer-keys.js';
import { HeapNamespacedKeyedState, type NamespacedKeyedState } from './namespaced-state.js';
import { RocksDbNamespacedKeyedState } from './rocksdb-namespaced-state.js';
import { RocksDbTimerQueue } from './rocksdb-timer-queue.js';
import { HeapTimerQueue, type TimerQueueFactory } from './timer-queue.js';

/** Namespaced state and timer queues of one keyed operator, on its keyed state backend. */
export interface EventTimeState {
  /** window contents, trigger and window state (the operator's KeyContext too) */
  state: NamespacedKeyedState;
  /** for InternalTimerServiceOptions.timerQueues */
  timerQueues: TimerQueueFactory;
  /**
   * True when the keyed backend's own snapshots (full and incremental) already hold the
   * namespaced state and the timers, and its restore brings them back: the operator must not
   * snapshot them again with `state.snapshotKeyGroup` / `InternalTimerService.snapshotKeyGroup`
   * (RocksDB). False: they live beside the backend and the operator snapshots them per key
   * group (heap). Either way those per-key-group methods work, so a snapshot of one kind
   * restores into the other.
   */
  inKeyedSnapshot: boolean;
}

/**
 * Where a keyed operator's event-time state lives, by its keyed state backend (Flink keeps
 * timers in the backend's priority-queue factory the same way): the heap backend gets the
 * heap classes; the RocksDB backend (opened) gets namespaced state and timers in its own
 * database, in its write buffer, snapshots, incremental checkpoints and restores, so window
 * contents and millions of pending timers do not live on the JavaScript heap. Call it after
 * the backend is opened. With the heap backend, call it after the keyed state is restored: a
 * RocksDB checkpoint restored into the heap backend holds namespaced state and timers in its
 * keyed state, and they move from the backend into the heap classes here (RocksDB reads
 * restored rows whenever they arrive). `name` tells the timer states of two timer services
 * of one operator apart.
 */
export function eventTimeStores(
  backend: KeyedStateBackend | undefined,
  opts: { operatorName: string; maxParallelism: number; keyGroupRange: KeyGroupRange; name?: string },
): EventTimeState {
  const prefix = opts.name ?? 'timers';
  if (!(backend instanceof RocksDBKeyedStateBackend)) {
    const state = new HeapNamespacedKeyedState(opts.operatorName, opts.maxParallelism, opts.keyGroupRange);
    const restored = backend instanceof HeapKeyedStateBackend ? backend.restoredEventTime : undefined;
    if (restored) restoreNamespaced(state, restored.take('namespaced'), opts.maxParallelism);
    const timers = restored?.take('timers');
    return {
      state,
      timerQueues: {
        create: (domain, ctx) => {
          const q = new HeapTimerQueue<never>(ctx.keyGroupRange);
          for (const [nk, ts, ns] of timers?.get(`${prefix}/${domain}`) ?? []) {
            const kg = assignNormalizedKeyToKeyGroup(nk, ctx.maxParallelism);
            q.add(ts as number, denormalizeKey(nk), nk, kg, ctx.namespaceSerializer.fromKey(ns) as never, ns);
          }
          return q;
        },
      },
      inKeyedSnapshot: false,
    };
  }
  const host = backend.eventTimeHost();
  if (host.maxParallelism !== opts.maxParallelism) {
    throw new Error(
      `'${opts.operatorName}': its RocksDB state is laid out for max parallelism ${host.maxParallelism}, not ${opts.maxParallelism}`,
    );
  }
  return {
    state: new RocksDbNamespacedKeyedState(host, opts.operatorName, opts.keyGroupRange),
    timerQueues: {
      create: (domain, ctx) => new RocksDbTimerQueue(host, `${prefix}/${domain}`, ctx),
    },
    inKeyedSnapshot: true,
  };
}

/** Rows of namespaced state from a RocksDB checkpoint into the heap's, per key group. */
export function restoreNamespaced(
  state: HeapNamespacedKeyedState,
  byName: Map<string, EventTimeRow[]>,
  maxParallelism: number,
): void {
  const groups = new Map<number, unknown[]>();
  for (const [name, rows] of byName) {
    for (const [nk, value, ns] of rows) {
      const kg = assignNormalizedKeyToKeyGroup(nk, maxParallelism);
      let g = groups.get(kg);
      if (!g) groups.set(kg, (g = []));
      g.push([name, nk, value, ns]);
    }
  }
  for (const [kg, entries] of groups) state.restoreKeyGroup(kg, encodeRecords(entries));
}
