import type { KeyGroupRange } from '@weir/core/runtime';
import { encodeRecords } from '@weir/core/runtime';
import type {
  KeyGroupBatch,
  KeyedStateBackend,
  KeyedStateSnapshot,
  KeyedStateSnapshotMaterializer,
} from '../state/keyed-state-backend.js';
import type { WindowSerializer } from './api.js';
import {
  InternalTimerService,
  type ProcessingTimeService,
  type Triggerable,
} from './internal-timer-service.js';
import type {
  NamespacedKeyedState,
  NamespacedListState,
  NamespacedValueState,
  NamespaceKey,
} from './namespaced-state.js';
import { HeapKeyedStateBackend } from '../state/heap-keyed-state-backend.js';
import { denormalizeKey } from '../state/rocksdb/timer-keys.js';
import { eventTimeStores, restoreNamespaced, type EventTimeState } from './event-time-stores.js';
import type { InternalTimer } from './timer-heap.js';
import type { TimerQueue, TimerQueueContext } from './timer-queue.js';

/**
 * Snapshot entry names of heap event-time state inside the keyed state snapshot. Their kinds
 * are not 'namespaced'/'timers': those are the RocksDB backend's row kinds (one row per
 * value or timer), these are whole per-key-group batches.
 */
const NAMESPACED_ENTRY = '__weir.namespaced';
const TIMERS_ENTRY = '__weir.timers';
const KINDS: Record<string, string> = {
  [NAMESPACED_ENTRY]: 'namespaced-batch',
  [TIMERS_ENTRY]: 'timers-batch',
};
/** the timer service's name among the backend's timer states */
const TIMERS_NAME = 'timers';

/**
 * A timer queue made when the state backend is open: operators make their timer service
 * when they are built, before the task opens the backends (RocksDB's queues need the open
 * database). Until then it is empty and refuses changes.
 */
class DeferredTimerQueue<N> implements TimerQueue<N> {
  queue: TimerQueue<N> | undefined;
  constructor(
    readonly domain: 'event' | 'processing',
    readonly ctx: TimerQueueContext<N>,
  ) {}
  private q(): TimerQueue<N> {
    if (!this.queue)
      throw new Error(`'${this.ctx.operatorName}' used timers before its state backend was opened`);
    return this.queue;
  }
  get size(): number {
    return this.queue?.size ?? 0;
  }
  peek(): InternalTimer<N> | undefined {
    return this.queue?.peek();
  }
  poll(): InternalTimer<N> | undefined {
    return this.queue?.poll();
  }
  add(...a: Parameters<TimerQueue<N>['add']>): boolean {
    return this.q().add(...a);
  }
  delete(...a: Parameters<TimerQueue<N>['delete']>): boolean {
    return this.q().delete(...a);
  }
  forEachInKeyGroup(...a: Parameters<TimerQueue<N>['forEachInKeyGroup']>): void {
    this.queue?.forEachInKeyGroup(...a);
  }

  get copyAll(): (() => InternalTimer<N>[]) | undefined {
    const q = this.queue;
    if (!q) return () => [];
    return q.copyAll ? () => q.copyAll!() : undefined;
  }
}

/**
 * Namespaced state and timers of one keyed operator, kept with its keyed state backend:
 * the backend's current key and theirs move together. Where they live is the backend's
 * choice (`eventTimeStores`): on the heap backend, heap structures whose per-key-group
 * snapshots travel inside the backend's canonical snapshot as entries
 * `['__weir.namespaced' | '__weir.timers', keyGroup, bytes]`; on RocksDB, rows in the
 * backend's own database, written, snapshotted (full and incremental) and restored with its
 * other state, so window contents and pending timers stay off the JavaScript heap. Either
 * way checkpoints, savepoints and rescaling (by key group) cover them, and a snapshot of one
 * backend restores into the other.
 */
export class EventTimeKeyedBackend implements KeyedStateBackend {
  private stores: EventTimeState | undefined;
  private readonly deferred: DeferredTimerQueue<unknown>[] = [];
  private view: NamespacedKeyedState | undefined;
  private timerService: InternalTimerService<unknown> | undefined;

