import { Packr, Unpackr, addExtension } from 'msgpackr';

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

/** MessagePack extension type of a Map: its entries as one flat array [k0, v0, k1, v1, ...]. */
const MAP_EXT = 0x4d;
/** msgpackr's own extension types, which its decoder reads. */
const SET_EXT = 0x73;
const MAX_DEPTH = 512;

const TYPED_ARRAYS = new Set<unknown>([
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
]);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export class UnsupportedValueError extends Error {
  /** where the value sits, outermost first: rendered steps such as `.name`, `[3]`, `.get(1)` */
  readonly path: string[] = [];
  constructor(readonly typeName: string) {
    super(typeName);
    this.name = 'UnsupportedValueError';
  }

  /** 'record.items[2].f' style location under `root`. */
  location(root: string): string {
    return root + this.path.join('');
  }

  /** A message for the user: what, where, and what to do instead. */
  describe(root: string, context: string): string {
    return (
      `${context}: ${this.location(root)} is ${this.typeName}, which cannot be serialized exactly. ` +
      'Records, keys and state values may hold strings, numbers, booleans, bigint, null, undefined, ' +
      'arrays, plain objects, Map, Set, Date, RegExp, typed arrays, ArrayBuffer and Buffer; ' +
      'convert the value to one of those (for a class instance: a plain object of its fields).'
    );
  }
}

function typeNameOf(value: unknown): string {
  switch (typeof value) {
    case 'function':
      return `a function${(value as { name?: string }).name ? ` (${(value as { name: string }).name})` : ''}`;
    case 'symbol':
      return `a symbol (${String(value)})`;
    default: {
      const ctor = (value as { constructor?: { name?: string } }).constructor;
      const name = typeof ctor === 'function' && ctor.name ? ctor.name : 'an object with a custom prototype';
      return ctor?.name ? `an instance of class ${name}` : name;
    }
  }
}

function describeKey(k: unknown): string {
  if (typeof k === 'string') return JSON.stringify(k);
  if (typeof k === 'number' || typeof k === 'boolean') return String(k);
  if (typeof k === 'bigint') return `${k}n`;
  return typeof k === 'object' && k !== null ? '<object>' : typeof k;
}

/** Thrown inside encodeInto when the target is full; never leaves it. */
const OVERFLOW = new Error('target buffer full');

/** Encodes leaf types msgpackr already writes the way its decoder reads them (typed arrays, Date, ...). */
const leafPackr = new Packr({ useRecords: false, moreTypes: true, useBigIntExtension: true });

/**
 * Writes values as MessagePack into a growing buffer. One instance is reused for every
 * record: `encode` returns the length, the bytes are `buffer[0..length)` until the next call.
 */
export class ValueEncoder {
  buffer: Buffer = Buffer.allocUnsafeSlow(64 * 1024);
  private pos = 0;
  /** writing into a caller's buffer (encodeInto): running out of room is not growing */
  private fixed = false;

  encode(value: unknown): number {
    this.pos = 0;
    this.write(value, 0);
    return this.pos;
  }

  /**
   * Writes `value` into `target` from `pos` without going past `target.length`: the new end,
   * or -1 when it does not fit (the bytes after `pos` are then undefined). Saves the copy from
   * the scratch buffer for the records that fit into a network buffer.
   */
  encodeInto(value: unknown, target: Buffer, pos: number): number {
    const scratch = this.buffer;
    this.buffer = target;
    this.pos = pos;
    this.fixed = true;
    try {
      this.write(value, 0);
      return this.pos;
    } catch (e) {
      if (e === OVERFLOW) return -1;
      throw e;
    } finally {
      this.buffer = scratch;
      this.fixed = false;
    }
  }

  /** Gives back the memory of a scratch buffer that grew for a large value. */
  shrink(): void {
    if (this.buffer.length > 1 << 20) this.buffer = Buffer.allocUnsafeSlow(64 * 1024);
  }

