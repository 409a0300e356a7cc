/**
 * Key groups are the unit of keyed state: a key's group is a stable hash of the key modulo
 * the max parallelism, and subtask i owns a contiguous range of groups. The hash must be the
 * same in every process, so it is computed here from the key's value, never from identity.
 */

import { valueEncoder } from './codec.js';

/**
 * The murmur3 finalizer (spreads the bits so nearby keys land in different groups), as a
 * signed int32. Hashes stay signed until the caller's last step: an unsigned one at or above
 * 2^31 is no small integer, so returned from a call that is not inlined it would be a boxed
 * number per record and its key group a floating-point modulo.
 */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  }
  return h;
}

function hashNumber(n: number): number {
  return mix(Number.isInteger(n) && n >= -0x80000000 && n <= 0x7fffffff ? n : hashString(String(n)));
}

/** hashNormalizedKey as a signed int32 (the same bits). */
function hash32(nk: string | number): number {
  return typeof nk === 'number' ? hashNumber(nk) : mix(hashString(nk));
}

/** The hash of a key: the hash of its normalized form, so a key and its normalized form agree. */
export function hashKey(key: unknown): number {
  return hash32(normalizeKey(key)) >>> 0;
}

/** The hash of a key already normalized by `normalizeKey` (what state backends keep). */
export function hashNormalizedKey(nk: string | number): number {
  return hash32(nk) >>> 0;
}

/**
 * The unsigned value of the int32 hash `h` modulo `m` (the key group) in integer operations:
 * `(h >>> 0) % m` is a floating-point modulo (a C call per record) once hashes at or above
 * 2^31 have been seen. A power of two (the default 128) is a mask; any other max parallelism
 * (at most 32768) takes the high and low 16 bits in turn, staying below 2^31.
 */
function keyGroupOfHash(h: number, m: number): number {
  if ((m & (m - 1)) === 0) return h & (m - 1);
  if (m <= 0x8000) return (((h >>> 16) % m) * 0x10000 + (h & 0xffff)) % m;
  return (h >>> 0) % m;
}

/**
 * A key's group. An int32 key with a power-of-two max parallelism (the default 128) is the
 * common case of a record path and takes a few operations here, the same result as the general
 * path (such a key is its own normalized form and hash input; -0 mixes as 0): a short function
 * the record writer inlines whole, where the general path's calls would not all be inlined.
 */
export function assignToKeyGroup(key: unknown, maxParallelism: number): number {
  if (typeof key === 'number' && (key | 0) === key && (maxParallelism & (maxParallelism - 1)) === 0)
    return mix(key) & (maxParallelism - 1);
  return keyGroupOfAnyKey(key, maxParallelism);
}

function keyGroupOfAnyKey(key: unknown, maxParallelism: number): number {
  return keyGroupOfHash(hash32(normalizeKey(key)), maxParallelism);
}

export function assignNormalizedKeyToKeyGroup(nk: string | number, maxParallelism: number): number {
  return keyGroupOfHash(hash32(nk), maxParallelism);
}

/** Flink's formula, so a key group maps to the same subtask as it would there. */
export function computeOperatorIndexForKeyGroup(
  maxParallelism: number,
  parallelism: number,
  keyGroup: number,
): number {
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}

export class KeyGroupRange {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  contains(keyGroup: number): boolean {
    return keyGroup >= this.start && keyGroup <= this.end;
  }

  get size(): number {
    return this.end - this.start + 1;
  }

  toString(): string {
    return `KeyGroupRange{${this.start}..${this.end}}`;
  }
}

export function computeKeyGroupRangeForOperatorIndex(
  maxParallelism: number,
  parallelism: number,
  operatorIndex: number,
): KeyGroupRange {
  if (parallelism > maxParallelism)
    throw new Error(`Parallelism ${parallelism} exceeds max parallelism ${maxParallelism}`);
  const start = Math.floor((operatorIndex * maxParallelism + parallelism - 1) / parallelism);
  const end = Math.floor(((operatorIndex + 1) * maxParallelism - 1) / parallelism);
  return new KeyGroupRange(start, end);
}

/**
 * Keys as used inside state maps and RocksDB keys: one string or number per distinct key.
 * Numbers stay numbers and strings stay strings (so `1` and `'1'` differ); any other key
 * (boolean, bigint, Date, array, object, Map, ...) and a string that starts with U+0000 becomes
 * U+0000 followed by its exact encoding (see codec.ts) as latin1 characters. So `true` and
 * `'true'`, `[1,2]` and `'[1,2]'` are different keys, and two keys are the same key exactly when
 * they encode the same: same types and values, object properties and Map/Set entries in the
 * same order. A key the codec refuses (a function, a class instance) fails with its type.
 */
export function normalizeKey(key: unknown): string | number {
  if (typeof key === 'string') return key.length === 0 || key.charCodeAt(0) !== 0 ? key : encodedKey(key);
  // -0 is 0, as for a Map: the codec would write it as a float (another key's bytes in RocksDB)
  if (typeof key === 'number') return key === 0 ? 0 : key;
  if (key === null || key === undefined)
    throw new Error('A key selector returned null or undefined; every record needs a key');
  return encodedKey(key);
}

function encodedKey(key: unknown): string {
  const n = valueEncoder.encode(key);
  return '\u0000' + valueEncoder.buffer.toString('latin1', 0, n);
}
