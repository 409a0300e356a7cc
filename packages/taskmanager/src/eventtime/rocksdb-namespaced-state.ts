import type { KeyGroupRange } from '@weir/core/runtime';
import {
  UnsupportedValueError,
  assignToKeyGroup,
  decodeRecords,
  decodeValue,
  decodeValues,
  encodeRecords,
  normalizeKey,
} from '@weir/core/runtime';
import type { KeyRange } from '../state/rocksdb/binding.js';
import type { RocksEventTimeHost } from '../state/rocksdb/event-time-host.js';
import { AppendList, DELETED, fromHeld, held, pack, type StateMeta } from '../state/rocksdb/held-values.js';
import {
  KEY_HEADER_BYTES,
  normalizedKeyEnd,
  prefixEnd,
  stateKeyPrefix,
} from '../state/rocksdb/key-layout.js';
import type {
  NamespaceKey,
  NamespacedKeyedState,
  NamespacedListState,
  NamespacedValueState,
} from './namespaced-state.js';

/**
 * Namespaced keyed state in the RocksDB keyed backend's database: RocksDB key
 * `kg | stateId | key | namespace` (msgpack key and namespace, so one key's namespaces are
 * one prefix scan and a key group is one range), the value's msgpack bytes as value. Writes
 * go to the backend's write buffer (per state: key -> namespace -> value, as for its map
 * state), so they are in its snapshots and change tracking; a list is held there as
 * growable msgpack bytes, so consecutive appends to a hot window touch neither RocksDB nor
 * the codec for the elements already there. A read missing the buffer is a point lookup.
 */
export class RocksDbNamespacedKeyedState implements NamespacedKeyedState {
  private readonly metas = new Map<string, StateMeta>();
  private currentKey: unknown = undefined;
  private nk: string | number = 0;
  private hasKey = false;
  /** kg | stateId | key of the current key, per state id (rebuilt when the key changes) */
  private readonly prefixes = new Map<number, Buffer>();

  constructor(
    private readonly host: RocksEventTimeHost,
    private readonly operatorName: string,
    private readonly keyGroupRange: KeyGroupRange,
  ) {}

  setCurrentKey(key: unknown): void {
    if (key === this.currentKey && this.hasKey) return;
    const kg = assignToKeyGroup(key, this.host.maxParallelism);
    if (!this.keyGroupRange.contains(kg)) {
      throw new Error(
        `'${this.operatorName}' got key ${JSON.stringify(key)} of key group ${kg}, outside its ${this.keyGroupRange.toString()}; records must be partitioned by the operator's keyBy()`,
      );
    }
    this.currentKey = key;
    this.nk = normalizeKey(key);
    this.hasKey = true;
    this.prefixes.clear();
  }

  getCurrentKey(): unknown {
    return this.currentKey;
  }

  private meta(name: string): StateMeta {
    let m = this.metas.get(name);
    if (!m) this.metas.set(name, (m = this.host.register(name, 'namespaced')));
    return m;
  }

  private prefix(meta: StateMeta): Buffer {
    if (!this.hasKey) {
      throw new Error(
        `'${this.operatorName}' accessed keyed state without a current key; it needs a keyed stream`,
      );
    }
    let p = this.prefixes.get(meta.id);
    if (!p) this.prefixes.set(meta.id, (p = stateKeyPrefix(meta.id, this.nk, this.host.maxParallelism)));
    return p;
  }

  /** The current key's buffered namespaces of a state (created on write). */
  private buffered(meta: StateMeta, create: boolean): Map<NamespaceKey, [unknown, unknown]> | undefined {
    let m = meta.mapDirty.get(this.nk) as Map<NamespaceKey, [unknown, unknown]> | undefined;
    if (!m && create) meta.mapDirty.set(this.nk, (m = new Map()));
    return m;
  }

  /** The value as held in the buffer (bytes, a primitive, an AppendList or DELETED), or the stored bytes, or undefined. */
  private lookup(meta: StateMeta, namespace: NamespaceKey): unknown {
    const d = this.buffered(meta, false)?.get(namespace);
    if (d) return d[1];
    return this.host.getBytes(Buffer.concat([this.prefix(meta), pack(namespace)]));
  }

  private put(meta: StateMeta, namespace: NamespaceKey, v: unknown): void {
    this.prefix(meta); // checks there is a current key
    const m = this.buffered(meta, true)!;
    const entry = m.get(namespace);
    if (entry) {
      entry[1] = v;
      return;
    }
    m.set(namespace, [pack(namespace), v]);
    this.host.bufferedOne();
  }

  getValueState<T>(name: string): NamespacedValueState<T> {
    const meta = this.meta(name);
    return {
      get: (namespace) => {
        const v = this.lookup(meta, namespace);
        return v === undefined || v === DELETED ? undefined : (fromHeld(v) as T);
      },
      update: (namespace, value) =>
        this.put(meta, namespace, value === undefined || value === null ? DELETED : held(meta, value)),
      clear: (namespace) => this.put(meta, namespace, DELETED),
    };
  }

