import { Packr } from 'msgpackr';
import { UnsupportedValueError, describeKey, typeNameOf } from './unsupported-value-error.js';

/* The writing half of the record codec (see codec.ts); msgpackr reads what it writes. */

/** MessagePack extension type of a Map: its entries as one flat array [k0, v0, k1, v1, ...]. */
export const MAP_EXT = 0x4d;
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

/** Thrown inside encodeInto when the target is full; never leaves it. */
const OVERFLOW = new Error('target buffer full');

/** The low 16 bits of `n` big-endian at `p` (two's complement for negatives); returns the end. */
function put16(b: Buffer, p: number, n: number): number {
  b[p] = (n >>> 8) & 0xff;
  b[p + 1] = n & 0xff;
  return p + 2;
}

/** The low 32 bits of `n` big-endian at `p` (two's complement for negatives); returns the end. */
function put32(b: Buffer, p: number, n: number): number {
  b[p] = n >>> 24;
  b[p + 1] = (n >>> 16) & 0xff;
  b[p + 2] = (n >>> 8) & 0xff;
  b[p + 3] = n & 0xff;
  return p + 4;
}

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

  /**
   * Integers are written with byte stores, not Buffer's writeUInt32BE and kin: those are calls
   * with range checks, large enough that on a long record path (a source chain with a
   * timestamp assigner) the JIT stops inlining them and pays a call per record.
   */
  private writeNumber(n: number): void {
    this.ensure(9);
    const b = this.buffer;
    const p = this.pos;
    if (n >>> 0 === n && (n !== 0 || 1 / n > 0)) {
      if (n < 0x80) {
        b[p] = n;
        this.pos = p + 1;
      } else if (n < 0x100) {
        b[p] = 0xcc;
        b[p + 1] = n;
        this.pos = p + 2;
      } else if (n < 0x10000) {
        b[p] = 0xcd;
        this.pos = put16(b, p + 1, n);
      } else {
        b[p] = 0xce;
        this.pos = put32(b, p + 1, n);
      }
    } else if (n >> 0 === n && n !== 0) {
      if (n >= -0x20) {
        b[p] = 0x100 + n;
        this.pos = p + 1;
      } else if (n >= -0x80) {
        b[p] = 0xd0;
        b[p + 1] = n + 0x100;
        this.pos = p + 2;
      } else if (n >= -0x8000) {
        b[p] = 0xd1;
        this.pos = put16(b, p + 1, n);
      } else {
        b[p] = 0xd2;
        this.pos = put32(b, p + 1, n);
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