  /** A copy of the encoding of `value`, for callers that keep the bytes. */
  encodeCopy(value: unknown): Uint8Array {
    const n = this.encode(value);
    const out = new Uint8Array(n);
    out.set(this.buffer.subarray(0, n));
    return out;
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buffer.length) return;
    if (this.fixed) throw OVERFLOW;
    let size = this.buffer.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buffer.copy(next, 0, 0, this.pos);
    this.buffer = next;
  }

  private write(value: unknown, depth: number): void {
    switch (typeof value) {
      case 'string':
        return this.writeString(value);
      case 'number':
        return this.writeNumber(value);
      case 'boolean':
        this.ensure(1);
        this.buffer[this.pos++] = value ? 0xc3 : 0xc2;
        return;
      case 'undefined':
        this.ensure(3);
        this.buffer[this.pos++] = 0xd4;
        this.buffer[this.pos++] = 0;
        this.buffer[this.pos++] = 0;
        return;
      case 'bigint':
        if (value >= INT64_MIN && value <= INT64_MAX) {
          this.ensure(9);
          this.buffer[this.pos++] = 0xd3;
          this.buffer.writeBigInt64BE(value, this.pos);
          this.pos += 8;
          return;
        }
        return this.writeLeaf(value);
      case 'object':
        if (value === null) {
          this.ensure(1);
          this.buffer[this.pos++] = 0xc0;
          return;
        }
        if (depth >= MAX_DEPTH)
          throw new UnsupportedValueError(`nested deeper than ${MAX_DEPTH} levels (a cycle?)`);
        return this.writeObject(value, depth + 1);
      default:
        throw new UnsupportedValueError(typeNameOf(value));
    }
  }

  private writeNumber(n: number): void {
    this.ensure(9);
    const b = this.buffer;
    if (n >>> 0 === n && (n !== 0 || 1 / n > 0)) {
      if (n < 0x80) b[this.pos++] = n;
      else if (n < 0x100) {
        b[this.pos++] = 0xcc;
        b[this.pos++] = n;
      } else if (n < 0x10000) {
        b[this.pos++] = 0xcd;
        b.writeUInt16BE(n, this.pos);
        this.pos += 2;
      } else {
        b[this.pos++] = 0xce;
        b.writeUInt32BE(n, this.pos);
        this.pos += 4;
      }
    } else if (n >> 0 === n && n !== 0) {
      if (n >= -0x20) b[this.pos++] = 0x100 + n;
      else if (n >= -0x80) {
        b[this.pos++] = 0xd0;
        b[this.pos++] = n + 0x100;
      } else if (n >= -0x8000) {
        b[this.pos++] = 0xd1;
        b.writeInt16BE(n, this.pos);
        this.pos += 2;
      } else {
        b[this.pos++] = 0xd2;
        b.writeInt32BE(n, this.pos);
        this.pos += 4;
      }
    } else {
      // fractions, large integers, NaN, Infinity and -0 as float 64
      b[this.pos++] = 0xcb;
      b.writeDoubleBE(n, this.pos);
      this.pos += 8;
    }
  }

  private writeString(s: string): void {
    const len = s.length;
    if (len < 32) {
      this.ensure(2 + len * 3);
      const b = this.buffer;
      const start = this.pos;
      let p = start + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === len) {
        b[start] = 0xa0 | len;
        this.pos = p;
        return;
      }
    }
    const max = len * 3;
    const header = max < 32 ? 1 : max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    this.ensure(header + max);
    const b = this.buffer;
    const start = this.pos;
    const written = b.write(s, start + header, max, 'utf8');
    if (header === 1) b[start] = 0xa0 | written;
    else if (header === 2) {
      b[start] = 0xd9;
      b[start + 1] = written;
    } else if (header === 3) {
      b[start] = 0xda;
      b.writeUInt16BE(written, start + 1);
    } else {
      b[start] = 0xdb;
      b.writeUInt32BE(written, start + 1);
    }
    this.pos = start + header + written;
  }

  private writeArrayHeader(n: number): void {
    this.ensure(5);
    const b = this.buffer;
    if (n < 16) b[this.pos++] = 0x90 | n;
    else if (n < 0x10000) {
      b[this.pos++] = 0xdc;
      b.writeUInt16BE(n, this.pos);
      this.pos += 2;
    } else {
      b[this.pos++] = 0xdd;
      b.writeUInt32BE(n, this.pos);
      this.pos += 4;
    }
  }

  private writeExtTag(type: number): void {
    this.ensure(3);
    this.buffer[this.pos++] = 0xd4;
    this.buffer[this.pos++] = type;
    this.buffer[this.pos++] = 0;
  }

  private writeObject(o: object, depth: number): void {
    const proto = Object.getPrototypeOf(o) as object | null;
    if (proto === Array.prototype) {
      const a = o as unknown[];
      const n = a.length;
      this.writeArrayHeader(n);
      let i = 0;
      try {
        for (; i < n; i++) this.write(a[i], depth);
      } catch (e) {
        if (e instanceof UnsupportedValueError) e.path.unshift(`[${i}]`);
        throw e;
      }
      return;
    }
    if (proto === Object.prototype || proto === null)
      return this.writePlainObject(o as Record<string, unknown>, depth);
    if (proto === Map.prototype) {
      const m = o as Map<unknown, unknown>;
      this.writeExtTag(MAP_EXT);
      this.writeArrayHeader(m.size * 2);
      for (const [k, v] of m) {
        try {
          this.write(k, depth);
          this.write(v, depth);
        } catch (e) {
          if (e instanceof UnsupportedValueError) e.path.unshift(`.get(${describeKey(k)})`);
          throw e;
        }
      }
      return;
    }
    if (proto === Set.prototype) {
      const s = o as Set<unknown>;
      this.writeExtTag(SET_EXT);
      this.writeArrayHeader(s.size);
      for (const v of s) {
        try {
          this.write(v, depth);
        } catch (e) {
          if (e instanceof UnsupportedValueError) e.path.unshift('.<element of a Set>');
          throw e;
        }
      }
      return;
    }
    if (
      proto === Date.prototype ||
      proto === RegExp.prototype ||
      proto === ArrayBuffer.prototype ||
      Buffer.isBuffer(o) ||
      TYPED_ARRAYS.has((o as { constructor?: unknown }).constructor)
    )
      return this.writeLeaf(o);
    throw new UnsupportedValueError(typeNameOf(o));
  }

  private writePlainObject(o: Record<string, unknown>, depth: number): void {
    this.ensure(5);
    const start = this.pos;
    this.buffer[this.pos] = 0xde;
    this.pos += 3;
    let n = 0;
    for (const k in o) {
      this.writeString(k);
      try {
        this.write(o[k], depth);
      } catch (e) {
        if (e instanceof UnsupportedValueError)
          e.path.unshift(/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`);
        throw e;
      }
      n++;
    }
    if (n < 0x10000) {
      this.buffer.writeUInt16BE(n, start + 1);
    } else {
      // more keys than a map 16 holds: move the entries to make room for a map 32 header
      this.ensure(2);
      this.buffer.copy(this.buffer, start + 5, start + 3, this.pos);
      this.buffer[start] = 0xdf;
      this.buffer.writeUInt32BE(n, start + 1);
      this.pos += 2;
    }
  }

  private writeLeaf(value: unknown): void {
    const bytes = leafPackr.pack(value);
    this.ensure(bytes.length);
    this.buffer.set(bytes, this.pos);
    this.pos += bytes.length;
  }
}

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

function asBuffer(bytes: Uint8Array): Buffer {
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

/** Events are small control messages, encoded as plain MessagePack. */
const packr = new Packr({ useRecords: false, moreTypes: true });

/** In-band events travel in order with the buffers of a channel. */
export type ChannelEvent =
  | { type: 'EndOfPartition' }
  /** no more records on this channel; barriers still follow until the final checkpoint (FLIP-147) */
  | { type: 'EndOfData' }
  | {
      type: 'CheckpointBarrier';
      checkpointId: number;
      timestamp: number;
      isSavepoint?: boolean;
      storage?: string;
      directory?: string;
    }
  /** the sender gave checkpoint n up (declined or aborted): consumers stop aligning it and pass it on */
  | { type: 'CancelCheckpointMarker'; checkpointId: number };

export function encodeEvent(event: ChannelEvent): Uint8Array {
  return packr.pack(event);
}

export function decodeEvent(buffer: Uint8Array): ChannelEvent {
  const e = packr.unpack(buffer) as ChannelEvent;
  if (!e || typeof e !== 'object' || typeof e.type !== 'string') throw new Error('Corrupt channel event');
  return e;
}
