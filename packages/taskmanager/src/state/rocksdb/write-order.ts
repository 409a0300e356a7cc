import { assignNormalizedKeyToKeyGroup } from '@weir/core/runtime';
import type { NK } from './held-values.js';

/** a key's position among those sorted, in the low bits of its sort code (see sort) */
const INDEX_BITS = 2 ** 21;

/**
 * The write buffer's keys of one state in the order RocksDB stores them, so a flush inserts
 * its batch into the memtable in key order: RocksDB's skip list starts each insert from where
 * the last one ended, and a sorted batch of uniform keys costs about 0.8 µs per entry against
 * 1.4 µs in hash order (bench/README.md, "Writes in key order").
 *
 * The keys are placed by key group first (a counting sort: RocksDB keys start with it). Keys
 * that are unsigned 32-bit integers (the common numeric key) are then sorted exactly within
 * their group, their msgpack bytes ordering as the numbers do in that range; other keys stay
 * in the order given within a group. Each key is one float64 of a reused array, the key times
 * 2^21 plus its position among those given (or only the position), so a typed-array sort
 * orders them and the caller still finds what it holds for the key by position (indexAt),
 * without a lookup per key.
 */
export class WriteOrder {
  private order = new Float64Array(1024);
  private groups = new Uint16Array(1024);
  private keyGroups = new Int32Array(1024);
  private starts = new Uint32Array(0);
  private readonly nks: NK[] = [];
  /** how many of nks the sorts since the last clear() wrote */
  private used = 0;
  private exact = true;

  /**
   * Sorts the keys (of a Map: its keys; of an array: its first `count`); returns how many there
   * are (read them with nkAt, groupAt and indexAt).
   */
  sort(keys: readonly NK[] | ReadonlyMap<NK, unknown>, maxParallelism: number, count?: number): number {
    const n = keys instanceof Map ? keys.size : (count ?? (keys as readonly NK[]).length);
    if (this.order.length < n) {
      const size = Math.max(n, this.order.length * 2);
      this.order = new Float64Array(size);
      this.groups = new Uint16Array(size);
      this.keyGroups = new Int32Array(size);
    }
    if (this.starts.length < maxParallelism + 1) this.starts = new Uint32Array(maxParallelism + 1);
    const { order, groups, keyGroups, starts, nks } = this;
    starts.fill(0, 0, maxParallelism + 1);
    // nks keeps its length between sorts (see StateMeta.pending for why): stores, no pushes
    if (keys instanceof Map) {
      let k = 0;
      for (const nk of keys.keys()) nks[k++] = nk;
    } else for (let k = 0; k < n; k++) nks[k] = (keys as readonly NK[])[k]!;
    this.used = Math.max(this.used, n);
    let exact = n <= INDEX_BITS;
    let i = 0;
    for (; i < n; i++) {
      const nk = nks[i]!;
      // (a Map holds -0 as 0)
      if (exact && (typeof nk !== 'number' || nk >>> 0 !== nk)) exact = false;
      const g = assignNormalizedKeyToKeyGroup(nk, maxParallelism);
      keyGroups[i] = g;
      starts[g + 1]!++;
    }
    for (let g = 0; g < maxParallelism; g++) starts[g + 1]! += starts[g]!;
    for (i = 0; i < n; i++) {
      const g = keyGroups[i]!;
      const at = starts[g]!++;
      order[at] = exact ? (nks[i] as number) * INDEX_BITS + i : i;
      groups[at] = g;
    }
    this.exact = exact;
    // starts[g] is now where group g ends (and g + 1 begins)
    if (exact)
      for (let g = 0, from = 0; g < maxParallelism; g++) {
        const to = starts[g]!;
        if (to - from > 1) order.subarray(from, to).sort();
        from = to;
      }
    return n;
  }

  /** The i-th key in order. */
  nkAt(i: number): NK {
    return this.exact ? Math.floor(this.order[i]! / INDEX_BITS) : this.nks[this.order[i]!]!;
  }

  /** The position of the i-th key in order among the keys given to sort. */
  indexAt(i: number): number {
    const x = this.order[i]!;
    // not x % INDEX_BITS: a float64 remainder is a call out of optimized code
    return this.exact ? x - Math.floor(x / INDEX_BITS) * INDEX_BITS : x;
  }

  /** The key group of the i-th key. */
  groupAt(i: number): number {
    return this.groups[i]!;
  }

  /** Drops the references to the last flush's keys. */
  clear(): void {
    this.nks.fill(0, 0, this.used);
    this.used = 0;
  }
}
