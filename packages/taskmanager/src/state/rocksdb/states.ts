import type {
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ValueState,
  ValueStateDescriptor,
} from '@weir/api';
import { decodeValue, normalizeKey } from '@weir/core';
import type { AccumulatorCell } from '../appending-state.js';
import { DELETED, fromHeld, held, type NK, type StateMeta } from './held-values.js';

/** What the state objects need of the RocksDB backend: the current key, the buffer and cache, and RocksDB. */
export interface RocksStateHost {
  /** the current normalized key */
  readonly nk: NK;
  /** the current key's value of a state, through the write buffer and read cache */
  read(meta: StateMeta): unknown;
  /** buffers the current key's value (DELETED removes it) */
  write(meta: StateMeta, v: unknown): void;
  /** counts one more buffered map entry (flushing when the buffer is full) */
  bufferedOne(): void;
  flush(): void;
  getBytes(key: Buffer): Buffer | undefined;
  scan(prefix: Buffer, limit?: number): Array<[Buffer, Buffer]>;
  prefix(meta: StateMeta, nk: NK): Buffer;
  mapKey(meta: StateMeta, nk: NK, userKey: unknown): Buffer;
  /** deletes rows of a cleared map, all under prefix */
  deleteMap(prefix: Buffer, rows: Array<[Buffer, Buffer]>): void;
}

export function rocksValueState<T>(
  host: RocksStateHost,
  meta: StateMeta,
  desc: ValueStateDescriptor<T>,
): ValueState<T> {
  const dflt = desc.defaultValue;
  return {
    value: () => {
      const v = host.read(meta) as T | undefined;
      return v === undefined ? dflt : v;
    },
    update: (v: T) => host.write(meta, v === undefined || v === null ? DELETED : v),
    clear: () => host.write(meta, DELETED),
  };
}

export function rocksListState<T>(
  host: RocksStateHost,
  meta: StateMeta,
  _desc: ListStateDescriptor<T>,
): ListState<T> {
  const list = (): T[] => (host.read(meta) as T[] | undefined) ?? [];
  return {
    get: list,
    add: (v: T) => {
      const l = list();
      l.push(v);
      host.write(meta, l);
    },
    addAll: (vs: T[]) => {
      if (vs.length === 0) return;
      const l = list();
      l.push(...vs);
      host.write(meta, l);
    },
    update: (vs: T[]) => host.write(meta, vs.length === 0 ? DELETED : [...vs]),
    clear: () => host.write(meta, DELETED),
  };
}

/** The accumulator of reducing and aggregating state: one value per key, like value state. */
export function rocksCell<ACC>(host: RocksStateHost, meta: StateMeta): AccumulatorCell<ACC> {
  return {
    get: () => host.read(meta) as ACC | undefined,
    set: (acc: ACC) => host.write(meta, acc),
    clear: () => host.write(meta, DELETED),
  };
}

/** Map state: one RocksDB entry per user key. */
export function rocksMapState<UK, UV>(
  host: RocksStateHost,
  meta: StateMeta,
  _desc: MapStateDescriptor<UK, UV>,
): MapState<UK, UV> {
  const get = (k: UK): UV | undefined => {
    const d = meta.mapDirty.get(host.nk)?.get(normalizeKey(k));
    if (d) return d[1] === DELETED ? undefined : (fromHeld(d[1]) as UV);
    const bytes = host.getBytes(host.mapKey(meta, host.nk, k));
    return bytes && (decodeValue(bytes) as UV);
  };
  const put = (k: UK, v: unknown): void => {
    let m = meta.mapDirty.get(host.nk);
    if (!m) meta.mapDirty.set(host.nk, (m = new Map()));
    const before = m.size;
    // user key and value serialized now, like update()
    const keyBytes = held(meta, k, 'key');
    m.set(normalizeKey(k), [keyBytes, v === DELETED ? DELETED : held(meta, v)]);
    if (m.size > before) host.bufferedOne();
  };
  /** every entry of the current key's map, from RocksDB after a flush */
  const all = (): Array<[UK, UV]> => {
    host.flush();
    const prefixLength = host.prefix(meta, host.nk).length;
    return host
      .scan(host.prefix(meta, host.nk))
      .map(([k, v]) => [decodeValue(k.subarray(prefixLength)) as UK, decodeValue(v) as UV]);
  };
  return {
    get,
    put: (k: UK, v: UV) => put(k, v),
    putAll: (entries: Iterable<[UK, UV]>) => {
      for (const [k, v] of entries) put(k, v);
    },
    remove: (k: UK) => put(k, DELETED),
    contains: (k: UK) => get(k) !== undefined,
    entries: () => all(),
    keys: () => all().map((e) => e[0]),
    values: () => all().map((e) => e[1]),
    isEmpty: () => {
      host.flush();
      return host.scan(host.prefix(meta, host.nk), 1).length === 0;
    },
    clear: () => {
      host.flush();
      const prefix = host.prefix(meta, host.nk);
      const rows = host.scan(prefix);
      if (rows.length === 0) return;
      host.deleteMap(prefix, rows);
    },
  };
}
