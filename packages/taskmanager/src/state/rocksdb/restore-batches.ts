import { decodeValue, msgpackArrayHeader, msgpackValueEnd } from '@weir/core/runtime';
import { NO_OPTIONS, type RocksBatch } from './binding.js';
import type { NK } from './held-values.js';
import type { KeyScratch } from './key-layout.js';

/** What restoreBatchBytes writes for: the backend's states and its general entry path. */
export interface RestoreTarget {
  /** the id and kind of the state named so in the snapshot, registered on first sight */
  state(name: string): { id: number; kind: string };
  /** an entry the byte path leaves alone (list, namespaced and timer state): decoded and written the general way */
  entry(batch: RocksBatch, entry: unknown[]): void;
}

/** msgpack fixarray of 3: [state name, key, value] */
const ENTRY = 0x93;
/** fixarray of 2: [user key, user value] */
const PAIR = 0x92;

/**
 * Writes one batch of a canonical snapshot (an array of [state name, key, value] entries, see
 * snapshot-batches.ts) into a RocksDB write batch with as little decoding as it can: value
 * and map state keep the bytes the snapshot holds for their values, which are the bytes
 * RocksDB stores (decoding and encoding them again was most of a restore's time). Keys and
 * user keys are decoded and encoded again as lookups encode them, so a key written by another
 * encoder (another backend's snapshot) is still found. The write batch copies what it is
 * given, so keys are built in one scratch buffer.
 */
export function restoreBatchBytes(
  bytes: Buffer,
  batch: RocksBatch,
  target: RestoreTarget,
  maxParallelism: number,
  scratch: KeyScratch,
): void {
  const limit = bytes.length;
  const header = msgpackArrayHeader(bytes, 0, limit);
  if (!header) throw new Error('Corrupt checkpoint batch: expected an array of state entries');
  let [count, pos] = header;
  let lastName: Buffer | undefined;
  let state = { id: 0, kind: '' };
  for (; count > 0; count--) {
    const start = pos;
    if (bytes[pos] !== ENTRY) {
      pos = msgpackValueEnd(bytes, start, limit);
      target.entry(batch, decodeValue(bytes.subarray(start, pos)) as unknown[]);
      continue;
    }
    const nameEnd = msgpackValueEnd(bytes, pos + 1, limit);
    if (lastName === undefined || !sameBytes(bytes, pos + 1, nameEnd, lastName)) {
      lastName = Buffer.from(bytes.subarray(pos + 1, nameEnd));
      state = target.state(decodeValue(lastName) as string);
    }
    const kind = state.kind;
    const keyEnd = msgpackValueEnd(bytes, nameEnd, limit);
    const valueEnd = msgpackValueEnd(bytes, keyEnd, limit);
    if (kind === 'list' || kind === 'namespaced' || kind === 'timers') {
      target.entry(batch, decodeValue(bytes.subarray(start, valueEnd)) as unknown[]);
    } else {
      const nk = decodeKey(bytes, nameEnd, keyEnd);
      const prefixEnd = scratch.stateKey(0, state.id, nk, maxParallelism);
      if (kind === 'map') putMapEntries(bytes, keyEnd, valueEnd, prefixEnd, batch, scratch);
      else batch._put(scratch.buf.subarray(0, prefixEnd), bytes.subarray(keyEnd, valueEnd), NO_OPTIONS);
    }
    pos = valueEnd;
  }
  if (pos !== limit) throw new Error(`Corrupt checkpoint batch: ${limit - pos} bytes after its last entry`);
}

/** A map state's [user key, value] pairs: each row is the key's prefix (in scratch) and the user key. */
function putMapEntries(
  bytes: Buffer,
  from: number,
  to: number,
  prefixEnd: number,
  batch: RocksBatch,
  scratch: KeyScratch,
): void {
  const header = msgpackArrayHeader(bytes, from, to);
  if (!header) throw new Error('Corrupt checkpoint batch: a map state value is no array of entries');
  let [pairs, pos] = header;
  for (; pairs > 0; pairs--) {
    if (bytes[pos] !== PAIR)
      throw new Error('Corrupt checkpoint batch: a map state entry is no [key, value] pair');
    const userKeyEnd = msgpackValueEnd(bytes, pos + 1, to);
    const valueEnd = msgpackValueEnd(bytes, userKeyEnd, to);
    const end = scratch.value(prefixEnd, decodeValue(bytes.subarray(pos + 1, userKeyEnd)));
    batch._put(scratch.buf.subarray(0, end), bytes.subarray(userKeyEnd, valueEnd), NO_OPTIONS);
    pos = valueEnd;
  }
  if (pos !== to) throw new Error('Corrupt checkpoint batch: bytes after the entries of a map state value');
}

/**
 * A key's value: numbers and strings read in place (the decoder's set-up per call cost more
 * than the rest of a row); other values through the decoder.
 */
function decodeKey(b: Buffer, from: number, to: number): NK {
  const h = b[from]!;
  if (h < 0x80) return h;
  if (h >= 0xe0) return h - 0x100;
  if (h >= 0xa0 && h < 0xc0) return b.toString('utf8', from + 1, to);
  switch (h) {
    case 0xcc:
      return b[from + 1]!;
    case 0xcd:
      return b.readUInt16BE(from + 1);
    case 0xce:
      return b.readUInt32BE(from + 1);
    case 0xd0:
      return b.readInt8(from + 1);
    case 0xd1:
      return b.readInt16BE(from + 1);
    case 0xd2:
      return b.readInt32BE(from + 1);
    case 0xcb:
      return b.readDoubleBE(from + 1);
    case 0xd9:
      return b.toString('utf8', from + 2, to);
    case 0xda:
      return b.toString('utf8', from + 3, to);
    default:
      return decodeValue(b.subarray(from, to)) as NK;
  }
}

function sameBytes(bytes: Buffer, from: number, to: number, other: Buffer): boolean {
  if (to - from !== other.length) return false;
  for (let i = 0; i < other.length; i++) if (bytes[from + i] !== other[i]) return false;
  return true;
}
