import type { NK } from './held-values.js';

/** One cached value: as held (see held-values.ts) or ABSENT, its estimated size, and its CLOCK bit. */
export interface CacheEntry {
  v: unknown;
  bytes: number;
  /**
   * 1: read since the clock hand last passed (it gets a second chance); 0: not; -1: prefetched
   * for a read about to come, which does not count as reuse
   */
  ref: number;
  /**
   * -1: clean (in RocksDB, or absent from it); else written and not yet in RocksDB, never
   * evicted until flushed, at this place in its state's write buffer (StateMeta.pending)
   */
  slot: number;
}

/** One state's entries, in insertion order (the order the clock hand walks). */
export type CacheMap = Map<NK, CacheEntry>;

/*
 * Estimated JavaScript heap bytes of one entry, measured with `node --expose-gc` (1M entries of
 * number keys and 9-byte Buffers, heapUsed before and after): the Map slot, the entry object, and
 * for a Buffer value its object and backing store. Strings count their length once (one-byte).
 */
const ENTRY_BYTES = 88;
const BUFFER_BYTES = 96;
const STRING_BYTES = 16;
/** a flat value held as an object (see held-values.ts flatCopy): its header, and per field (a tagged or boxed number, or a string's pointer) */
const OBJECT_BYTES = 48;
const FIELD_BYTES = 16;

/** Estimated heap bytes of a cached key and value. */
export function entryBytes(nk: NK, v: unknown): number {
  let n = ENTRY_BYTES;
  if (typeof nk === 'string') n += STRING_BYTES + nk.length;
  if (typeof v === 'string') n += STRING_BYTES + v.length;
  else if (typeof v === 'object' && v !== null) {
    if (Buffer.isBuffer(v)) n += BUFFER_BYTES + v.length;
    else if (Array.isArray(v)) n += OBJECT_BYTES + FIELD_BYTES * v.length + stringBytes(v);
    else if (Object.getPrototypeOf(v) === Object.prototype) {
      n += OBJECT_BYTES;
      for (const k in v as Record<string, unknown>)
        n += FIELD_BYTES + k.length + stringBytes1((v as Record<string, unknown>)[k]);
    }
  }
  return n;
}

function stringBytes1(x: unknown): number {
  return typeof x === 'string' ? STRING_BYTES + x.length : 0;
}

function stringBytes(a: unknown[]): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += stringBytes1(a[i]);
  return n;
}

/**
 * The RocksDB backend's read cache: what RocksDB holds for recently used keys, bounded in
 * estimated bytes (and optionally in entries), shared by the backend's states. Eviction is
 * CLOCK (second chance) over each state's Map in insertion order: a hit only sets a bit, and
 * the hand, when it needs room, gives a read entry one more round (moving it to the end) and
 * drops the first one not read since. Hot keys stay; a uniform workload keeps as much as fits.
 *
 * It is also the write buffer of the states of one value per key: a written entry is marked
 * dirty in place (write) until the flush has put it in RocksDB (markClean), and the hand passes
 * over dirty entries. One Map lookup per read and per write, instead of a write buffer's Map
 * beside this one (looked up first on every read) and a second insert here at every flush.
 */
export class ReadCache {
  /** estimated bytes held, dirty entries included */
  bytes = 0;
  entries = 0;
  /** of which written and not yet flushed */
  dirtyBytes = 0;
  dirtyEntries = 0;
  /** prefetched entries read since the count was last reset (see RocksDBKeyedStateBackend.prefetch) */
  prefetchedRead = 0;
  /**
   * Whether every key RocksDB holds for the cached states is cached: true from a database created
   * empty until the first entry is dropped (eviction, a replaced database). While it holds, a key
   * the cache misses is absent, and the backend reads neither RocksDB nor prefetches: a job whose
   * state fits the cache pays no native read for the first touch of each key.
   */
  complete = true;
  private readonly maps: CacheMap[] = [];

  constructor(
    readonly maxBytes: number,
    readonly maxEntries = Infinity,
  ) {
    if (!(maxBytes > 0))
      throw new Error(`The RocksDB read cache needs a positive size, got ${maxBytes} bytes`);
  }

  /** The entries of one more state. */
  newMap(): CacheMap {
    const m: CacheMap = new Map();
    this.maps.push(m);
    return m;
  }

  /** The cached value (undefined: not cached), marking it used. */
  get(map: CacheMap, nk: NK): unknown {
    return this.getEntry(map, nk)?.v;
  }

  /** The cached entry (undefined: not cached), marking it used. */
  getEntry(map: CacheMap, nk: NK): CacheEntry | undefined {
    const e = map.get(nk);
    if (e !== undefined) this.touch(e);
    return e;
  }

