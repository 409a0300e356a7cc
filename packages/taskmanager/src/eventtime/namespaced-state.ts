import type { KeyGroupRange } from '@weir/core/runtime';
import {
  UnsupportedValueError,
  assignToKeyGroup,
  decodeRecords,
  encodeRecords,
  encodeValue,
  normalizeKey,
} from '@weir/core/runtime';
import { CopyOnWriteTable, type PreImages } from '../state/copy-on-write-table.js';
import { DEFAULT_SLICING, Slicer, arrayHeader32, type SnapshotSlicing } from '../state/heap-snapshot.js';
import { KeyGroupChunks } from '../state/key-group-chunks.js';
import type { KeyContext } from './internal-timer-service.js';

/** A namespace as state stores it: a window's serializer key, or 0 for state of the key alone. */
export type NamespaceKey = string | number;

/** Keyed state with one value per (current key, namespace). */
export interface NamespacedValueState<T> {
  get(namespace: NamespaceKey): T | undefined;
  update(namespace: NamespaceKey, value: T): void;
  clear(namespace: NamespaceKey): void;
}

/** Keyed list state per (current key, namespace); `get` returns a view the caller must not keep. */
export interface NamespacedListState<T> {
  get(namespace: NamespaceKey): readonly T[] | undefined;
  add(namespace: NamespaceKey, value: T): void;
  update(namespace: NamespaceKey, values: T[]): void;
  clear(namespace: NamespaceKey): void;
}

/**
 * What the window operator, triggers and timers need of a keyed state backend: state
 * addressed by (key group, key, namespace, state name), the key set by the operator before
 * each record and by the timer service before each timer. The heap implementation is below;
 * docs/event-time.md gives the RocksDB layout.
 */
export interface NamespacedKeyedState extends KeyContext {
  getValueState<T>(name: string): NamespacedValueState<T>;
  getListState<T>(name: string): NamespacedListState<T>;
  /** The namespaces the current key has state in under `name` (a copy; RocksDB: one prefix scan). */
  namespaces(name: string): NamespaceKey[];
  /** Calls fn for every key with state under `name` (KeyedBroadcastProcessFunction.applyToKeyedState). */
  forEachKey(name: string, fn: (normalizedKey: string | number, keyGroup: number) => void): void;
  /** Canonical per-key-group snapshot: msgpack batch of [stateName, normalizedKey, value, namespace]. */
  snapshotKeyGroup(keyGroup: number): Uint8Array | undefined;
  /**
   * Heap: the synchronous part of a snapshot of every key group, O(states x key groups) (a
   * copy-on-write view of each); the returned function serializes them as snapshotKeyGroup
   * would, in slices, while records are processed, and `discard` gives the views up unread.
   */
  snapshotLater?(slicing?: SnapshotSlicing): NamespacedSnapshot;
  restoreKeyGroup(keyGroup: number, data: Uint8Array): void;
  /** Number of (key, namespace) entries over all states (metrics, tests). */
  numEntries(): number;
}

/** The asynchronous part of a namespaced snapshot (see NamespacedKeyedState.snapshotLater). */
export interface NamespacedSnapshot {
  /** key group -> its batch, as snapshotKeyGroup returns it; releases the views */
  serialize(): Promise<Map<number, Uint8Array>>;
  /** releases the views unread (a no-op once serialized) */
  discard(): void;
}

/** one key group of one state: key -> namespace -> value (undefined: deleted while a snapshot is in progress) */
const ARRAY4 = Buffer.from([0x94]);

type KeyMap = CopyOnWriteTable<Map<NamespaceKey, unknown>>;

/**
 * Namespaced keyed state on the heap: per state name and key group, key -> namespace ->
 * value. Setting the current key hashes it once; reads and writes are map lookups with no
 * allocation except a new key's or namespace's map. Each (state, key group) map is a
 * CopyOnWriteTable, so a snapshot's synchronous part only opens a view of each and the
 * serialization runs later in slices (window contents are snapshotted like keyed state).
 */
