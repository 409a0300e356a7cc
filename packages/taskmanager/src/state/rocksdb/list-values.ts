import { UnsupportedValueError, decodeValues } from '@weir/core/runtime';
import { pack, type StateMeta } from './held-values.js';

/*
 * List state in RocksDB: a list is stored as its elements' packed bytes one after another, with
 * no array header, so add() is a RocksDB merge that appends the new element's bytes (the
 * database is opened with a string-append merge operator with no delimiter) and never reads
 * or rewrites the list. Snapshots wrap the bytes in an array header (the canonical format);
 * restores strip it.
 */

/**
 * What the write buffer holds for a list: elements appended since the last flush (written as
 * a merge), or the whole list (replace: written as a put, after update() or clear()).
 */
export class ListWrite {
  private buf: Buffer;
  private len = 0;

  constructor(readonly replace: boolean) {
    this.buf = Buffer.allocUnsafe(64);
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
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/** The elements of stored list bytes. */
export function listElements(stored: Buffer | undefined): unknown[] {
  return stored === undefined || stored.length === 0 ? [] : decodeValues(stored);
}

/** The msgpack array header of stored list bytes (counting the elements decodes them). */
export function listHeader(stored: Buffer): Buffer {
  const n = stored.length === 0 ? 0 : decodeValues(stored).length;
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** The stored form of a packed msgpack array: its elements without the header. */
export function listFromArrayBytes(array: Buffer): Buffer {
  const t = array[0]!;
  if (t >= 0x90 && t <= 0x9f) return array.subarray(1);
  if (t === 0xdc) return array.subarray(3);
  if (t === 0xdd) return array.subarray(5);
  throw new Error(`Restored list state is not an array (msgpack type 0x${t.toString(16)})`);
}

/** An element's packed bytes, with the state's name in the error when the codec refuses it. */
export function packListElement(meta: StateMeta, v: unknown): Buffer {
  try {
    return pack(v);
  } catch (e) {
    if (e instanceof UnsupportedValueError)
      throw new Error(e.describe('the list element', `Cannot store keyed state '${meta.name}'`));
    throw e;
  }
}
