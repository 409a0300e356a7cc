import { NO_OPTIONS, type RocksBatch } from '../state/rocksdb/binding.js';
import type { RocksEventTimeHost, RocksWriteBuffer } from '../state/rocksdb/event-time-host.js';
import type { StateMeta } from '../state/rocksdb/held-values.js';
import { prefixEnd } from '../state/rocksdb/key-layout.js';
import { decodeTimerKey, denormalizeKey, timerGroupPrefix, timerKey } from '../state/rocksdb/timer-keys.js';
import type { InternalTimer } from './timer-heap.js';
import type { TimerQueue, TimerQueueContext } from './timer-queue.js';

type Scalar = string | number;

/** A cached timer with its RocksDB key. */
interface RocksTimer<N> extends InternalTimer<N> {
  readonly rocksKey: Buffer;
}

/**
 * Per key group: timers read from RocksDB into its cache at once, and the size beyond which
 * the cache leaves its last timers to RocksDB alone (at most maxParallelism * max timers on the heap).
 */
export interface TimerCacheSizes {
  load: number;
  max: number;
}
const DEFAULT_CACHE: TimerCacheSizes = { load: 128, max: 256 };
const EMPTY = Buffer.alloc(0);

/** Order within one key group (compareTimers without the key group). */
function compareInGroup(ts: number, nk: Scalar, ns: Scalar, t: RocksTimer<unknown>): number {
  if (ts !== t.timestamp) return ts < t.timestamp ? -1 : 1;
  if (nk !== t.normalizedKey) {
    if (typeof nk === typeof t.normalizedKey) return nk < t.normalizedKey ? -1 : 1;
    return typeof nk === 'number' ? -1 : 1;
  }
  if (ns !== t.namespaceKey) {
    if (typeof ns === typeof t.namespaceKey) return ns < t.namespaceKey ? -1 : 1;
    return typeof ns === 'number' ? -1 : 1;
  }
  return 0;
}

/**
 * Timers of one domain in the RocksDB keyed backend's database (Flink's
 * RocksDBCachingPriorityQueueSet under a KeyGroupPartitionedPriorityQueue): one row per
 * timer, key `kg | stateId | timestamp | key | namespace` in an order-preserving encoding
 * (timer-keys.ts), empty value, so each key group's timers are sorted by firing order in
 * RocksDB. On the heap: per key group a cache of its earliest timers (at most cacheSizes.max,
 * exactly the smallest ones), and a binary heap of key groups by their earliest timer, so
 * peek is O(1) and add/poll are O(log key groups) plus RocksDB work. Writes go through a
 * buffer written with the backend's flush batch (so they are in its snapshots and change
 * tracking). As in Flink, a timer later than the cached ones is written without asking
 * RocksDB whether it is there (a second put of the same key is the same row), so such an add
 * or delete cannot tell whether it changed anything: it returns true, and `size` counts the
 * rows again (a scan) when it is next asked.
 *
 * Invariant per key group: the cache holds its smallest timers, and every timer of the
 * group that is not cached sorts after `bound` (the key of the last timer the cache has
 * held), so a reload seeks past the tombstones of fired timers.
 */
export class RocksDbTimerQueue<N> implements TimerQueue<N>, RocksWriteBuffer {
  private readonly meta: StateMeta;
  private readonly start: number;
  private readonly caches: RocksTimer<N>[][];
  /** the cache holds every timer of the group */
  private readonly complete: boolean[];
  private readonly bound: Array<Buffer | undefined>;
  /** key groups (index from start) with cached timers, a binary min-heap by their first timer */
  private readonly groups: number[] = [];
  private readonly groupPos: Int32Array;
  /** buffered writes in order: RocksDB keys, and true for a put, false for a delete */
  private pendingKeys: Buffer[] = [];
  private pendingPuts: boolean[] = [];
  private count = 0;
  /** per key group: buffered writes after its bound, which a reload must see (so it flushes first) */
  private readonly unflushed: Int32Array;
  /** count is the number of timers (false after an add or delete beyond the caches) */
  private exact = true;
  /** the backend restored rows after the caches were read: read them again before the next use */
  private stale = false;

