import { DIRECT_ROOM, encodeDirect, sharedChunk, valueEncoder, type SlabArena } from '@weir/core/runtime';

/**
 * The encoded entries of a snapshot, per key group, in chunks of CHUNK_BYTES written in place:
 * no Buffer or array per entry. Entries are `[name, key, value]` MessagePack arrays, byte for
 * byte what the record codec (ValueEncoder) writes, so every reader of canonical snapshots reads
 * them. Numbers, booleans, null and short ASCII strings (keys, counters, small values) are
 * written here directly; every other value goes through the codec (`encodeInto` straight into
 * the chunk, or the codec's scratch buffer and a copy when it does not fit).
 */
export const CHUNK_BYTES = 64 * 1024;
/** the room the direct path needs for a key, a value and a namespace */
const ENTRY_ROOM = 3 * DIRECT_ROOM;

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
    if (b === undefined || p + headLen + ENTRY_ROOM > b.length) {
      b = this.nextChunk(kg, p, headLen + ENTRY_ROOM);
      p = 0;
    }
    for (let i = 0; i < headLen; i++) b[p++] = head[i]!;
    let end = encodeDirect(b, p, key);
    if (end >= 0) p = end;
    else {
      this.writeSlow(kg, b, p, key);
      b = this.roomy(kg);
      p = this.pos[kg]!;
    }
    end = encodeDirect(b, p, value);
    if (end >= 0) p = end;
    else {
      this.writeSlow(kg, b, p, value);
      b = this.roomy(kg);
      p = this.pos[kg]!;
    }
    if (ns !== undefined) {
      end = encodeDirect(b, p, ns);
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
    return p + ENTRY_ROOM > b.length ? this.nextChunk(kg, p, ENTRY_ROOM) : b;
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