  constructor(
    private readonly inner: KeyedStateBackend,
    private readonly operatorName: string,
    private readonly maxParallelism: number,
    private readonly keyGroupRange: KeyGroupRange,
  ) {
    // incremental checkpoints are the backend's (RocksDB keeps event-time rows in its own changes)
    if (inner.snapshotIncremental) this.snapshotIncremental = inner.snapshotIncremental.bind(inner);
    if (inner.adoptRestoredChains) this.adoptRestoredChains = inner.adoptRestoredChains.bind(inner);
    // streamed snapshots are RocksDB's, whose database holds the event-time rows too; so do
    // its native checkpoints and local checkpoints (the database's files)
    if (inner.snapshotStreamed) this.snapshotStreamed = inner.snapshotStreamed.bind(inner);
    if (inner.snapshotNative) this.snapshotNative = inner.snapshotNative.bind(inner);
    if (inner.restoreNative) this.restoreNative = inner.restoreNative.bind(inner);
    if (inner.keepLocalCheckpoint) this.keepLocalCheckpoint = inner.keepLocalCheckpoint.bind(inner);
    if (inner.restoreLocalCheckpoint) this.restoreLocalCheckpoint = inner.restoreLocalCheckpoint.bind(inner);
  }

  snapshotStreamed?: KeyedStateBackend['snapshotStreamed'];
  snapshotNative?: KeyedStateBackend['snapshotNative'];
  restoreNative?: KeyedStateBackend['restoreNative'];
  keepLocalCheckpoint?: KeyedStateBackend['keepLocalCheckpoint'];
  restoreLocalCheckpoint?: KeyedStateBackend['restoreLocalCheckpoint'];
  snapshotIncremental?: KeyedStateBackend['snapshotIncremental'];
  adoptRestoredChains?: KeyedStateBackend['adoptRestoredChains'];

  get type(): KeyedStateBackend['type'] {
    return this.inner.type;
  }

  /** The timer service of the operator (one per operator, as the operator has one namespace kind). */
  createTimerService<N>(
    namespaceSerializer: WindowSerializer<N>,
    processingTimeService: ProcessingTimeService,
    target: Triggerable<N>,
  ): InternalTimerService<N> {
    if (this.timerService) throw new Error(`'${this.operatorName}' asked for a second timer service`);
    const timers = new InternalTimerService<N>({
      operatorName: this.operatorName,
      maxParallelism: this.maxParallelism,
      keyGroupRange: this.keyGroupRange,
      namespaceSerializer,
      keyContext: this,
      processingTimeService,
      target,
      timerQueues: {
        create: <M>(domain: 'event' | 'processing', ctx: TimerQueueContext<M>) => {
          const q = new DeferredTimerQueue<M>(domain, ctx);
          this.deferred.push(q as DeferredTimerQueue<unknown>);
          if (this.stores) q.queue = this.stores.timerQueues.create(domain, ctx);
          return q;
        },
      },
    });
    this.timerService = timers as InternalTimerService<unknown>;
    return timers;
  }

  private namespaced(): NamespacedKeyedState {
    if (!this.stores)
      throw new Error(`'${this.operatorName}' used window state before its state backend was opened`);
    return this.stores.state;
  }

  // ---- KeyContext: one current key for keyed state, namespaced state and timers

  setCurrentKey(key: unknown): void {
    this.inner.setCurrentKey(key);
    this.stores?.state.setCurrentKey(key);
  }

  getCurrentKey(): unknown {
    return this.inner.getCurrentKey();
  }