  constructor(
    private readonly host: RocksEventTimeHost,
    /** the RocksDB state's name, one per timer service and domain */
    name: string,
    private readonly ctx: TimerQueueContext<N>,
    private readonly cacheSizes: TimerCacheSizes = DEFAULT_CACHE,
  ) {
    if (!(cacheSizes.load >= 1 && cacheSizes.max >= cacheSizes.load))
      throw new Error(`Timer cache sizes need 1 <= load <= max, got ${JSON.stringify(cacheSizes)}`);
    this.meta = host.register(name, 'timers');
    host.addWriteBuffer(this);
    const n = ctx.keyGroupRange.size;
    this.start = ctx.keyGroupRange.start;
    this.caches = Array.from({ length: n }, () => []);
    this.complete = new Array<boolean>(n).fill(false);
    this.bound = new Array<Buffer | undefined>(n).fill(undefined);
    this.groupPos = new Int32Array(n).fill(-1);
    this.unflushed = new Int32Array(n);
    // timers restored into the backend before the queue was made
    host.flush();
    for (let gi = 0; gi < n; gi++) this.load(gi);
    this.exact = false;
  }

  get size(): number {
    if (this.stale) this.reread();
    if (!this.exact) {
      this.host.flush();
      this.count = 0;
      for (let gi = 0; gi < this.caches.length; gi++) {
        const prefix = timerGroupPrefix(this.meta.id, gi + this.start);
        this.host.forEachInRange({ gte: prefix, lt: prefixEnd(prefix)! }, () => void this.count++, 4096);
      }
      this.exact = true;
    }
    return this.count;
  }

  peek(): InternalTimer<N> | undefined {
    if (this.stale) this.reread();
    return this.groups.length === 0 ? undefined : this.caches[this.groups[0]!]![0];
  }

  poll(): InternalTimer<N> | undefined {
    if (this.stale) this.reread();
    if (this.groups.length === 0) return undefined;
    const gi = this.groups[0]!;
    const cache = this.caches[gi]!;
    const t = cache.shift()!;
    this.write(t.rocksKey, false);
    this.count--;
    if (cache.length === 0 && !this.complete[gi]) this.load(gi);
    this.updateGroup(gi);
    return t;
  }

  add(
    timestamp: number,
    key: unknown,
    normalizedKey: Scalar,
    keyGroup: number,
    namespace: N,
    namespaceKey: Scalar,
  ): boolean {
    if (this.stale) this.reread();
    const gi = keyGroup - this.start;
    const cache = this.caches[gi]!;
    const pos = this.search(cache, timestamp, normalizedKey, namespaceKey);
    if (pos < 0) return false; // cached already
    const k = timerKey(this.meta.id, keyGroup, timestamp, normalizedKey, namespaceKey);
    this.write(k, true);
    this.count++;
    // at or below the bound, or the cache is all of them: its absence from the cache says it is new
    if (!this.inCachedRange(gi, k)) {
      this.exact = false;
      this.unflushed[gi]!++;
    } else {
      cache.splice(pos, 0, {
        timestamp,
        key,
        normalizedKey,
        keyGroup,
        namespace,
        namespaceKey,
        heapIndex: -1,
        rocksKey: k,
      });
      if (cache.length > this.cacheSizes.max) {
        cache.pop(); // stays in RocksDB alone
        this.unflushed[gi]!++; // its put may still be buffered
        this.complete[gi] = false;
        this.bound[gi] = cache[cache.length - 1]!.rocksKey;
      } else if (this.bound[gi] === undefined || k.compare(this.bound[gi]!) > 0) {
        this.bound[gi] = k;
      }
      if (pos === 0) this.updateGroup(gi);
    }
    return true;
  }

  delete(timestamp: number, normalizedKey: Scalar, keyGroup: number, namespaceKey: Scalar): boolean {
    if (this.stale) this.reread();
    const gi = keyGroup - this.start;
    const cache = this.caches[gi]!;
    const pos = this.search(cache, timestamp, normalizedKey, namespaceKey);
    if (pos < 0) {
      const i = -pos - 1;
      const [t] = cache.splice(i, 1);
      this.write(t!.rocksKey, false);
      this.count--;
      if (cache.length === 0 && !this.complete[gi]) this.load(gi);
      if (i === 0) this.updateGroup(gi);
      return true;
    }
    const k = timerKey(this.meta.id, keyGroup, timestamp, normalizedKey, namespaceKey);
    if (this.inCachedRange(gi, k)) return false;
    this.write(k, false);
    this.exact = false;
    this.unflushed[gi]!++;
    return true;
  }

  forEachInKeyGroup(
    keyGroup: number,
    fn: (key: unknown, namespaceKey: Scalar, timestamp: number) => void,
  ): void {
    this.host.flush();
    const prefix = timerGroupPrefix(this.meta.id, keyGroup);
    this.host.forEachInRange({ gte: prefix, lt: prefixEnd(prefix)! }, (k) => {
      const t = decodeTimerKey(k);
      fn(denormalizeKey(t.normalizedKey), t.namespaceKey, t.timestamp);
    });
  }

