import { createRequire } from 'node:module';
import { prefixEnd } from './key-layout.js';

/*
 * The binding is @nxtedition/rocksdb (chosen by measurement, see bench/README.md): the only one
 * with synchronous reads, writes and iteration, which the synchronous state API needs. It is a
 * CommonJS native module, loaded on first use so heap-only tasks never load it.
 */
export interface RocksIterator {
  nextv(size: number): Promise<Array<[Buffer, Buffer]>>;
  _nextvSync(size: number, options: object): { rows: Buffer[]; finished: boolean };
  /** flat rows [k0, v0, k1, v1, ...], read on libuv's pool; no [k, v] pair per row as nextv() makes */
  _nextvAsync(size: number, options: object): Promise<{ rows: Buffer[]; finished: boolean }>;
  _seekSync(target: Buffer): void;
  close(): Promise<void>;
}
export interface RocksBatch {
  _put(key: Buffer, value: Buffer, options: object): void;
  _del(key: Buffer, options: object): void;
  /** appends value to the key's stored bytes (the merge operator of openRocksDB) */
  _merge(key: Buffer, value: Buffer, options: object): void;
  _writeSync(options: object): void;
  _closeSync(): void;
}
export interface RocksDB {
  status: string;
  open(options: object): Promise<void>;
  close(): Promise<void>;
  batch(): RocksBatch;
  iterator(options: object): RocksIterator;
  /** deletes the keys in a range ({ gte, lt }) */
  clear(options: object): Promise<void>;
  _getManySync(keys: Buffer[], options: object): Array<Buffer | undefined>;
  /** RocksDB's latest sequence number (one per write operation) */
  readonly sequence: number;
  getProperty(property: string): string;
}
type RocksLevelClass = new (location: string, options: object) => RocksDB;

let rocksLevel: RocksLevelClass | undefined;
export function loadBinding(): RocksLevelClass {
  rocksLevel ??= (createRequire(import.meta.url)('@nxtedition/rocksdb') as { RocksLevel: RocksLevelClass })
    .RocksLevel;
  return rocksLevel;
}

export const NO_OPTIONS = {};
export const ITERATOR_OPTIONS = { keyEncoding: 'buffer', valueEncoding: 'buffer' };

/**
 * Opens a fresh database in `dir` (which must not exist yet), sized by the backend's options; with
 * `existing`, the database there (a local checkpoint laid out as one).
 */
export async function openRocksDB(
  dir: string,
  opts: { blockCacheSize: number; writeBufferSize: number },
  existing = false,
): Promise<RocksDB> {
  const RocksLevel = loadBinding();
  const db = new RocksLevel(dir, {});
  try {
    await db.open({
      createIfMissing: !existing,
      errorIfExists: !existing,
      cacheSize: opts.blockCacheSize,
      // 'level' compaction is what lets the memtable size be set: write_buffer_size = budget / 4,
      // flushed two at a time (up to 6, so 1.5 x the budget at worst while flushes lag)
      compaction: 'level',
      memtableMemoryBudget: opts.writeBufferSize,
      compression: false,
      walCompression: false,
      // index and filter blocks count against the block cache, so memory stays bounded at any
      // state size (as Flink's RocksDB memory management sets it)
      cacheIndexAndFilterBlocks: true,
      // list state's add() is a merge that appends the element's bytes (see list-values.ts)
      mergeOperator: 'id=stringappend;delimiter=',
      parallelism: 1,
      // a Bloom filter over each memtable's keys (a read of a key not written lately skips the
      // memtable's skip list: most state reads miss it, first reads of new keys always), a hash
      // index in data blocks, and Ribbon filters in table files: one subtask's keyed count over
      // 500,000 keys, 13% more records per CPU second (bench/README.md, seventh session)
      optimize: 'point-lookup',
    });
  } catch (e) {
    const cause = (e as Error & { cause?: Error }).cause?.message;
    throw new Error(
      `Cannot open RocksDB state in ${dir}: ${(e as Error).message}${cause ? ` (${cause})` : ''}`,
    );
  }
  return db;
}

