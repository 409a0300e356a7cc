import { UnsupportedValueError, decodeValue, msgpackArrayHeader, valueEncoder } from '@weir/core/runtime';
import type { PendingValues } from './pending-values.js';
import type { CacheEntry, CacheMap } from './read-cache.js';

/*
 * How the write buffer and the read cache in front of RocksDB hold state: per state one Map of
 * entries read or written (written ones marked dirty until flushed; list state buffers its
 * writes in a Map of its own), values as serialized bytes except the
 * immutable primitives and, for states of one value per key, flat values (see flatCopy). As in
 * Flink's RocksDB backend, update() takes a copy at once and every read returns a fresh copy,
 * so a change to a read value is state only after update().
 */

export type NK = string | number;

export const DELETED = Symbol('deleted');
export const ABSENT = Symbol('absent');

export interface StateMeta {
  name: string;
  kind: string;
  id: number;
  /** list state: written, not yet in RocksDB: normalized key -> a ListWrite or DELETED */
  dirty: Map<NK, unknown>;
  /**
   * read cache (see read-cache.ts): normalized key -> the value as held (see toHeld) or ABSENT;
   * for a state of one value per key also its write buffer (entries marked dirty)
   */
  clean: CacheMap;
  /**
   * the keys of the dirty entries in `clean` and the entries, in the order they became dirty: the
   * first pendingCount of each. The arrays keep their length from flush to flush: truncating a
   * large array and pushing onto it again costs V8 hundreds of nanoseconds per element, against a
   * few for a store (bench/README.md, ninth session)
   */
  pending: NK[];
  pendingEntries: Array<CacheEntry | undefined>;
  pendingCount: number;
  /** their stored bytes, by place (see pending-values.ts) */
  pendingValues: PendingValues;
  /** map state only: normalized key -> normalized user key -> [user key's bytes, value as held or DELETED] */
  mapDirty: Map<NK, Map<NK, [unknown, unknown]>>;
}

/** The codec's bytes of a value in a Buffer of their own (see core/codec.ts). */
export function pack(value: unknown): Buffer {
  const n = valueEncoder.encode(value);
  const b = Buffer.allocUnsafe(n);
  valueEncoder.buffer.copy(b, 0, 0, n);
  return b;
}

export function isImmutable(v: unknown): boolean {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint';
}

/**
 * What the write buffer and the read cache hold for a value: a string, number, boolean or
 * bigint as it is (nothing can change it), anything else as its bytes, decoded afresh on every
 * read. A user value is never a Buffer here (objects are encoded), so a Buffer means bytes.
 */
function toHeld(v: unknown): unknown {
  return isImmutable(v) ? v : pack(v);
}

/** toHeld, with the state's name in the error when the codec refuses the value. */
export function held(meta: StateMeta, v: unknown, what: 'key' | 'value' = 'value'): unknown {
  try {
    return what === 'key' ? pack(v) : toHeld(v);
  } catch (e) {
    if (e instanceof UnsupportedValueError)
      throw new Error(
        e.describe(what === 'key' ? 'the map key' : 'the value', `Cannot store keyed state '${meta.name}'`),
      );
    throw e;
  }
}

export function fromHeld(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Buffer.isBuffer(v)) return decodeValue(v);
  if (v instanceof AppendList) return decodeValue(v.bytes());
  // a flat value (see flatCopy): a copy for the caller, the held one stays as it is
  return Array.isArray(v) ? v.slice() : copyFields(v as Record<string, unknown>);
}

/** What the cache holds for bytes read from RocksDB: a primitive decoded, anything else as the bytes. */
export function heldFromStored(bytes: Buffer): unknown {
  const t = bytes[0]!;
  // msgpack maps and arrays (fixmap, fixarray, array16/32, map16/32) stay bytes without decoding
  if ((t >= 0x80 && t <= 0x9f) || (t >= 0xdc && t <= 0xdf)) return bytes;
  const v = decodeValue(bytes);
  return isImmutable(v) ? v : bytes;
}

/**
 * heldFromStored for a state that holds flat values (see flatCopy): small arrays and plain
 * objects of primitives are decoded once and held as objects, not as bytes decoded per read.
 */
export function heldFlatFromStored(bytes: Buffer): unknown {
  if (bytes.length > 512) return heldFromStored(bytes);
  const v = decodeValue(bytes);
  // decoded just now, so nobody else has it: held as it is
  return isImmutable(v) || isFlat(v) ? v : bytes;
}

