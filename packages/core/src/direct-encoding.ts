/**
 * The record codec's (ValueEncoder's) bytes for the values most records and state entries are
 * made of: numbers, booleans, null and short ASCII strings, written by one small function
 * with no encoder state, try block or growth check. Hot paths (a result partition's emit,
 * heap snapshot encoding) try it first: it stays inlined on a long record path where
 * ValueEncoder.encodeInto, with its type switch, does not, and a call per record then costs
 * more than the encoding.
 */

/** the bytes encodeDirect may write: a string of 31 characters and its header */
export const DIRECT_ROOM = 32;

/**
 * Writes a number, boolean, null or a string of fewer than 32 ASCII characters at `p` as
 * ValueEncoder would, returning the end; -1 for anything else (nothing written that counts).
 * The caller guarantees DIRECT_ROOM bytes of room.
 */
export function encodeDirect(b: Buffer, p: number, v: unknown): number {
  if (typeof v === 'number')
    return v >>> 0 === v && (v !== 0 || 1 / v > 0) ? writeUint32(b, p, v) : writeOtherNumber(b, p, v);
  if (typeof v === 'string') {
    const len = v.length;
    if (len >= 32) return -1;
    let q = p + 1;
    for (let i = 0; i < len; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) return -1;
      b[q++] = c;
    }
    b[p] = 0xa0 | len;
    return q;
  }
  if (typeof v === 'boolean') {
    b[p] = v ? 0xc3 : 0xc2;
    return p + 1;
  }
  if (v === null) {
    b[p] = 0xc0;
    return p + 1;
  }
  return -1;
}

/**
 * A non-negative integer below 2^32 in its smallest form. Apart from the rarer numbers
 * (writeOtherNumber) so each stays under V8's bytecode limit for inlining: one function for all
 * numbers was too large to inline anywhere.
 */
function writeUint32(b: Buffer, p: number, n: number): number {
  if (n < 0x80) {
    b[p] = n;
    return p + 1;
  }
  if (n < 0x100) {
    b[p] = 0xcc;
    b[p + 1] = n;
    return p + 2;
  }
  if (n < 0x10000) {
    b[p] = 0xcd;
    b[p + 1] = n >>> 8;
    b[p + 2] = n & 0xff;
    return p + 3;
  }
  b[p] = 0xce;
  b[p + 1] = n >>> 24;
  b[p + 2] = (n >>> 16) & 0xff;
  b[p + 3] = (n >>> 8) & 0xff;
  b[p + 4] = n & 0xff;
  return p + 5;
}

/** Negative integers of 32 bits in their smallest form, every other number (and -0) as float 64. */
function writeOtherNumber(b: Buffer, p: number, n: number): number {
  if (n >> 0 === n && n !== 0) {
    if (n >= -0x20) {
      b[p] = 0x100 + n;
      return p + 1;
    }
    if (n >= -0x80) {
      b[p] = 0xd0;
      b[p + 1] = n + 0x100;
      return p + 2;
    }
    if (n >= -0x8000) {
      b[p] = 0xd1;
      b[p + 1] = (n >> 8) & 0xff;
      b[p + 2] = n & 0xff;
      return p + 3;
    }
    b[p] = 0xd2;
    b[p + 1] = (n >> 24) & 0xff;
    b[p + 2] = (n >> 16) & 0xff;
    b[p + 3] = (n >> 8) & 0xff;
    b[p + 4] = n & 0xff;
    return p + 5;
  }
  b[p] = 0xcb;
  b.writeDoubleBE(n, p + 1);
  return p + 9;
}
