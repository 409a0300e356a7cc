import { Unpackr, addExtension } from 'msgpackr';
import { MAP_EXT, ValueEncoder } from './value-encoder.js';

/**
 * The value codec of records, keys and state values: MessagePack, written by the encoder
 * below and read by msgpackr. Every value that can be encoded decodes to an equal value of
 * the same type (Map, Set, Date, BigInt, typed arrays, undefined and null, -0, nesting);
 * anything else (functions, symbols, class instances) is refused with an
 * `UnsupportedValueError` naming the type and where it sits, instead of arriving changed.
 * The encoder writes into one growing scratch buffer, so encoding a record allocates nothing.
 *
 * Known limits: shared references are written once per occurrence (a cycle is refused as too
 * deep); holes in sparse arrays become `undefined`; properties keyed by symbols are skipped;
 * objects with a null prototype come back with `Object.prototype`.
 */

export { UnsupportedValueError } from './unsupported-value-error.js';
export { ValueEncoder } from './value-encoder.js';
export { decodeEvent, encodeEvent, type ChannelEvent } from './channel-event.js';

const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: true,
  int64AsType: 'bigint',
  // a decoded Buffer or typed array is a copy, never a view that pins a whole network buffer
  copyBuffers: true,
});
addExtension({
  type: MAP_EXT,
  read(entries: unknown[]): Map<unknown, unknown> {
    const m = new Map<unknown, unknown>();
    for (let i = 0; i < entries.length; i += 2) m.set(entries[i], entries[i + 1]);
    return m;
  },
} as never);

/** Shared by everything that encodes on the task thread: the bytes are valid until the next call. */
export const valueEncoder = new ValueEncoder();

/** One value, copied out of the encoder's scratch buffer. */
export function encodeValue(value: unknown): Uint8Array {
  return valueEncoder.encodeCopy(value);
}

/** `bytes` as a Buffer over the same memory (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeValue(bytes: Uint8Array): unknown {
  return unpackr.unpack(asBuffer(bytes));
}

/** Every value of a sequence of encoded values (a network buffer of whole records). */
export function decodeValues(bytes: Uint8Array): unknown[] {
  return unpackr.unpackMultiple(asBuffer(bytes)) as unknown[];
}

/**
 * A batch of records as one MessagePack array (checkpoint files, collected results): the
 * codec runs once per batch.
 */
export function encodeRecords(records: unknown[]): Uint8Array {
  return valueEncoder.encodeCopy(records);
}

export function decodeRecords(buffer: Uint8Array): unknown[] {
  const out = decodeValue(buffer);
  if (!Array.isArray(out)) throw new Error('Corrupt network buffer: expected a record batch');
  return out;
}
