import type { KeyGroupRange } from '@weir/core';
import { assignToKeyGroup, decodeRecords, encodeRecords, normalizeKey } from '@weir/core';
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
  restoreKeyGroup(keyGroup: number, data: Uint8Array): void;
  /** Number of (key, namespace) entries over all states (metrics, tests). */
  numEntries(): number;
}

type KeyMap = Map<string | number, Map<NamespaceKey, unknown>>;

/**
 * Namespaced keyed state on the heap: per state name and key group, key -> namespace ->
 * value. Setting the current key hashes it once; reads and writes are map lookups with no
 * allocation except a new key's or namespace's map.
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
      g = Array.from({ length: this.keyGroupRange.size }, () => new Map() as KeyMap);
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
      for (const k of [...groups[i]!.keys()]) fn(k, i + this.keyGroupRange.start);
    }
  }

  snapshotKeyGroup(keyGroup: number): Uint8Array | undefined {
    if (!this.keyGroupRange.contains(keyGroup))
      throw new Error(`Key group ${keyGroup} is not in ${this.keyGroupRange.toString()}`);
    const entries: unknown[] = [];
    const i = keyGroup - this.keyGroupRange.start;
    for (const [name, groups] of this.states) {
      for (const [key, namespaces] of groups[i]!) {
        for (const [ns, value] of namespaces) entries.push([name, key, value, ns]);
      }
    }
    return entries.length === 0 ? undefined : encodeRecords(entries);
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
      for (const keys of groups) for (const ns of keys.values()) n += ns.size;
    return n;
  }
}
