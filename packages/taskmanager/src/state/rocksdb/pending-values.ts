import { valueEncoder } from '@weir/core/runtime';
import { ABSENT, AppendList } from './held-values.js';
import { copyBytes } from './key-layout.js';

/** startOf: the entry was deleted (a delete goes to RocksDB) */
export const PENDING_DELETE = -1;
/** startOf: the value is held as bytes already (a Buffer or AppendList): the flush takes it from the entry */
export const PENDING_HELD = -2;

/**
 * The stored bytes of one state's written entries, by their place in its write buffer
 * (StateMeta.pending), encoded when written. The flush puts them in RocksDB's key order, which
 * to the entries is a random order: reading each value there cost three dependent cache misses
 * (the entry, its value, the value's fields), about 350 ns per entry on this VM, where the write
 * had them in cache. A rewrite of a written entry takes its old place when it fits.
 */
export class PendingValues {
  private buf = Buffer.alloc(0);
  private at = 0;
  private starts = new Int32Array(0);
  private ends = new Int32Array(0);

  /** bytes taken since the last reset (rewrites that did not fit count twice) */
  get size(): number {
    return this.at;
  }

  /**
   * Holds what entry `slot` now holds (as held: ABSENT, bytes, or a value the codec writes);
   * fresh: the slot's first value since the last reset.
   */
  set(slot: number, held: unknown, fresh: boolean): void {
    if (slot >= this.starts.length) this.growSlots(slot + 1);
    if (held === ABSENT) {
      this.starts[slot] = PENDING_DELETE;
      return;
    }
    if (Buffer.isBuffer(held) || held instanceof AppendList) {
      this.starts[slot] = PENDING_HELD;
      return;
    }
    const at = this.at;
    let end = valueEncoder.encodeInto(held, this.buf, at);
    while (end < 0) {
      this.growBytes();
      end = valueEncoder.encodeInto(held, this.buf, at);
    }
    const s = this.starts[slot]!;
    if (!fresh && s >= 0 && end - at <= this.ends[slot]! - s) {
      this.ends[slot] = copyBytes(this.buf, at, end, this.buf, s);
      return;
    }
    this.starts[slot] = at;
    this.ends[slot] = end;
    this.at = end;
  }

  /** Where slot's bytes start in bytes (or PENDING_DELETE, PENDING_HELD). */
  startOf(slot: number): number {
    return this.starts[slot]!;
  }

  endOf(slot: number): number {
    return this.ends[slot]!;
  }

  get bytes(): Buffer {
    return this.buf;
  }

  /** After a flush: every slot is free again. */
  reset(): void {
    this.at = 0;
    // a burst of large values does not keep its memory
    if (this.buf.length > 4 << 20) this.buf = Buffer.alloc(0);
  }

  private growSlots(n: number): void {
    const size = Math.max(n, this.starts.length * 2, 1024);
    const starts = new Int32Array(size);
    const ends = new Int32Array(size);
    starts.set(this.starts);
    ends.set(this.ends);
    this.starts = starts;
    this.ends = ends;
  }

  private growBytes(): void {
    const next = Buffer.allocUnsafeSlow(Math.max(64 * 1024, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
}