/** The most fields of a value held as an object rather than as bytes (see flatCopy). */
const FLAT_FIELDS = 32;

function isFlatField(x: unknown): boolean {
  const t = typeof x;
  return t === 'number' || t === 'string' || t === 'boolean';
}

function copyFields(o: Record<string, unknown>): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  for (const k in o) c[k] = o[k];
  return c;
}

/**
 * A copy of v when it is flat: an array or plain object of at most 32 numbers, strings and
 * booleans (the running count and sum of the common keyed aggregation); otherwise undefined.
 * The write buffer and read cache hold flat values as such objects, copied on update() and on
 * every read: copying one costs less than encoding it per update() and decoding it per read,
 * and it leaves no Buffer per value for the garbage collector. The copy keeps what the codec
 * keeps (for..in fields, element order), so a value reads the same from the cache as from
 * RocksDB.
 */
export function flatCopy(v: unknown): unknown[] | Record<string, unknown> | undefined {
  if (!isFlat(v)) return undefined;
  return Array.isArray(v) ? v.slice() : copyFields(v as Record<string, unknown>);
}

/** Whether v is a flat value (see flatCopy). */
export function isFlat(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto === Array.prototype) {
    const a = v as unknown[];
    if (a.length > FLAT_FIELDS) return false;
    for (let i = 0; i < a.length; i++) if (!isFlatField(a[i])) return false;
    return true;
  }
  if (proto !== Object.prototype) return false;
  const o = v as Record<string, unknown>;
  let n = 0;
  // an own '__proto__' field would not survive the copy's assignment
  for (const k in o) if (++n > FLAT_FIELDS || !isFlatField(o[k]) || k === '__proto__') return false;
  return true;
}

/**
 * Writes a flat array v into `held`, the flat array a cache entry holds for the same key, when
 * both have one length: a running aggregate's update() then allocates nothing (the held array
 * is the cache's own, never handed out: reads get copies). False, with `held` untouched, when
 * v is no flat array of that length.
 */
export function overwriteFlat(held: unknown, v: unknown): boolean {
  if (!Array.isArray(held) || !Array.isArray(v) || v.length !== held.length) return false;
  if (Object.getPrototypeOf(v) !== Array.prototype) return false;
  for (let i = 0; i < v.length; i++) if (!isFlatField(v[i])) return false;
  for (let i = 0; i < v.length; i++) held[i] = v[i];
  return true;
}

/** held() for a state of one value per key: a flat value (see flatCopy) as a copy, anything else as held() does. */
export function heldValue(meta: StateMeta, v: unknown): unknown {
  if (typeof v === 'object' && v !== null) {
    const c = flatCopy(v);
    if (c !== undefined) return c;
  }
  return held(meta, v);
}

export function heldBytes(v: unknown): Buffer {
  if (v instanceof AppendList) return v.bytes();
  return Buffer.isBuffer(v) ? v : pack(v);
}

/**
 * A list held in the write buffer as the msgpack bytes of an array (array32 header, then the
 * packed elements) with room to grow, so appending packs only the new element and copies no
 * old one (window contents: consecutive appends to a hot window touch neither RocksDB nor
 * the codec for what is there). bytes() is the stored value, a msgpack array.
 */
export class AppendList {
  private buf: Buffer;
  private len: number;
  private count: number;

  /** from stored bytes of a msgpack array (any array header), or empty */
  constructor(stored?: Buffer) {
    let header = 0;
    let count = 0;
    if (stored !== undefined) {
      const array = msgpackArrayHeader(stored, 0);
      if (!array)
        throw new Error(`Stored list state is not a msgpack array (type 0x${stored[0]?.toString(16)})`);
      [count, header] = array;
    }
    const items = stored === undefined ? 0 : stored.length - header;
    this.buf = Buffer.allocUnsafe(Math.max(64, 5 + items * 2));
    this.buf[0] = 0xdd;
    if (stored !== undefined) stored.copy(this.buf, 5, header);
    this.len = 5 + items;
    this.count = count;
  }

  /** appends one element's packed bytes */
  push(item: Buffer): void {
    if (this.len + item.length > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + item.length));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    item.copy(this.buf, this.len);
    this.len += item.length;
    this.count++;
  }

  bytes(): Buffer {
    this.buf.writeUInt32BE(this.count, 1);
    return this.buf.subarray(0, this.len);
  }
}