  /**
   * Namespaced state (window contents, trigger and window state) whose current key is this
   * backend's: setting the key there sets it for keyed state and timers too.
   */
  namespacedState(): NamespacedKeyedState {
    const self = this;
    return (this.view ??= {
      setCurrentKey: (key) => self.setCurrentKey(key),
      getCurrentKey: () => self.getCurrentKey(),
      // operators take their state handles when built, before the backend is open: bind on first use
      getValueState: <T>(name: string): NamespacedValueState<T> => {
        let h: NamespacedValueState<T> | undefined;
        const state = (): NamespacedValueState<T> => (h ??= self.namespaced().getValueState<T>(name));
        return {
          get: (ns) => state().get(ns),
          update: (ns, v) => state().update(ns, v),
          clear: (ns) => state().clear(ns),
        };
      },
      getListState: <T>(name: string): NamespacedListState<T> => {
        let h: NamespacedListState<T> | undefined;
        const state = (): NamespacedListState<T> => (h ??= self.namespaced().getListState<T>(name));
        return {
          get: (ns) => state().get(ns),
          add: (ns, v) => state().add(ns, v),
          update: (ns, vs) => state().update(ns, vs),
          clear: (ns) => state().clear(ns),
        };
      },
      namespaces: (name: string): NamespaceKey[] => self.namespaced().namespaces(name),
      forEachKey: (name, fn) => self.stores?.state.forEachKey(name, fn),
      snapshotKeyGroup: (kg) => self.stores?.state.snapshotKeyGroup(kg),
      restoreKeyGroup: (kg, data) => self.namespaced().restoreKeyGroup(kg, data),
      numEntries: () => self.stores?.state.numEntries() ?? 0,
    });
  }

  // ---- KeyedStateBackend: the user's keyed state stays in the inner backend

  /** Opens the backend, then places the event-time stores in it and gives the timer service its queues. */
  async open(): Promise<void> {
    await this.inner.open();
    this.stores = eventTimeStores(this.inner, {
      operatorName: this.operatorName,
      maxParallelism: this.maxParallelism,
      keyGroupRange: this.keyGroupRange,
      name: TIMERS_NAME,
    });
    const key = this.inner.getCurrentKey();
    if (key !== undefined) this.stores.state.setCurrentKey(key);
    for (const q of this.deferred) q.queue = this.stores.timerQueues.create(q.domain, q.ctx);
  }

  getState: KeyedStateBackend['getState'] = (d) => this.inner.getState(d);
  getListState: KeyedStateBackend['getListState'] = (d) => this.inner.getListState(d);
  getMapState: KeyedStateBackend['getMapState'] = (d) => this.inner.getMapState(d);
  getReducingState: KeyedStateBackend['getReducingState'] = (d) => this.inner.getReducingState(d);
  getAggregatingState: KeyedStateBackend['getAggregatingState'] = (d) => this.inner.getAggregatingState(d);