  getListState<T>(name: string): NamespacedListState<T> {
    const meta = this.meta(name);
    return {
      get: (namespace) => {
        const v = this.lookup(meta, namespace);
        return v === undefined || v === DELETED ? undefined : (fromHeld(v) as T[]);
      },
      add: (namespace, value) => {
        const item = this.packElement(meta, value);
        const v = this.lookup(meta, namespace);
        if (v instanceof AppendList) {
          v.push(item);
          return;
        }
        const list = new AppendList(v === undefined || v === DELETED ? undefined : (v as Buffer));
        list.push(item);
        this.put(meta, namespace, list);
      },
      update: (namespace, values) =>
        this.put(meta, namespace, values.length === 0 ? DELETED : held(meta, [...values])),
      clear: (namespace) => this.put(meta, namespace, DELETED),
    };
  }

  private packElement(meta: StateMeta, value: unknown): Buffer {
    try {
      return pack(value);
    } catch (e) {
      if (e instanceof UnsupportedValueError)
        throw new Error(e.describe('the value', `Cannot store keyed state '${meta.name}'`));
      throw e;
    }
  }

  namespaces(name: string): NamespaceKey[] {
    const meta = this.meta(name);
    const prefix = this.prefix(meta);
    const out = new Set<NamespaceKey>();
    const buffered = this.buffered(meta, false);
    for (const [k] of this.host.rows(prefix)) {
      const ns = decodeValue(k.subarray(prefix.length)) as NamespaceKey;
      if (!buffered?.has(ns)) out.add(ns);
    }
    if (buffered) for (const [ns, [, v]] of buffered) if (v !== DELETED) out.add(ns);
    return [...out];
  }

  forEachKey(name: string, fn: (normalizedKey: string | number, keyGroup: number) => void): void {
    const meta = this.meta(name);
    this.host.flush();
    const r = this.keyGroupRange;
    for (let kg = r.start; kg <= r.end; kg++) {
      const keys: Array<string | number> = [];
      let last: Buffer | undefined;
      this.host.forEachInRange(groupRange(kg, meta.id), (k) => {
        const key = k.subarray(KEY_HEADER_BYTES, normalizedKeyEnd(k));
        if (last && last.equals(key)) return;
        last = Buffer.from(key);
        keys.push(decodeValue(key) as string | number);
      });
      // collected first: fn may change state (applyToKeyedState)
      for (const k of keys) fn(k, kg);
    }
  }

  snapshotKeyGroup(keyGroup: number): Uint8Array | undefined {
    if (!this.keyGroupRange.contains(keyGroup))
      throw new Error(`Key group ${keyGroup} is not in ${this.keyGroupRange.toString()}`);
    this.host.flush();
    const entries: unknown[] = [];
    for (const meta of this.host.statesOf('namespaced')) {
      this.host.forEachInRange(groupRange(keyGroup, meta.id), (k, v) => {
        const [key, ns] = decodeValues(k.subarray(KEY_HEADER_BYTES)) as [string | number, NamespaceKey];
        entries.push([meta.name, key, decodeValue(v), ns]);
      });
    }
    return entries.length === 0 ? undefined : encodeRecords(entries);
  }

  restoreKeyGroup(keyGroup: number, data: Uint8Array): void {
    if (!this.keyGroupRange.contains(keyGroup)) {
      throw new Error(
        `'${this.operatorName}' cannot restore key group ${keyGroup}: not in its ${this.keyGroupRange.toString()}`,
      );
    }
    this.host.flush();
    this.host.writeNow((batch, track) => {
      for (const e of decodeRecords(data)) {
        const [name, key, value, ns] = e as [string, string | number, unknown, NamespaceKey];
        const meta = this.meta(name);
        const k = Buffer.concat([stateKeyPrefix(meta.id, key, this.host.maxParallelism), pack(ns)]);
        batch._put(k, pack(value), {});
        track(k);
      }
    });
  }

  numEntries(): number {
    this.host.flush();
    let n = 0;
    const r = this.keyGroupRange;
    for (const meta of this.host.statesOf('namespaced')) {
      for (let kg = r.start; kg <= r.end; kg++) {
        this.host.forEachInRange(groupRange(kg, meta.id), () => {
          n++;
        });
      }
    }
    return n;
  }
}

/** The rows of one state in one key group: keys starting with kg | stateId. */
function groupRange(keyGroup: number, stateId: number): KeyRange {
  const b = Buffer.allocUnsafe(KEY_HEADER_BYTES);
  b.writeUInt16BE(keyGroup, 0);
  b.writeUInt16BE(stateId, 2);
  return { gte: b, lt: prefixEnd(b)! };
}
