import type { KeyGroupRange } from '@weir/core';
import { encodeRecords } from '@weir/core';
import type {
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
import {
  HeapNamespacedKeyedState,
  type NamespacedKeyedState,
  type NamespacedListState,
  type NamespacedValueState,
  type NamespaceKey,
} from './namespaced-state.js';

/** Snapshot entry names of the event-time state inside the keyed state snapshot. */
const NAMESPACED_ENTRY = '__weir.namespaced';
const TIMERS_ENTRY = '__weir.timers';
const KINDS: Record<string, string> = { [NAMESPACED_ENTRY]: 'namespaced', [TIMERS_ENTRY]: 'timers' };

/**
 * Namespaced state and timers of one keyed operator, kept with its keyed state backend:
 * the backend's current key and theirs move together, and their per-key-group snapshots
 * travel inside the backend's canonical snapshot as entries
 * `['__weir.namespaced' | '__weir.timers', keyGroup, bytes]`, so checkpoints, savepoints
 * and rescaling (by key group) cover them with nothing else to change. Both backends use
 * the heap structures here; the one place to switch to RocksDB-backed ones is
 * `createEventTimeState`.
 */
export class EventTimeKeyedBackend implements KeyedStateBackend {
  private heapNamespaced: HeapNamespacedKeyedState | undefined;
  private view: NamespacedKeyedState | undefined;
  private timerService: InternalTimerService<unknown> | undefined;

  constructor(
    private readonly inner: KeyedStateBackend,
    private readonly operatorName: string,
    private readonly maxParallelism: number,
    private readonly keyGroupRange: KeyGroupRange,
  ) {}

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
    });
    this.timerService = timers as InternalTimerService<unknown>;
    return timers;
  }

  private namespaced(): HeapNamespacedKeyedState {
    if (!this.heapNamespaced) {
      this.heapNamespaced = new HeapNamespacedKeyedState(
        this.operatorName,
        this.maxParallelism,
        this.keyGroupRange,
      );
      const key = this.inner.getCurrentKey();
      if (key !== undefined) this.heapNamespaced.setCurrentKey(key);
    }
    return this.heapNamespaced;
  }

  // ---- KeyContext: one current key for keyed state, namespaced state and timers

  setCurrentKey(key: unknown): void {
    this.inner.setCurrentKey(key);
    this.heapNamespaced?.setCurrentKey(key);
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
      getValueState: <T>(name: string): NamespacedValueState<T> => self.namespaced().getValueState<T>(name),
      getListState: <T>(name: string): NamespacedListState<T> => self.namespaced().getListState<T>(name),
      namespaces: (name: string): NamespaceKey[] => self.namespaced().namespaces(name),
      forEachKey: (name, fn) => self.heapNamespaced?.forEachKey(name, fn),
      snapshotKeyGroup: (kg) => self.heapNamespaced?.snapshotKeyGroup(kg),
      restoreKeyGroup: (kg, data) => self.namespaced().restoreKeyGroup(kg, data),
      numEntries: () => self.heapNamespaced?.numEntries() ?? 0,
    });
  }

  // ---- KeyedStateBackend: the user's keyed state stays in the inner backend

  open(): Promise<void> {
    return this.inner.open();
  }

  getState: KeyedStateBackend['getState'] = (d) => this.inner.getState(d);
  getListState: KeyedStateBackend['getListState'] = (d) => this.inner.getListState(d);
  getMapState: KeyedStateBackend['getMapState'] = (d) => this.inner.getMapState(d);
  getReducingState: KeyedStateBackend['getReducingState'] = (d) => this.inner.getReducingState(d);
  getAggregatingState: KeyedStateBackend['getAggregatingState'] = (d) => this.inner.getAggregatingState(d);

  /**
   * The inner backend's snapshot with the event-time entries added to each key group's
   * batch. The event-time part is serialized here, in the synchronous part.
   */
  snapshot(maxParallelism: number): KeyedStateSnapshotMaterializer {
    const own = new Map<number, Uint8Array>();
    const r = this.keyGroupRange;
    for (let kg = r.start; kg <= r.end; kg++) {
      const entries: unknown[] = [];
      const ns = this.heapNamespaced?.snapshotKeyGroup(kg);
      if (ns) entries.push([NAMESPACED_ENTRY, kg, ns]);
      const timers = this.timerService?.snapshotKeyGroup(kg);
      if (timers) entries.push([TIMERS_ENTRY, kg, timers]);
      if (entries.length > 0) own.set(kg, encodeRecords(entries));
    }
    const inner = this.inner.snapshot(maxParallelism);
    return async () => mergeSnapshots(await inner(), own);
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

/**
 * The event-time state of a keyed operator over its keyed state backend. Heap namespaced
 * state and heap timers for both backends for now (snapshotted through the backend's
 * snapshot, so a RocksDB job is exactly-once too); the switch to RocksDB-backed ones goes here.
 */
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
