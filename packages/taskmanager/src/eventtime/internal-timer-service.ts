import type { KeyGroupRange } from '@weir/core/runtime';
import { assignToKeyGroup, decodeRecords, encodeRecords, normalizeKey } from '@weir/core/runtime';
import type { WindowSerializer } from './api.js';
import type { InternalTimer } from './timer-heap.js';
import { DEFAULT_SLICING, Slicer, type SnapshotSlicing } from '../state/heap-snapshot.js';
import { HEAP_TIMER_QUEUES, type TimerQueue, type TimerQueueFactory } from './timer-queue.js';

/** Which key the operator is processing; the timer service sets it before a timer fires. */
export interface KeyContext {
  getCurrentKey(): unknown;
  setCurrentKey(key: unknown): void;
}

/** What fires when a timer is due (the operator). */
export interface Triggerable<N> {
  onEventTime(timer: InternalTimer<N>): void;
  onProcessingTime(timer: InternalTimer<N>): void;
}

/** The task's processing-time clock and one-shot callbacks on it (a manual clock in tests). */
export interface ProcessingTimeService {
  getCurrentProcessingTime(): number;
  /** calls `callback(time)` at or after `time`, in the task's thread */
  registerTimer(time: number, callback: (time: number) => void): { cancel(): void };
}

/** Namespace of timers and state that belong to the key alone (KeyedProcessFunction). */
export const VOID_NAMESPACE_SERIALIZER: WindowSerializer<undefined> = {
  toKey: () => 0,
  fromKey: () => undefined,
};

const EVENT_TIME = 0;
const PROCESSING_TIME = 1;

export interface InternalTimerServiceOptions<N> {
  /** operator name, for errors */
  operatorName: string;
  maxParallelism: number;
  /** the key groups this subtask owns */
  keyGroupRange: KeyGroupRange;
  namespaceSerializer: WindowSerializer<N>;
  keyContext: KeyContext;
  processingTimeService: ProcessingTimeService;
  target: Triggerable<N>;
  /** where the timers are kept (default: the heap; see event-time-state.ts for RocksDB) */
  timerQueues?: TimerQueueFactory;
}

/**
 * Event-time and processing-time timers of one keyed operator (Flink's
 * InternalTimerServiceImpl): a timer is unique per (key, namespace, timestamp); each domain
 * is one TimerQueue (a binary heap with a dedup map per key group, or RocksDB), snapshotted
 * per key group, so timers are redistributed with their key groups on rescale.
 */
export class InternalTimerService<N> {
  private readonly eventTimeQueue: TimerQueue<N>;
  private readonly processingTimeQueue: TimerQueue<N>;
  private watermark = -Infinity;
  private physicalTimer: { cancel(): void } | undefined;
  private physicalTimerTime = Infinity;
  // the key of the last registration, so a run of registrations for one key hashes it once
  private lastKey: unknown = undefined;
  private lastNormalizedKey: string | number = 0;
  private lastKeyGroup = -1;
  private readonly onProcessingTimeCallback = (time: number): void => this.onProcessingTime(time);

  constructor(private readonly opts: InternalTimerServiceOptions<N>) {
    const queues = opts.timerQueues ?? HEAP_TIMER_QUEUES;
    this.eventTimeQueue = queues.create<N>('event', opts);
    this.processingTimeQueue = queues.create<N>('processing', opts);
    // timers the queue found in restored state (RocksDB): the earliest processing-time one is due on the clock
    const head = this.processingTimeQueue.peek();
    if (head !== undefined) this.schedulePhysical(head.timestamp);
  }

  currentWatermark(): number {
    return this.watermark;
  }

  currentProcessingTime(): number {
    return this.opts.processingTimeService.getCurrentProcessingTime();
  }

  numEventTimeTimers(): number {
    return this.eventTimeQueue.size;
  }

  numProcessingTimeTimers(): number {
    return this.processingTimeQueue.size;
  }

  /** The earliest pending event-time timer, or undefined. */
  nextEventTimeTimer(): number | undefined {
    return this.eventTimeQueue.peek()?.timestamp;
  }

  /** `namespaceKey`: the namespace's serializer key when the caller has it already */
  registerEventTimeTimer(namespace: N, time: number, namespaceKey?: string | number): void {
    this.add(EVENT_TIME, namespace, time, namespaceKey);
  }

  registerProcessingTimeTimer(namespace: N, time: number, namespaceKey?: string | number): void {
    const before = this.processingTimeQueue.peek()?.timestamp ?? Infinity;
    if (this.add(PROCESSING_TIME, namespace, time, namespaceKey) && time < before)
      this.schedulePhysical(time);
  }