export class HeapNamespacedKeyedState implements NamespacedKeyedState {
  /** state name -> [keyGroup - start] -> key -> namespace -> value */
  private readonly states = new Map<string, KeyMap[]>();
  private currentKey: unknown = undefined;
  private currentNormalizedKey: string | number = 0;
  private currentKeyGroupIndex = -1;

  constructor(
    private readonly operatorName: string,
    private readonly maxParallelism: number,
    private readonly keyGroupRange: KeyGroupRange,
  ) {}

  setCurrentKey(key: unknown): void {
    if (key === this.currentKey && this.currentKeyGroupIndex >= 0) return;
    const kg = assignToKeyGroup(key, this.maxParallelism);
    if (!this.keyGroupRange.contains(kg)) {
      throw new Error(
        `'${this.operatorName}' got key ${JSON.stringify(key)} of key group ${kg}, outside its ${this.keyGroupRange.toString()}; records must be partitioned by the operator's keyBy()`,
      );
    }
    this.currentKey = key;
    this.currentNormalizedKey = normalizeKey(key);
    this.currentKeyGroupIndex = kg - this.keyGroupRange.start;
  }

  getCurrentKey(): unknown {
    return this.currentKey;
  }

  private groups(name: string): KeyMap[] {
    let g = this.states.get(name);
    if (!g) {
      g = Array.from(
        { length: this.keyGroupRange.size },
        () => new CopyOnWriteTable(name, 'namespaced') as KeyMap,
      );
      this.states.set(name, g);
    }
    return g;
  }

  private keyNamespaces(groups: KeyMap[], create: boolean): Map<NamespaceKey, unknown> | undefined {
    if (this.currentKeyGroupIndex < 0) {
      throw new Error(
        `'${this.operatorName}' accessed keyed state without a current key; it needs a keyed stream`,
      );
    }
    const keys = groups[this.currentKeyGroupIndex]!;
    // a read too: the caller may change the namespace map (and the lists in it) in place
    let ns = keys.get(this.currentNormalizedKey);
    if (!ns && create) {
      ns = new Map();
      keys.set(this.currentNormalizedKey, ns);
    }
    return ns;
  }

  private removeNamespace(groups: KeyMap[], namespace: NamespaceKey): void {
    const ns = this.keyNamespaces(groups, false);
    if (!ns) return;
    ns.delete(namespace);
    if (ns.size === 0) groups[this.currentKeyGroupIndex]!.delete(this.currentNormalizedKey);
  }

  getValueState<T>(name: string): NamespacedValueState<T> {
    const groups = this.groups(name);
    return {
      get: (namespace) => this.keyNamespaces(groups, false)?.get(namespace) as T | undefined,
      update: (namespace, value) => {
        if (value === undefined) this.removeNamespace(groups, namespace);
        else this.keyNamespaces(groups, true)!.set(namespace, value);
      },
      clear: (namespace) => this.removeNamespace(groups, namespace),
    };
  }

  getListState<T>(name: string): NamespacedListState<T> {
    const groups = this.groups(name);
    return {
      get: (namespace) => this.keyNamespaces(groups, false)?.get(namespace) as T[] | undefined,
      add: (namespace, value) => {
        const ns = this.keyNamespaces(groups, true)!;
        const list = ns.get(namespace) as T[] | undefined;
        if (list) list.push(value);
        else ns.set(namespace, [value]);
      },
      update: (namespace, values) => {
        if (values.length === 0) this.removeNamespace(groups, namespace);
        else this.keyNamespaces(groups, true)!.set(namespace, values);
      },
      clear: (namespace) => this.removeNamespace(groups, namespace),
    };
  }

  namespaces(name: string): NamespaceKey[] {
    const ns = this.keyNamespaces(this.groups(name), false);
    return ns ? [...ns.keys()] : [];
  }

  forEachKey(name: string, fn: (normalizedKey: string | number, keyGroup: number) => void): void {
    const groups = this.states.get(name);
    if (!groups) return;
    for (let i = 0; i < groups.length; i++) {
      const keys: Array<string | number> = [];
      for (const [k, v] of groups[i]!.map) if (v !== undefined) keys.push(k);
      for (const k of keys) fn(k, i + this.keyGroupRange.start);
    }
  }

