import { getHeapStatistics } from 'node:v8';

/*
 * How a TaskManager's managed memory (Flink's name: the memory it gives RocksDB state) is split:
 * evenly between its slots, within a slot evenly between the task's RocksDB databases (one per
 * keyed operator), and within a database between the read cache in front of RocksDB (on the
 * slot's JavaScript heap), RocksDB's block cache and its memtables (at most 32 MB, see
 * MAX_DEFAULT_WRITE_BUFFER). A size set explicitly for one of the three replaces its share.
 */

/** Shares of a database's memory: read cache, block cache, memtables. */
export const READ_CACHE_SHARE = 0.5;
export const BLOCK_CACHE_SHARE = 0.3;
export const WRITE_BUFFER_SHARE = 0.2;

/** The smallest size any of the three gets, so a tiny budget still opens a usable database. */
const MIN_BYTES = 1 << 20;

/**
 * The smallest managed memory of a slot: enough that each of the three shares of one database
 * reaches MIN_BYTES (the memtables' 20% is the binding one). Less is refused at TaskManager start
 * rather than silently exceeded.
 */
export const MIN_SLOT_BYTES = Math.ceil(
  MIN_BYTES / Math.min(READ_CACHE_SHARE, BLOCK_CACHE_SHARE, WRITE_BUFFER_SHARE),
);

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(bytes % (1 << 20) === 0 ? 0 : 1)} MiB`;
}

/**
 * The most the memtables get from a share (unless set explicitly); the rest of their part goes
 * to the block cache. Larger memtables make every write slower, not faster: an insert walks a
 * skip list that no longer fits the CPU's caches (one subtask's keyed count over 500,000 keys,
 * bench/keyed-state-loop.ts: about 185k records per CPU second with memtables of 8-32 MB in
 * all, about 155k with 340 MB).
 */
export const MAX_DEFAULT_WRITE_BUFFER = 32 << 20;

/** What a TaskManager resolves from its settings: bytes per slot, or explicit bytes per database. */
export interface ManagedMemory {
  /** managed memory of one slot */
  perSlot: number;
  readCacheSize?: number;
  blockCacheSize?: number;
  writeBufferSize?: number;
}

/** One database's sizes. */
export interface DatabaseMemory {
  readCacheBytes: number;
  blockCacheSize: number;
  writeBufferSize: number;
}

/**
 * Managed memory per slot: the size set, or the fraction of this process's JavaScript heap limit.
 * A budget under MIN_SLOT_BYTES per slot is an error naming the setting and the smallest size
 * that works for this many slots.
 */
export function managedMemoryPerSlot(size: number | undefined, fraction: number, slots: number): number {
  const n = Math.max(1, slots);
  const total = size ?? Math.floor(getHeapStatistics().heap_size_limit * fraction);
  const perSlot = Math.floor(total / n);
  if (perSlot < MIN_SLOT_BYTES) {
    const least = MIN_SLOT_BYTES * n;
    const what =
      size !== undefined
        ? `taskmanager.memory.managed.size is ${size} bytes (${mib(size)})`
        : `taskmanager.memory.managed.fraction ${fraction} of the JavaScript heap limit is ${total} bytes (${mib(total)})`;
    throw new Error(
      `${what}, too little managed memory for RocksDB state in ${n} slot${n === 1 ? '' : 's'}: ` +
        `each slot needs at least ${MIN_SLOT_BYTES} bytes (${mib(MIN_SLOT_BYTES)}); ` +
        `set taskmanager.memory.managed.size to at least ${least} bytes (${mib(least)})`,
    );
  }
  return perSlot;
}

/** The sizes of one of `databases` RocksDB databases of a task in one slot. */
export function databaseMemory(m: ManagedMemory, databases = 1): DatabaseMemory {
  const share = m.perSlot / Math.max(1, databases);
  const part = (explicit: number | undefined, fraction: number): number =>
    explicit ?? Math.max(MIN_BYTES, Math.floor(share * fraction));
  const writeBufferSize =
    m.writeBufferSize ?? Math.min(MAX_DEFAULT_WRITE_BUFFER, part(undefined, WRITE_BUFFER_SHARE));
  const spare = m.writeBufferSize === undefined ? part(undefined, WRITE_BUFFER_SHARE) - writeBufferSize : 0;
  return {
    readCacheBytes: part(m.readCacheSize, READ_CACHE_SHARE),
    // the binding takes the block cache size as a 32-bit number
    blockCacheSize: Math.min(0xffff_ffff, m.blockCacheSize ?? part(undefined, BLOCK_CACHE_SHARE) + spare),
    writeBufferSize,
  };
}
