import { assignNormalizedKeyToKeyGroup } from '@weir/core';
import type { NK } from './held-values.js';

const TWO_32 = 0x1_0000_0000;

/**
 * The write buffer's keys of one state in the order RocksDB stores them, so a flush inserts
 * its batch into the memtable in key order: RocksDB's skip list starts each insert from where
 * the last one ended, and a sorted batch of uniform keys costs about 0.8 µs per entry against
 * 1.4 µs in hash order (bench/README.md, "Writes in key order").
 *
 * Keys that are unsigned 32-bit integers (the common numeric key) are sorted exactly: key group
 * (2 bytes) then the key, whose msgpack bytes order as the numbers do in that range. Other keys
 * are sorted by key group only, in insertion order within one. Each key is one float64 of a
 * reused array (key group * 2^32 + key or index): a typed-array sort, no object per key.
 */
export class WriteOrder {
  private order = new Float64Array(1024);
  private readonly nks: NK[] = [];
  private exact = true;

  /** Sorts the keys of dirty; returns how many there are (read them with nkAt, groupAt). */
  sort(dirty: Map<NK, unknown>, maxParallelism: number): number {
    const n = dirty.size;
    if (this.order.length < n) this.order = new Float64Array(Math.max(n, this.order.length * 2));
    const order = this.order;
    let i = 0;
    let exact = true;
    for (const nk of dirty.keys()) {
      // (a Map holds -0 as 0)
      if (typeof nk !== 'number' || nk >>> 0 !== nk) {
        exact = false;
        break;
      }
      order[i++] = assignNormalizedKeyToKeyGroup(nk, maxParallelism) * TWO_32 + nk;
    }
    this.exact = exact;
    const nks = this.nks;
    nks.length = 0;
    if (!exact) {
      i = 0;
      for (const nk of dirty.keys()) {
        nks.push(nk);
        order[i] = assignNormalizedKeyToKeyGroup(nk, maxParallelism) * TWO_32 + i;
        i++;
      }
    }
    order.subarray(0, n).sort();
    return n;
  }

  /** The i-th key in order. */
  nkAt(i: number): NK {
    const c = this.order[i]!;
    const low = c % TWO_32;
    return this.exact ? low : this.nks[low]!;
  }

  /** The key group of the i-th key. */
  groupAt(i: number): number {
    return Math.floor(this.order[i]! / TWO_32);
  }

  /** Drops the references to the last flush's keys. */
  clear(): void {
    this.nks.length = 0;
  }
}