/**
 * Opens an existing database (a checkpoint's copy) that must show RocksDB sequence number
 * `sequence`, i.e. every write up to its checkpoint and none after: the database, or the
 * number it showed (closed again). The number is read before any close: a closed database's
 * properties crash the binding.
 */
export async function openAtSequence(
  dir: string,
  opts: { blockCacheSize: number; writeBufferSize: number },
  sequence: string,
): Promise<{ db: RocksDB } | { shown: string }> {
  const db = await openRocksDB(dir, opts, true);
  const shown = String(db.sequence);
  if (shown === sequence) return { db };
  await db.close().catch(() => {});
  return { shown };
}

/** Runs fill on a fresh write batch and writes it synchronously; the batch is closed either way. */
export function writeBatch(db: RocksDB, fill: (batch: RocksBatch) => void): void {
  const batch = db.batch();
  try {
    fill(batch);
    batch._writeSync(NO_OPTIONS);
  } finally {
    batch._closeSync();
  }
}

/** The stored bytes of a RocksDB key (undefined when absent). */
export function getBytes(db: RocksDB, key: Buffer): Buffer | undefined {
  const v = db._getManySync([key], NO_OPTIONS)[0];
  return v === undefined || v === null ? undefined : v;
}

/** Synchronous scan of every RocksDB key starting with prefix. */
export function scanPrefix(db: RocksDB, prefix: Buffer, limit = Infinity): Array<[Buffer, Buffer]> {
  const bounds: { gte: Buffer; lt?: Buffer } = { gte: prefix };
  const end = prefixEnd(prefix);
  if (end) bounds.lt = end;
  const it = db.iterator({ ...ITERATOR_OPTIONS, ...bounds });
  const out: Array<[Buffer, Buffer]> = [];
  try {
    for (;;) {
      const { rows, finished } = it._nextvSync(Math.min(1000, limit - out.length), NO_OPTIONS);
      for (let j = 0; j < rows.length; j += 2) out.push([rows[j]!, rows[j + 1]!]);
      if (finished || out.length >= limit) break;
    }
  } finally {
    void it.close();
  }
  return out;
}

/**
 * The rows under prefix, in key order, read in chunks as they are consumed; the iterator opens
 * at the first read (a consistent view from then) and closes at the end or when the consumer
 * stops early.
 */
export function* rowsWithPrefix(db: RocksDB, prefix: Buffer, chunk = 256): Generator<[Buffer, Buffer]> {
  const bounds: { gte: Buffer; lt?: Buffer } = { gte: prefix };
  const end = prefixEnd(prefix);
  if (end) bounds.lt = end;
  const it = db.iterator({ ...ITERATOR_OPTIONS, ...bounds });
  try {
    for (;;) {
      const { rows, finished } = it._nextvSync(chunk, NO_OPTIONS);
      for (let j = 0; j < rows.length; j += 2) yield [rows[j]!, rows[j + 1]!];
      if (finished || rows.length === 0) return;
    }
  } finally {
    void it.close();
  }
}

/** Key bounds of a range read: from gte (or after gt) to before lt. */
export interface KeyRange {
  gt?: Buffer;
  gte?: Buffer;
  lt?: Buffer;
}

/**
 * Synchronous read of the rows in a range, in key order, in chunks of up to `chunk` rows;
 * fn returns false to stop early.
 */
export function forEachInRange(
  db: RocksDB,
  range: KeyRange,
  fn: (key: Buffer, value: Buffer) => boolean | void,
  chunk = 1000,
): void {
  const it = db.iterator({ ...ITERATOR_OPTIONS, ...range });
  try {
    for (;;) {
      const { rows, finished } = it._nextvSync(chunk, NO_OPTIONS);
      for (let j = 0; j < rows.length; j += 2) if (fn(rows[j]!, rows[j + 1]!) === false) return;
      if (finished || rows.length === 0) return;
    }
  } finally {
    void it.close();
  }
}