  deleteEventTimeTimer(namespace: N, time: number, namespaceKey?: string | number): void {
    this.remove(EVENT_TIME, namespace, time, namespaceKey);
  }

  deleteProcessingTimeTimer(namespace: N, time: number, namespaceKey?: string | number): void {
    this.remove(PROCESSING_TIME, namespace, time, namespaceKey);
  }

  /**
   * The watermark reached `time`: fires every event-time timer with timestamp <= time, in
   * timestamp order, each with its key set as the current key. Timers registered while
   * firing that are already due fire in the same call.
   */
  advanceWatermark(time: number): void {
    if (time > this.watermark) this.watermark = time;
    const q = this.eventTimeQueue;
    const target = this.opts.target;
    const keyContext = this.opts.keyContext;
    let t = q.peek();
    while (t !== undefined && t.timestamp <= time) {
      q.poll();
      keyContext.setCurrentKey(t.key);
      target.onEventTime(t);
      t = q.peek();
    }
  }

  /** The processing-time clock reached `time` (called by the physical timer, or by the task). */
  onProcessingTime(time: number): void {
    this.physicalTimer = undefined;
    this.physicalTimerTime = Infinity;
    const q = this.processingTimeQueue;
    const target = this.opts.target;
    const keyContext = this.opts.keyContext;
    let t = q.peek();
    while (t !== undefined && t.timestamp <= time) {
      q.poll();
      keyContext.setCurrentKey(t.key);
      target.onProcessingTime(t);
      t = q.peek();
    }
    if (t !== undefined) this.schedulePhysical(t.timestamp);
  }

  /**
   * Timers of one key group as one msgpack batch (`encodeRecords`) of
   * `[domain (0 event, 1 processing), key, namespaceKey, timestamp]`, or undefined when it has none.
   */
  snapshotKeyGroup(keyGroup: number): Uint8Array | undefined {
    this.requireOwned(keyGroup);
    const entries: unknown[] = [];
    for (const domain of [EVENT_TIME, PROCESSING_TIME]) {
      this.queue(domain).forEachInKeyGroup(keyGroup, (key, namespaceKey, timestamp) => {
        entries.push([domain, key, namespaceKey, timestamp]);
      });
    }
    return entries.length === 0 ? undefined : encodeRecords(entries);
  }

  /**
   * The synchronous part of a timer snapshot when both queues hold their timers on the heap: a
   * copy of the timer lists (references, no serialization). The returned function serializes
   * them per key group (as snapshotKeyGroup) in slices of at most `slicing.ms`, later, while records
   * are processed. Undefined when a queue keeps its timers elsewhere (RocksDB).
   */
  snapshotLater(
    slicing: SnapshotSlicing = DEFAULT_SLICING,
  ): (() => Promise<Map<number, Uint8Array>>) | undefined {
    const ev = this.eventTimeQueue.copyAll?.();
    const pr = this.processingTimeQueue.copyAll?.();
    if (!ev || !pr) return undefined;
    return async () => {
      const groups = new Map<number, unknown[]>();
      const slicer = new Slicer(slicing, ev.length + pr.length);
      let n = 0;
      for (const [domain, timers] of [
        [EVENT_TIME, ev],
        [PROCESSING_TIME, pr],
      ] as const) {
        for (const t of timers) {
          let g = groups.get(t.keyGroup);
          if (!g) groups.set(t.keyGroup, (g = []));
          g.push([domain, t.key, t.namespaceKey, t.timestamp]);
          if (++n % slicing.checkEvery === 0 && slicer.due()) await slicer.pause(n);
        }
      }
      const out = new Map<number, Uint8Array>();
      for (const [kg, entries] of groups) {
        out.set(kg, encodeRecords(entries));
        groups.delete(kg);
        if (slicer.due()) await slicer.pause(n);
      }
      return out;
    };
  }

  /** Every key group of this subtask that has timers. */
  snapshot(): Map<number, Uint8Array> {
    const out = new Map<number, Uint8Array>();
    const r = this.opts.keyGroupRange;
    for (let kg = r.start; kg <= r.end; kg++) {
      const data = this.snapshotKeyGroup(kg);
      if (data) out.set(kg, data);
    }
    return out;
  }