  snapshotKeyGroup(keyGroup: number): Uint8Array | undefined {
    if (!this.keyGroupRange.contains(keyGroup))
      throw new Error(`Key group ${keyGroup} is not in ${this.keyGroupRange.toString()}`);
    const entries: unknown[] = [];
    const i = keyGroup - this.keyGroupRange.start;
    for (const [name, groups] of this.states) {
      for (const [key, namespaces] of groups[i]!.map) {
        if (namespaces === undefined) continue;
        for (const [ns, value] of namespaces) entries.push([name, key, value, ns]);
      }
    }
    return entries.length === 0 ? undefined : encodeRecords(entries);
  }

  snapshotLater(slicing: SnapshotSlicing = DEFAULT_SLICING): NamespacedSnapshot {
    const views: Array<{ name: string; head: Buffer; tables: KeyMap[]; pres: PreImages[] }> = [];
    let total = 0;
    for (const [name, tables] of this.states) {
      const pres = tables.map((t) => t.openView());
      for (const t of tables) total += t.map.size;
      views.push({ name, head: Buffer.concat([ARRAY4, encodeValue(name)]), tables, pres });
    }
    const release = (i: number): void => {
      for (const v of views) v.tables[i]!.releaseView(v.pres[i]!);
    };
    const discard = (): void => {
      for (let i = 0; i < this.keyGroupRange.size; i++) release(i);
    };
    const start = this.keyGroupRange.start;
    const serialize = async (): Promise<Map<number, Uint8Array>> => {
      const out = new Map<number, Uint8Array>();
      const slicer = new Slicer(slicing, total);
      const chunks = new KeyGroupChunks(1);
      let n = 0;
      try {
        for (let i = 0; i < this.keyGroupRange.size; i++) {
          for (const { name, head, tables, pres } of views) {
            const pre = pres[i]!;
            const it = tables[i]!.map.entries();
            for (let r = it.next(); !r.done; r = it.next()) {
              const key = r.value[0];
              const namespaces = (pre.size !== 0 && pre.has(key) ? pre.get(key) : r.value[1]) as
                Map<NamespaceKey, unknown> | undefined;
              if (namespaces !== undefined) {
                for (const [ns, value] of namespaces) {
                  try {
                    chunks.add(0, head, key, value, ns);
                  } catch (e) {
                    if (e instanceof UnsupportedValueError)
                      throw new Error(
                        e.describe(
                          'the value',
                          `Cannot checkpoint window state '${name}' of '${this.operatorName}'`,
                        ),
                      );
                    throw e;
                  }
                }
              }
              if (++n % slicing.checkEvery === 0 && slicer.due()) await slicer.pause(n);
            }
          }
          // this key group is read: later accesses need no more copies for this snapshot
          release(i);
          const count = chunks.counts[0]!;
          if (count > 0) {
            out.set(i + start, Buffer.concat([arrayHeader32(count), ...chunks.take(0)]));
          }
        }
      } finally {
        discard();
      }
      return out;
    };
    return { serialize, discard };
  }

  restoreKeyGroup(keyGroup: number, data: Uint8Array): void {
    if (!this.keyGroupRange.contains(keyGroup)) {
      throw new Error(
        `'${this.operatorName}' cannot restore key group ${keyGroup}: not in its ${this.keyGroupRange.toString()}`,
      );
    }
    const i = keyGroup - this.keyGroupRange.start;
    for (const e of decodeRecords(data)) {
      const [name, key, value, ns] = e as [string, string | number, unknown, NamespaceKey];
      const keys = this.groups(name)[i]!;
      let namespaces = keys.get(key);
      if (!namespaces) {
        namespaces = new Map();
        keys.set(key, namespaces);
      }
      namespaces.set(ns, value);
    }
  }

  numEntries(): number {
    let n = 0;
    for (const groups of this.states.values())
      for (const keys of groups) for (const ns of keys.map.values()) if (ns) n += ns.size;
    return n;
  }
}