  /**
   * The inner backend's snapshot with the event-time entries added to each key group's
   * batch. On the heap, the synchronous part opens a copy-on-write view of each (state, key
   * group) of namespaced state and copies the timer lists (references); both are serialized
   * after the barrier, in slices, with the heap backend's copy-on-write tables.
   */
  snapshot(maxParallelism: number): KeyedStateSnapshotMaterializer {
    // RocksDB: the backend's own snapshot holds the rows already
    if (!this.stores || this.stores.inKeyedSnapshot) return this.inner.snapshot(maxParallelism);
    const r = this.keyGroupRange;
    const slicing = this.inner instanceof HeapKeyedStateBackend ? this.inner.snapshotSlicing : undefined;
    // heap: copy-on-write views now, serialized after the barrier; else serialized now
    const nsLater = this.stores.state.snapshotLater?.(slicing);
    let nsNow: Map<number, Uint8Array> | undefined;
    if (!nsLater) {
      nsNow = new Map<number, Uint8Array>();
      for (let kg = r.start; kg <= r.end; kg++) {
        const bytes = this.stores.state.snapshotKeyGroup(kg);
        if (bytes) nsNow.set(kg, bytes);
      }
    }
    const service = this.timerService;
    const timersLater = service?.snapshotLater(slicing);
    const timersNow = timersLater ? undefined : service?.snapshot();
    /** per key group: [NAMESPACED_ENTRY, kg, bytes] and [TIMERS_ENTRY, kg, bytes] as one batch */
    const own = async (): Promise<Map<number, Uint8Array>> => {
      const ns = nsNow ?? (await nsLater!.serialize());
      const timers = timersLater ? await timersLater() : (timersNow ?? new Map<number, Uint8Array>());
      const out = new Map<number, Uint8Array>();
      for (let kg = r.start; kg <= r.end; kg++) {
        const entries: unknown[] = [];
        const n = ns.get(kg);
        if (n) entries.push([NAMESPACED_ENTRY, kg, n]);
        const t = timers.get(kg);
        if (t) entries.push([TIMERS_ENTRY, kg, t]);
        if (entries.length > 0) out.set(kg, encodeRecords(entries));
      }
      return out;
    };
    const inner = this.inner.snapshot(maxParallelism);
    const materialize = (async () => {
      // both run (the inner view is released) even if one fails
      const [extra, base] = await Promise.all([own(), inner()]);
      return mergeSnapshots(base, extra);
    }) as KeyedStateSnapshotMaterializer;
    const innerBatches = inner.batches;
    if (innerBatches)
      materialize.batches = (opts) => {
        const b = innerBatches(opts);
        const kinds = { ...b.kinds, ...KINDS };
        return {
          kinds,
          ...(b.release ? { release: b.release } : {}),
          batches: (async function* () {
            const extra = await own();
            if (extra.size === 0) {
              // no event-time entries after all: the kinds stay the inner backend's
              for (const k of Object.keys(KINDS)) if (!(k in b.kinds)) delete kinds[k as keyof typeof kinds];
              yield* b.batches;
            } else yield* mergeBatches(b.batches, extra);
          })(),
        };
      };
    materialize.discard = () => {
      nsLater?.discard();
      inner.discard?.();
    };
    return materialize;
  }

  restoreEntries(kinds: Record<string, string>, entries: unknown[]): void {
    let rest: unknown[] | undefined;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as [string, number, Uint8Array];
      if (e[0] === NAMESPACED_ENTRY) this.namespaced().restoreKeyGroup(e[1], e[2]);
      else if (e[0] === TIMERS_ENTRY) {
        if (!this.timerService)
          throw new Error(
            `'${this.operatorName}' has timers in its restored state but no timer service; was the operator changed?`,
          );
        this.timerService.restoreKeyGroup(e[1], e[2]);
      } else (rest ??= []).push(e);
    }
    if (rest) this.inner.restoreEntries(kinds, rest);
  }

  restoreDelta(kinds: Record<string, string>, ops: unknown[]): void {
    this.inner.restoreDelta(kinds, ops);
  }

  /**
   * Every restore call is done. A RocksDB checkpoint restored into the heap backend left its
   * namespaced rows and timers in the heap backend (full entries and deltas applied in
   * order); they move into the heap stores now. Timers restored into RocksDB queues, or
   * into heap queues from a heap snapshot, are scheduled on the clock.
   */
  restoreFinished(): void {
    this.inner.restoreFinished?.();
    const rows = this.inner instanceof HeapKeyedStateBackend ? this.inner.restoredEventTime : undefined;
    if (rows && this.stores && !this.stores.inKeyedSnapshot) {
      restoreNamespaced(this.stores.state as never, rows.take('namespaced'), this.maxParallelism);
      const timers = rows.take('timers');
      const service = this.timerService;
      for (const domain of ['event', 'processing'] as const) {
        const list = timers.get(`${TIMERS_NAME}/${domain}`) ?? [];
        if (list.length > 0 && !service)
          throw new Error(`'${this.operatorName}' has timers in its restored state but no timer service`);
        for (const [nk, ts, ns] of list) {
          this.setCurrentKey(denormalizeKey(nk));
          service!.restoreTimer(domain, ts as number, ns);
        }
      }
    }
    this.timerService?.scheduleRestoredTimers();
  }

  notifyCheckpointComplete(checkpointId: number): void {
    this.inner.notifyCheckpointComplete?.(checkpointId);
  }

  notifyCheckpointAborted(checkpointId: number): void {
    this.inner.notifyCheckpointAborted?.(checkpointId);
  }

  numKeys(): number {
    return this.inner.numKeys();
  }

  async dispose(): Promise<void> {
    this.timerService?.close();
    await this.inner.dispose();
  }
}

