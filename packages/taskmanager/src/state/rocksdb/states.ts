import type {
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ValueState,
  ValueStateDescriptor,
} from '@weir/api';
import { decodeValue, decodeValues, normalizeKey } from '@weir/core/runtime';
import type { AccumulatorCell } from '../appending-state.js';
import { DELETED, fromHeld, held, type NK, type StateMeta } from './held-values.js';
import { ListWrite, listElements, packListElement } from './list-values.js';

/** What the state objects need of the RocksDB backend: the current key, the buffer and cache, and RocksDB. */
export interface RocksStateHost {
  /** the current normalized key */
  readonly nk: NK;
  /** the current key's value of a state, through the write buffer and read cache */
  read(meta: StateMeta): unknown;
  /** buffers the current key's value (DELETED removes it) */
  write(meta: StateMeta, v: unknown): void;
  /** buffers the current key's value as it is held already (a ListWrite, or DELETED) */
  writeHeld(meta: StateMeta, v: unknown): void;
  /** counts one more buffered map entry (flushing when the buffer is full) */
  bufferedOne(): void;
  flush(): void;
  getBytes(key: Buffer): Buffer | undefined;
  /**
   * the rows under prefix, read in chunks (the first of `first` rows) as they are consumed (a
   * consistent view from the first read); a consumer that stops early must return() it
   */
  rows(prefix: Buffer, first?: number): Generator<[Buffer, Buffer]>;
  prefix(meta: StateMeta, nk: NK): Buffer;
  mapKey(meta: StateMeta, nk: NK, userKey: unknown): Buffer;
  /** deletes the rows of a cleared map (all under prefix), in chunks */
  deleteMap(prefix: Buffer): void;
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

/**
 * List state: add() appends the element's bytes in the write buffer, flushed as a RocksDB merge
 * (see list-values.ts), so it costs the same whatever the list's length; get() reads the stored
 * elements and the buffered ones.
 */
export function rocksListState<T>(
  host: RocksStateHost,
  meta: StateMeta,
  _desc: ListStateDescriptor<T>,
): ListState<T> {
  const append = (vs: readonly T[]): void => {
    let w = meta.dirty.get(host.nk);
    if (!(w instanceof ListWrite)) {
      // a cleared list starts again (a put); else the elements are appended to what is stored (a merge)
      const next = new ListWrite(w === DELETED);
      for (const v of vs) next.push(packListElement(meta, v));
      host.writeHeld(meta, next);
      return;
    }
    for (const v of vs) w.push(packListElement(meta, v));
  };
  return {
    get: (): T[] => {
      const w = meta.dirty.get(host.nk);
      if (w === DELETED) return [];
      const pending = w instanceof ListWrite ? (decodeValues(w.bytes()) as T[]) : [];
      if (w instanceof ListWrite && w.replace) return pending;
      const stored = listElements(host.getBytes(host.prefix(meta, host.nk))) as T[];
      if (pending.length > 0) for (const v of pending) stored.push(v);
      return stored;
    },
    add: (v: T) => append([v]),
    addAll: (vs: T[]) => {
      if (vs.length > 0) append(vs);
    },
    update: (vs: T[]) => {
      if (vs.length === 0) return host.writeHeld(meta, DELETED);
      const w = new ListWrite(true);
      for (const v of vs) w.push(packListElement(meta, v));
      host.writeHeld(meta, w);
    },
    clear: () => host.writeHeld(meta, DELETED),
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
  /** the entries of the current key's map, read from RocksDB in chunks as they are consumed (after a flush) */
  function* entries(): Generator<[UK, UV]> {
    host.flush();
    const prefix = host.prefix(meta, host.nk);
    for (const [k, v] of host.rows(prefix))
      yield [decodeValue(k.subarray(prefix.length)) as UK, decodeValue(v) as UV];
  }
  function* keys(): Generator<UK> {
    for (const e of entries()) yield e[0];
  }
  function* values(): Generator<UV> {
    for (const e of entries()) yield e[1];
  }
  return {
    get,
    put: (k: UK, v: UV) => put(k, v),
    putAll: (entries: Iterable<[UK, UV]>) => {
      for (const [k, v] of entries) put(k, v);
    },
    remove: (k: UK) => put(k, DELETED),
    contains: (k: UK) => get(k) !== undefined,
    entries,
    keys,
    values,
    isEmpty: () => {
      host.flush();
      const rows = host.rows(host.prefix(meta, host.nk), 1);
      const empty = rows.next().done === true;
      rows.return(undefined);
      return empty;
    },
    clear: () => {
      host.flush();
      host.deleteMap(host.prefix(meta, host.nk));
    },
  };
}