  /** Marks an entry found earlier (and not dropped since, see `bytes`) used, as getEntry does. */
  touch(e: CacheEntry): void {
    if (e.ref < 0) {
      e.ref = 0;
      this.prefetchedRead++;
    } else e.ref = 1;
  }

  has(map: CacheMap, nk: NK): boolean {
    return map.has(nk);
  }

  /**
   * Caches v for nk (replacing what was there, keeping its bit), then makes room if over a
   * bound. prefetched: the read it was fetched for is not reuse.
   */
  put(map: CacheMap, nk: NK, v: unknown, prefetched = false): CacheEntry {
    const bytes = entryBytes(nk, v);
    let e = map.get(nk);
    if (e !== undefined) {
      // a written value is newer than anything read from RocksDB
      if (e.slot >= 0) return e;
      this.bytes += bytes - e.bytes;
      e.v = v;
      e.bytes = bytes;
    } else {
      map.set(nk, (e = { v, bytes, ref: prefetched ? -1 : 0, slot: -1 }));
      this.bytes += bytes;
      this.entries++;
    }
    if (this.bytes > this.maxBytes || this.entries > this.maxEntries) this.evict(map);
    return e;
  }

  /**
   * Holds v for nk as written, not yet in RocksDB (see the class comment); returns its entry,
   * whose slot is `slot` when it was clean before (one more to flush), else the slot it had.
   */
  write(map: CacheMap, nk: NK, v: unknown, entry: CacheEntry | undefined, slot: number): CacheEntry {
    const bytes = entryBytes(nk, v);
    // `entry`: nk's entry as a read just gave it (a read-modify-write looks it up once), unless
    // dropped since
    const e = entry !== undefined && entry.bytes >= 0 ? entry : map.get(nk);
    let written: CacheEntry;
    if (e !== undefined) {
      this.bytes += bytes - e.bytes;
      if (e.slot >= 0) this.dirtyBytes += bytes - e.bytes;
      else {
        e.slot = slot;
        this.dirtyBytes += bytes;
        this.dirtyEntries++;
      }
      e.v = v;
      e.bytes = bytes;
      written = e;
    } else {
      map.set(nk, (written = { v, bytes, ref: 0, slot }));
      this.bytes += bytes;
      this.entries++;
      this.dirtyBytes += bytes;
      this.dirtyEntries++;
    }
    if (this.bytes > this.maxBytes || this.entries > this.maxEntries) this.evict(map);
    return written;
  }

  /** A flushed entry: in RocksDB now, evictable again. */
  markClean(e: CacheEntry): void {
    if (e.slot < 0) return;
    e.slot = -1;
    this.dirtyBytes -= e.bytes;
    this.dirtyEntries--;
  }

  /**
   * Whether written entries hold over half of a bound: then they are to be flushed, or the hand
   * would pass over them again and again without finding room.
   */
  dirtyOverHalf(): boolean {
    return this.dirtyBytes * 2 > this.maxBytes || this.dirtyEntries * 2 > this.maxEntries;
  }

  /**
   * Drops entries until 1/64 below the bounds (so the hand runs once per many inserts), from
   * the state being written first, then from the others.
   */
  private evict(first: CacheMap): void {
    const targetBytes = this.maxBytes - Math.ceil(this.maxBytes / 64);
    const targetEntries =
      this.maxEntries === Infinity ? Infinity : this.maxEntries - Math.floor(this.maxEntries / 64);
    const over = (): boolean => this.bytes > targetBytes || this.entries > targetEntries;
    for (let i = -1; i < this.maps.length && over(); i++) {
      const map = i < 0 ? first : this.maps[i]!;
      if (i >= 0 && map === first) continue;
      // at most two rounds: the first clears every bit it passes (entries moved to the end are
      // met again by the same iteration)
      let budget = map.size * 2;
      for (const [nk, e] of map) {
        if (!over() || budget-- <= 0) break;
        map.delete(nk);
        if (e.slot >= 0) {
          // not in RocksDB yet: to the end of the order, so the next runs of the hand do not
          // pass over it again first
          map.set(nk, e);
          continue;
        }
        if (e.ref > 0) {
          e.ref = 0;
          map.set(nk, e); // a second chance: to the end of the order
        } else {
          this.bytes -= e.bytes;
          this.entries--;
          e.bytes = -1; // dropped (see write)
          this.complete = false;
        }
      }
    }
  }

  /** Drops every clean entry (the database under it was replaced); written ones stay to be flushed. */
  clear(): void {
    this.complete = false;
    for (const m of this.maps) {
      for (const [nk, e] of m)
        if (e.slot < 0) {
          m.delete(nk);
          e.bytes = -1; // dropped (see write)
        }
    }
    this.bytes = this.dirtyBytes;
    this.entries = this.dirtyEntries;
  }
}
