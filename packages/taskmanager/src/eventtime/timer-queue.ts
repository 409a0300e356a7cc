import type { KeyGroupRange } from '@weir/core/runtime';
import type { WindowSerializer } from './api.js';
import { TimerHeap, type InternalTimer } from './timer-heap.js';

/** A timer's key or namespace as state keeps it. */
type Scalar = string | number;

/** Which clock a queue's timers follow; a timer service has one queue per domain. */
export type TimeDomain = 'event' | 'processing';

/**
 * The pending timers of one domain of one timer service (Flink's
 * KeyGroupedInternalPriorityQueue): a set of (timestamp, key, namespace) that polls in the
 * total order of `compareTimers` and snapshots per key group. The heap implementation is
 * below; `RocksDbTimerQueue` keeps the timers in RocksDB and only each key group's earliest
 * ones on the heap.
 */
export interface TimerQueue<N> {
  readonly size: number;
  /** the earliest timer, or undefined; stays valid until the next call that changes the queue */
  peek(): InternalTimer<N> | undefined;
  /** removes and returns the earliest timer */
  poll(): InternalTimer<N> | undefined;
  /**
   * adds the timer unless one with the same (timestamp, key, namespace) is queued; true when
   * added, or when the queue cannot tell without a read (RocksDB, beyond its cache): false
   * only when it surely was queued already
   */
  add(
    timestamp: number,
    key: unknown,
    normalizedKey: Scalar,
    keyGroup: number,
    namespace: N,
    namespaceKey: Scalar,
  ): boolean;
  /** removes that timer if it is queued; false when it surely was not (see add) */
  delete(timestamp: number, normalizedKey: Scalar, keyGroup: number, namespaceKey: Scalar): boolean;
  /** every timer of one key group, in no particular order (snapshots) */
  forEachInKeyGroup(
    keyGroup: number,
    fn: (key: unknown, namespaceKey: Scalar, timestamp: number) => void,
  ): void;
  /**
   * Queues that hold every timer on the heap: all of them, copied (a list of references to
   * timers, which never change), so a snapshot can serialize them after the barrier.
   */
  copyAll?(): InternalTimer<N>[];
}

/** What a queue is created for: the owning timer service's operator and key groups. */
export interface TimerQueueContext<N> {
  operatorName: string;
  maxParallelism: number;
  keyGroupRange: KeyGroupRange;
  namespaceSerializer: WindowSerializer<N>;
}

/** Creates a timer service's queues (see event-time-state.ts for the one per state backend). */
export interface TimerQueueFactory {
  create<N>(domain: TimeDomain, ctx: TimerQueueContext<N>): TimerQueue<N>;
}

/**
 * Timers on the heap (Flink's HeapPriorityQueueSet): one binary heap for O(log n)
 * insert/poll/delete, and a dedup map per key group that also makes snapshots per key group.
 */
export class HeapTimerQueue<N> implements TimerQueue<N> {
  private readonly heap = new TimerHeap<N>();
  /** [keyGroup - start]: dedup key -> timer */
  private readonly dedup: Map<string, InternalTimer<N>>[];
  private readonly start: number;

  constructor(keyGroupRange: KeyGroupRange) {
    this.start = keyGroupRange.start;
    this.dedup = Array.from({ length: keyGroupRange.size }, () => new Map());
  }

  get size(): number {
    return this.heap.size;
  }

  peek(): InternalTimer<N> | undefined {
    return this.heap.peek();
  }

  poll(): InternalTimer<N> | undefined {
    const t = this.heap.poll();
    if (t !== undefined) this.dedup[t.keyGroup - this.start]!.delete(t.dedupKey!);
    return t;
  }

  add(
    timestamp: number,
    key: unknown,
    normalizedKey: Scalar,
    keyGroup: number,
    namespace: N,
    namespaceKey: Scalar,
  ): boolean {
    const map = this.dedup[keyGroup - this.start]!;
    const dk = dedupKey(timestamp, namespaceKey, normalizedKey);
    if (map.has(dk)) return false;
    const timer: InternalTimer<N> = {
      timestamp,
      key,
      normalizedKey,
      keyGroup,
      namespace,
      namespaceKey,
      heapIndex: -1,
      dedupKey: dk,
    };
    map.set(dk, timer);
    this.heap.add(timer);
    return true;
  }

  delete(timestamp: number, normalizedKey: Scalar, keyGroup: number, namespaceKey: Scalar): boolean {
    const map = this.dedup[keyGroup - this.start]!;
    const dk = dedupKey(timestamp, namespaceKey, normalizedKey);
    const timer = map.get(dk);
    if (timer === undefined) return false;
    map.delete(dk);
    this.heap.remove(timer);
    return true;
  }

  forEachInKeyGroup(
    keyGroup: number,
    fn: (key: unknown, namespaceKey: Scalar, timestamp: number) => void,
  ): void {
    for (const t of this.dedup[keyGroup - this.start]!.values()) fn(t.key, t.namespaceKey, t.timestamp);
  }

  copyAll(): InternalTimer<N>[] {
    return this.heap.values().slice();
  }
}

/** The default factory: both domains on the heap. */
export const HEAP_TIMER_QUEUES: TimerQueueFactory = {
  create: <N>(_domain: TimeDomain, ctx: TimerQueueContext<N>): TimerQueue<N> =>
    new HeapTimerQueue<N>(ctx.keyGroupRange),
};

/**
 * One string per (timestamp, namespace, key): namespace keys come from window serializers
 * and never contain NUL; the normalized key goes last, tagged with its type so the number 1
 * and the string '1' stay different keys, as in state.
 */
function dedupKey(timestamp: number, namespaceKey: Scalar, normalizedKey: Scalar): string {
  return `${timestamp}\u0000${namespaceKey}\u0000${typeof normalizedKey === 'number' ? 'n' : 's'}${normalizedKey}`;
}
