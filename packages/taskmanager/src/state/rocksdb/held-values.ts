import { UnsupportedValueError, decodeValue, valueEncoder } from '@weir/core';
import type { CacheMap } from './read-cache.js';

/*
 * How the write buffer and the read cache in front of RocksDB hold state: per state a Map of
 * dirty entries and a Map of clean (read) entries, values as serialized bytes except the
 * immutable primitives. As in Flink's RocksDB backend, update() serializes at once and every
 * read decodes a fresh copy, so a change to a read value is state only after update().
 */

export type NK = string | number;

export const DELETED = Symbol('deleted');
export const ABSENT = Symbol('absent');

export interface StateMeta {
  name: string;
  kind: string;
  id: number;
  /** written, not yet in RocksDB: normalized key -> the value as held (see toHeld) or DELETED */
  dirty: Map<NK, unknown>;
  /** read cache (see read-cache.ts): normalized key -> the value as held (see toHeld) or ABSENT */
  clean: CacheMap;
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
  return Buffer.isBuffer(v) ? decodeValue(v) : v;
}

/** What the cache holds for bytes read from RocksDB: a primitive decoded, anything else as the bytes. */
export function heldFromStored(bytes: Buffer): unknown {
  const t = bytes[0]!;
  // msgpack maps and arrays (fixmap, fixarray, array16/32, map16/32) stay bytes without decoding
  if ((t >= 0x80 && t <= 0x9f) || (t >= 0xdc && t <= 0xdf)) return bytes;
  const v = decodeValue(bytes);
  return isImmutable(v) ? v : bytes;
}

export function heldBytes(v: unknown): Buffer {
  return Buffer.isBuffer(v) ? v : pack(v);
}