  /**
   * Adds the timers of one key group from a snapshot (of any earlier parallelism). Key
   * groups outside this subtask's range belong to another subtask and fail loudly.
   */
  restoreKeyGroup(keyGroup: number, data: Uint8Array): void {
    this.requireOwned(keyGroup);
    const serializer = this.opts.namespaceSerializer;
    for (const e of decodeRecords(data)) {
      const [domain, key, nsKey, ts] = e as [number, unknown, string | number, number];
      const kg = assignToKeyGroup(key, this.opts.maxParallelism);
      if (kg !== keyGroup) {
        throw new Error(
          `Timer state of '${this.opts.operatorName}' is inconsistent: key ${JSON.stringify(key)} of key group ${kg} was stored under key group ${keyGroup} (was the max parallelism changed?)`,
        );
      }
      this.insert(domain, key, normalizeKey(key), kg, serializer.fromKey(nsKey), nsKey, ts);
    }
    const head = this.processingTimeQueue.peek();
    if (head !== undefined && head.timestamp < this.physicalTimerTime) this.schedulePhysical(head.timestamp);
  }

  /** One restored timer of the current key (rows of a RocksDB checkpoint moved into heap queues). */
  restoreTimer(domain: 'event' | 'processing', time: number, namespaceKey: string | number): void {
    const ns = this.opts.namespaceSerializer.fromKey(namespaceKey);
    this.add(domain === 'event' ? EVENT_TIME : PROCESSING_TIME, ns, time, namespaceKey);
  }

  /** Puts the earliest processing-time timer the queues hold on the clock (after a restore). */
  scheduleRestoredTimers(): void {
    const head = this.processingTimeQueue.peek();
    if (head !== undefined && head.timestamp < this.physicalTimerTime) this.schedulePhysical(head.timestamp);
  }

  /**
   * Restores the operator's watermark (kept with its state so lateness decisions after
   * recovery match those of an undisturbed run). Timers at or below it already fired.
   */
  restoreWatermark(watermark: number): void {
    this.watermark = watermark;
  }

  /** Cancels the physical processing-time timer (the task is closing). */
  close(): void {
    this.physicalTimer?.cancel();
    this.physicalTimer = undefined;
    this.physicalTimerTime = Infinity;
  }

  private schedulePhysical(time: number): void {
    if (time >= this.physicalTimerTime) return;
    this.physicalTimer?.cancel();
    this.physicalTimerTime = time;
    this.physicalTimer = this.opts.processingTimeService.registerTimer(time, this.onProcessingTimeCallback);
  }

  private resolveCurrentKey(): void {
    const key = this.opts.keyContext.getCurrentKey();
    if (key === this.lastKey && this.lastKeyGroup >= 0) return;
    if (key === undefined || key === null) {
      throw new Error(
        `'${this.opts.operatorName}' registered a timer without a current key; timers need a keyed stream (keyBy(...) before it)`,
      );
    }
    const kg = assignToKeyGroup(key, this.opts.maxParallelism);
    this.requireOwned(kg);
    this.lastKey = key;
    this.lastNormalizedKey = normalizeKey(key);
    this.lastKeyGroup = kg;
  }

  private add(
    domain: number,
    namespace: N,
    time: number,
    namespaceKey: string | number | undefined,
  ): boolean {
    if (typeof time !== 'number' || Number.isNaN(time)) {
      throw new Error(
        `'${this.opts.operatorName}' registered a timer at ${String(time)}; a timer needs a number of milliseconds`,
      );
    }
    this.resolveCurrentKey();
    const nsKey = namespaceKey ?? this.opts.namespaceSerializer.toKey(namespace);
    return this.insert(
      domain,
      this.lastKey,
      this.lastNormalizedKey,
      this.lastKeyGroup,
      namespace,
      nsKey,
      time,
    );
  }

  private insert(
    domain: number,
    key: unknown,
    normalizedKey: string | number,
    keyGroup: number,
    namespace: N,
    namespaceKey: string | number,
    timestamp: number,
  ): boolean {
    return this.queue(domain).add(timestamp, key, normalizedKey, keyGroup, namespace, namespaceKey);
  }

  private remove(
    domain: number,
    namespace: N,
    time: number,
    namespaceKey: string | number | undefined,
  ): void {
    this.resolveCurrentKey();
    const nsKey = namespaceKey ?? this.opts.namespaceSerializer.toKey(namespace);
    this.queue(domain).delete(time, this.lastNormalizedKey, this.lastKeyGroup, nsKey);
  }

  private queue(domain: number): TimerQueue<N> {
    return domain === EVENT_TIME ? this.eventTimeQueue : this.processingTimeQueue;
  }

  private requireOwned(keyGroup: number): void {
    if (!this.opts.keyGroupRange.contains(keyGroup)) {
      throw new Error(
        `'${this.opts.operatorName}' got a timer of key group ${keyGroup}, outside its ${this.opts.keyGroupRange.toString()}; the key must come from the keyBy() that partitions this operator's input`,
      );
    }
  }
}