/** The event-time state of a keyed operator over its keyed state backend (see EventTimeKeyedBackend). */
export function createEventTimeState(
  backend: KeyedStateBackend,
  operatorName: string,
  maxParallelism: number,
  keyGroupRange: KeyGroupRange,
): EventTimeKeyedBackend {
  return new EventTimeKeyedBackend(backend, operatorName, maxParallelism, keyGroupRange);
}

/**
 * Adds per-key-group batches to a canonical snapshot. A batch is one MessagePack array, so
 * two batches of a key group join by adding their counts and concatenating their elements.
 */
export function mergeSnapshots(
  base: KeyedStateSnapshot | undefined,
  extra: Map<number, Uint8Array>,
): KeyedStateSnapshot | undefined {
  if (extra.size === 0) return base;
  const groups = new Set<number>(extra.keys());
  if (base) for (const kg of Object.keys(base.index)) groups.add(Number(kg));
  const parts: Uint8Array[] = [];
  const index: Record<number, [number, number]> = {};
  let offset = 0;
  for (const kg of [...groups].sort((a, b) => a - b)) {
    const range = base?.index[kg];
    const a = range ? base!.data.subarray(range[0], range[0] + range[1]) : undefined;
    const b = extra.get(kg);
    const bytes = a && b ? concatArrays(a, b) : (a ?? b)!;
    index[kg] = [offset, bytes.byteLength];
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  return { data: Buffer.concat(parts), index, kinds: { ...(base?.kinds ?? {}), ...KINDS } };
}

/**
 * mergeSnapshots for a snapshot produced batch by batch: each of the extra batches joins the
 * first batch of its key group met in order, or comes on its own (a key group may come in
 * several batches, so the order is free).
 */
async function* mergeBatches(
  base: AsyncIterable<KeyGroupBatch>,
  extra: Map<number, Uint8Array>,
): AsyncGenerator<KeyGroupBatch> {
  const own = [...extra.keys()].sort((a, b) => a - b);
  let i = 0;
  const ownBatch = (kg: number): KeyGroupBatch => {
    const bytes = extra.get(kg)!;
    const h = arrayHeader(bytes);
    return { keyGroup: kg, count: h.count, parts: [bytes.subarray(h.start)] };
  };
  for await (const b of base) {
    while (i < own.length && own[i]! < b.keyGroup) yield ownBatch(own[i++]!);
    if (i < own.length && own[i] === b.keyGroup) {
      const o = ownBatch(own[i++]!);
      yield { keyGroup: b.keyGroup, count: b.count + o.count, parts: [...b.parts, ...o.parts] };
    } else yield b;
  }
  while (i < own.length) yield ownBatch(own[i++]!);
}

/** Count and elements of a MessagePack array. */
function arrayHeader(bytes: Uint8Array): { count: number; start: number } {
  const h = bytes[0]!;
  if (h >= 0x90 && h <= 0x9f) return { count: h & 0x0f, start: 1 };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (h === 0xdc) return { count: view.getUint16(1), start: 3 };
  if (h === 0xdd) return { count: view.getUint32(1), start: 5 };
  throw new Error(`Corrupt keyed state batch: expected a MessagePack array, got byte 0x${h.toString(16)}`);
}

/** Two MessagePack arrays as one. */
function concatArrays(a: Uint8Array, b: Uint8Array): Uint8Array {
  const ha = arrayHeader(a);
  const hb = arrayHeader(b);
  const bodyA = a.subarray(ha.start);
  const bodyB = b.subarray(hb.start);
  const out = Buffer.allocUnsafe(5 + bodyA.byteLength + bodyB.byteLength);
  out[0] = 0xdd;
  out.writeUInt32BE(ha.count + hb.count, 1);
  out.set(bodyA, 5);
  out.set(bodyB, 5 + bodyA.byteLength);
  return out;
}
