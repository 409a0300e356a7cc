import { sharedChunk, valueEncoder, type SlabArena } from '@weir/core/runtime';

/**
 * The encoded entries of a snapshot, per key group, in chunks of CHUNK_BYTES written in place:
 * no Buffer or array per entry. Entries are `[name, key, value]` MessagePack arrays, byte for
 * byte what the record codec (ValueEncoder) writes, so every reader of canonical snapshots reads
 * them. Numbers, booleans, null and short ASCII strings (keys, counters, small values) are
 * written here directly; every other value goes through the codec (`encodeInto` straight into
 * the chunk, or the codec's scratch buffer and a copy when it does not fit).
 */
export const CHUNK_BYTES = 64 * 1024;
/** the room the direct path needs for a key, a value and a namespace: strings of up to 31 characters */
const DIRECT_ROOM = 3 * 32;

export class KeyGroupChunks {
  private readonly bufs: Array<Buffer | undefined>;
  private readonly pos: Int32Array;
  private readonly parts: Array<Buffer[] | undefined>;
  /** where the key group's current segment starts in its current chunk (see take) */
  private readonly segStart: Int32Array;
  /** bytes in the key group's closed chunks not taken yet */
  private readonly closed: Float64Array;
  /** entries per key group not taken yet */
  readonly counts: Int32Array;

  /** `arena`: where chunks come from (default: shared memory that is never reused) */
  constructor(
    readonly maxParallelism: number,
    private readonly arena?: SlabArena,
  ) {
    this.bufs = new Array<Buffer | undefined>(maxParallelism);
    this.parts = new Array<Buffer[] | undefined>(maxParallelism);
    this.pos = new Int32Array(maxParallelism);
    this.counts = new Int32Array(maxParallelism);
    this.segStart = new Int32Array(maxParallelism);
    this.closed = new Float64Array(maxParallelism);
  }

  /**
   * Appends the entry `head ++ key ++ value` (and `ns` when given: namespaced state's
   * `[name, key, value, namespace]`) to key group `kg`; `head` is the array header and the
   * state name, encoded once per state.
   */
  add(kg: number, head: Buffer, key: string | number, value: unknown, ns?: string | number): void {
    const headLen = head.length;
    let b = this.bufs[kg];
    let p = this.pos[kg]!;
    if (b === undefined || p + headLen + DIRECT_ROOM > b.length) {
      b = this.nextChunk(kg, p, headLen + DIRECT_ROOM);
      p = 0;
    }
    for (let i = 0; i < headLen; i++) b[p++] = head[i]!;
    let end = writeDirect(b, p, key);
    if (end >= 0) p = end;
    else {
      this.writeSlow(kg, b, p, key);
      b = this.roomy(kg);
      p = this.pos[kg]!;
    }
    end = writeDirect(b, p, value);
    if (end >= 0) p = end;
    else {
      this.writeSlow(kg, b, p, value);
      b = this.roomy(kg);
      p = this.pos[kg]!;
    }
    if (ns !== undefined) {
      end = writeDirect(b, p, ns);
      if (end >= 0) p = end;
      else {
        this.writeSlow(kg, b, p, ns);
        p = this.pos[kg]!;
      }
    }
    this.pos[kg] = p;
    this.counts[kg]!++;
  }

  /** The key group's current chunk after a value through the codec, with room for the direct path. */
  private roomy(kg: number): Buffer {
    const b = this.bufs[kg]!;
    const p = this.pos[kg]!;
    return p + DIRECT_ROOM > b.length ? this.nextChunk(kg, p, DIRECT_ROOM) : b;
  }

  /**
   * A value through the codec: into the chunk when it fits, else encoded in the codec's scratch
   * buffer and copied over as many chunks as it takes.
   */
  private writeSlow(kg: number, b: Buffer, p: number, value: unknown): void {
    const end = valueEncoder.encodeInto(value, b, p);
    if (end >= 0) {
      this.pos[kg] = end;
      return;
    }
    const n = valueEncoder.encode(value);
    this.copyIn(kg, b, p, valueEncoder.buffer, n);
    valueEncoder.shrink();
  }

  private copyIn(kg: number, b: Buffer, p: number, src: Buffer, n: number): void {
    let from = 0;
    for (;;) {
      const k = Math.min(n - from, b.length - p);
      src.copy(b, p, from, from + k);
      from += k;
      p += k;
      if (from === n) break;
      b = this.nextChunk(kg, p, n - from);
      p = 0;
    }
    this.pos[kg] = p;
  }

  /** Closes the key group's current chunk at `end` and opens one of at least `room` bytes. */
  private nextChunk(kg: number, end: number, room: number): Buffer {
    const cur = this.bufs[kg];
    const from = this.segStart[kg]!;
    if (cur !== undefined && end > from) {
      (this.parts[kg] ??= []).push(cur.subarray(from, end));
      this.closed[kg]! += end - from;
    }
    const size = Math.max(CHUNK_BYTES, room);
    const b = this.arena ? this.arena.chunk(size) : sharedChunk(size);
    this.bufs[kg] = b;
    this.pos[kg] = 0;
    this.segStart[kg] = 0;
    return b;
  }

  /** Bytes of the key group's entries not taken yet. */
  pending(kg: number): number {
    return this.closed[kg]! + this.pos[kg]! - this.segStart[kg]!;
  }

  /**
   * The key group's entries so far (`counts[kg]` of them), which this no longer holds; the
   * count starts again from 0 and later entries form the key group's next segment. The
   * current chunk's free room stays in use.
   */
  take(kg: number): Buffer[] {
    const parts = this.parts[kg] ?? [];
    const b = this.bufs[kg];
    const end = this.pos[kg]!;
    if (b !== undefined && end > this.segStart[kg]!) parts.push(b.subarray(this.segStart[kg]!, end));
    this.parts[kg] = undefined;
    this.segStart[kg] = end;
    this.closed[kg] = 0;
    this.counts[kg] = 0;
    return parts;
  }
}

/**
 * Writes a number, boolean, null or a string of fewer than 32 ASCII characters at `p` as
 * ValueEncoder would, returning the end; -1 for anything else (nothing written that counts).
 * The caller guarantees 32 bytes of room.
 */
function writeDirect(b: Buffer, p: number, v: unknown): number {
  if (typeof v === 'number') return writeNumber(b, p, v);
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

/** ValueEncoder's number encoding (smallest integer form, else float 64; -0 as float). */
function writeNumber(b: Buffer, p: number, n: number): number {
  if (n >>> 0 === n && (n !== 0 || 1 / n > 0)) {
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