  /** RocksWriteBuffer: restored rows (the backend flushed this buffer first); the caches are read again at the next use. */
  restored(): void {
    this.stale = true;
  }

  private reread(): void {
    this.stale = false;
    this.groups.length = 0;
    this.groupPos.fill(-1);
    for (let gi = 0; gi < this.caches.length; gi++) {
      this.caches[gi]!.length = 0;
      this.complete[gi] = false;
      this.bound[gi] = undefined;
      this.load(gi);
    }
    this.exact = false;
  }

  /** RocksWriteBuffer: the backend's flush writes the buffered puts and deletes. */
  writeTo(batch: RocksBatch, track: ((key: Buffer) => void) | undefined): void {
    const keys = this.pendingKeys;
    const puts = this.pendingPuts;
    for (let i = 0; i < keys.length; i++) {
      if (puts[i]) batch._put(keys[i]!, EMPTY, NO_OPTIONS);
      else batch._del(keys[i]!, NO_OPTIONS);
      track?.(keys[i]!);
    }
    this.pendingKeys = [];
    this.pendingPuts = [];
    this.unflushed.fill(0);
  }

  /** Index to insert at, or -(index + 1) when the cache holds this timer. */
  private search(cache: RocksTimer<N>[], ts: number, nk: Scalar, ns: Scalar): number {
    let lo = 0;
    let hi = cache.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = compareInGroup(ts, nk, ns, cache[mid]!);
      if (c === 0) return -(mid + 1);
      if (c > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Whether the group's timer with key k would be cached if it existed. */
  private inCachedRange(gi: number, k: Buffer): boolean {
    if (this.complete[gi]) return true;
    const b = this.bound[gi];
    return b !== undefined && k.compare(b) <= 0;
  }

  private write(k: Buffer, put: boolean): void {
    this.pendingKeys.push(k);
    this.pendingPuts.push(put);
    this.host.bufferedOne();
  }

  /**
   * Reads the group's next timers from RocksDB into its (empty) cache. Buffered writes at or
   * before the bound (fired and deleted cached timers) are invisible to a read after it, so
   * only writes after it make it flush first.
   */
  private load(gi: number): void {
    if (this.unflushed[gi]! > 0) this.host.flush();
    const kg = gi + this.start;
    const prefix = timerGroupPrefix(this.meta.id, kg);
    const b = this.bound[gi];
    const cache = this.caches[gi]!;
    const serializer = this.ctx.namespaceSerializer;
    this.host.forEachInRange(
      { ...(b ? { gt: b } : { gte: prefix }), lt: prefixEnd(prefix)! },
      (k) => {
        const t = decodeTimerKey(k);
        cache.push({
          timestamp: t.timestamp,
          key: denormalizeKey(t.normalizedKey),
          normalizedKey: t.normalizedKey,
          keyGroup: kg,
          namespace: serializer.fromKey(t.namespaceKey),
          namespaceKey: t.namespaceKey,
          heapIndex: -1,
          rocksKey: k,
        });
        return cache.length < this.cacheSizes.load;
      },
      this.cacheSizes.load,
    );
    this.complete[gi] = cache.length < this.cacheSizes.load;
    if (cache.length > 0) this.bound[gi] = cache[cache.length - 1]!.rocksKey;
    this.updateGroup(gi);
  }

  // ---- the heap of key groups, ordered by their first cached timer (then by key group)

  private less(a: number, b: number): boolean {
    // compareTimers across key groups: timestamp, then key group
    const x = this.caches[a]![0]!.timestamp;
    const y = this.caches[b]![0]!.timestamp;
    return x < y || (x === y && a < b);
  }

  private updateGroup(gi: number): void {
    const h = this.groups;
    const pos = this.groupPos;
    let i = pos[gi]!;
    if (this.caches[gi]!.length === 0) {
      if (i < 0) return;
      const last = h.pop()!;
      pos[gi] = -1;
      if (i === h.length) return;
      h[i] = last;
      pos[last] = i;
      gi = last;
    } else if (i < 0) {
      i = h.length;
      h.push(gi);
      pos[gi] = i;
    }
    // sift up, then down
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(gi, h[p]!)) break;
      h[i] = h[p]!;
      pos[h[i]!] = i;
      i = p;
    }
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && this.less(h[r]!, h[l]!) ? r : l;
      if (!this.less(h[c]!, gi)) break;
      h[i] = h[c]!;
      pos[h[i]!] = i;
      i = c;
    }
    h[i] = gi;
    pos[gi] = i;
  }
}
