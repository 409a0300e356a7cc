import { assignNormalizedKeyToKeyGroup, decodeValue } from '@weir/core/runtime';
import { KEY_HEADER_BYTES } from './key-layout.js';

/*
 * RocksDB keys of timers: key group (2 bytes), state id (2 bytes), timestamp, normalized key,
 * namespace, each in an order-preserving encoding, so RocksDB's byte order within a key
 * group is the timers' firing order (timestamp, key, namespace; compareTimers in
 * eventtime/timer-heap.ts): a float64 as 8 bytes with the sign flipped (negatives inverted);
 * a scalar (a key or namespace) as a tag (numbers before strings) and a float64, or the
 * string's UTF-16 code units big-endian, unit 0 as 00 00 ff, ended by 00 00 00.
 */

const NUMBER = 0x01;
const STRING = 0x02;

type Scalar = string | number;

let scratch = Buffer.allocUnsafe(256);
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function ensure(at: number, n: number): void {
  if (at + n <= scratch.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + n));
  scratch.copy(bigger, 0, 0, at);
  scratch = bigger;
}

function writeF64(x: number, at: number): number {
  ensure(at, 8);
  f64[0] = x === 0 ? 0 : x; // -0 and 0 are one timestamp, as in compareTimers
  for (let i = 0; i < 8; i++) scratch[at + i] = f64Bytes[littleEndian ? 7 - i : i]!;
  if (scratch[at]! & 0x80) for (let i = 0; i < 8; i++) scratch[at + i] = ~scratch[at + i]! & 0xff;
  else scratch[at] = scratch[at]! | 0x80;
  return at + 8;
}

function readF64(b: Buffer, at: number): number {
  const neg = (b[at]! & 0x80) === 0;
  for (let i = 0; i < 8; i++) {
    const x = neg ? ~b[at + i]! & 0xff : i === 0 ? b[at]! & 0x7f : b[at + i]!;
    f64Bytes[littleEndian ? 7 - i : i] = x;
  }
  return f64[0]!;
}

function writeScalar(v: Scalar, at: number): number {
  if (typeof v === 'number') {
    ensure(at, 1);
    scratch[at] = NUMBER;
    return writeF64(v, at + 1);
  }
  ensure(at, 4 + v.length * 3);
  scratch[at++] = STRING;
  for (let i = 0; i < v.length; i++) {
    const u = v.charCodeAt(i);
    if (u === 0) {
      scratch[at++] = 0;
      scratch[at++] = 0;
      scratch[at++] = 0xff;
    } else {
      scratch[at++] = u >> 8;
      scratch[at++] = u & 0xff;
    }
  }
  scratch[at++] = 0;
  scratch[at++] = 0;
  scratch[at++] = 0;
  return at;
}

function readScalar(b: Buffer, at: number): [Scalar, number] {
  const tag = b[at]!;
  if (tag === NUMBER) return [readF64(b, at + 1), at + 9];
  if (tag !== STRING) throw new Error(`Unexpected tag 0x${tag.toString(16)} in a RocksDB timer key`);
  const units: number[] = [];
  let i = at + 1;
  for (;;) {
    const hi = b[i]!;
    const lo = b[i + 1]!;
    if (hi === 0 && lo === 0) {
      if (b[i + 2] === 0) return [String.fromCharCode(...units), i + 3];
      units.push(0);
      i += 3;
    } else {
      units.push((hi << 8) | lo);
      i += 2;
    }
  }
}

/** The RocksDB key of a timer; a fresh Buffer. */
export function timerKey(
  stateId: number,
  keyGroup: number,
  timestamp: number,
  normalizedKey: Scalar,
  namespaceKey: Scalar,
): Buffer {
  ensure(0, KEY_HEADER_BYTES);
  scratch.writeUInt16BE(keyGroup, 0);
  scratch.writeUInt16BE(stateId, 2);
  let at = writeF64(timestamp, KEY_HEADER_BYTES);
  at = writeScalar(normalizedKey, at);
  at = writeScalar(namespaceKey, at);
  return Buffer.from(scratch.subarray(0, at));
}

/** A timer key of key group and state id; the key group from the normalized key. */
export function timerKeyOf(
  stateId: number,
  maxParallelism: number,
  timestamp: number,
  normalizedKey: Scalar,
  namespaceKey: Scalar,
): Buffer {
  const kg = assignNormalizedKeyToKeyGroup(normalizedKey, maxParallelism);
  return timerKey(stateId, kg, timestamp, normalizedKey, namespaceKey);
}

/** The first key of a state's timers in a key group. */
export function timerGroupPrefix(stateId: number, keyGroup: number): Buffer {
  const b = Buffer.allocUnsafe(KEY_HEADER_BYTES);
  b.writeUInt16BE(keyGroup, 0);
  b.writeUInt16BE(stateId, 2);
  return b;
}

/** Timestamp, normalized key and namespace of a timer key. */
export function decodeTimerKey(b: Buffer): {
  timestamp: number;
  normalizedKey: Scalar;
  namespaceKey: Scalar;
} {
  const timestamp = readF64(b, KEY_HEADER_BYTES);
  const [normalizedKey, at] = readScalar(b, KEY_HEADER_BYTES + 8);
  const [namespaceKey] = readScalar(b, at);
  return { timestamp, normalizedKey, namespaceKey };
}

/** The key a normalized key stands for (normalizeKey's inverse, up to a fresh copy of an object key). */
export function denormalizeKey(nk: Scalar): unknown {
  if (typeof nk === 'number' || nk.length === 0 || nk.charCodeAt(0) !== 0) return nk;
  return decodeValue(Buffer.from(nk.slice(1), 'latin1'));
}
