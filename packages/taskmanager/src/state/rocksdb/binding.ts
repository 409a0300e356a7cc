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

/**
 * The binding's native functions under its JavaScript classes. The state backend's per-record
 * calls (a batch's put, the multi-get) go to them directly: the classes' wrappers turn an absent
 * options argument into `{}`, and the native side then looks each option name up on it (a V8
 * string made from a C string per name, per call: one per put, six per multi-get), which an
 * `undefined` skips; they also check and convert arguments the backend never passes wrong.
 */
interface Native {
  batch_init(): NativeHandle;
  batch_put(batch: NativeHandle, key: Buffer, value: Buffer, options: undefined): void;
  batch_del(batch: NativeHandle, key: Buffer, options: undefined): void;
  batch_merge(batch: NativeHandle, key: Buffer, value: Buffer, options: undefined): void;
  batch_write(db: NativeHandle, batch: NativeHandle, options: undefined): void;
  batch_clear(batch: NativeHandle): void;
  db_get_many_sync(db: NativeHandle, keys: Buffer[], options: undefined): Array<Buffer | undefined | null>;
}
/** a native object (napi external) of the binding: a database or a write batch */
type NativeHandle = object;

let native: Native | undefined;
function loadNative(): Native {
  native ??= createRequire(import.meta.url)('@nxtedition/rocksdb/binding.js') as Native;
  return native;
}

/** The native database behind a RocksLevel (the binding keeps it under a private symbol). */
function nativeDb(db: RocksDB): NativeHandle {
  const own = db as unknown as Record<symbol, unknown>;
  for (const s of Object.getOwnPropertySymbols(db))
    if (s.description === 'context' && typeof own[s] === 'object' && own[s] !== null) return own[s];
  throw new Error('The RocksDB binding keeps its database where this version does not look for it');
}

/**
 * One reusable write batch of a database, filled and written through the native functions: no
 * wrapper object per batch, no option lookups per operation. Keys and values are copied into the
 * batch at each call, so the caller may reuse their memory right after.
 */
export class NativeBatch implements RocksBatch {
  private readonly n = loadNative();
  private readonly batch = this.n.batch_init();
  private readonly db: NativeHandle;

  constructor(db: RocksDB) {
    this.db = nativeDb(db);
  }

  _put(key: Buffer, value: Buffer): void {
    this.n.batch_put(this.batch, key, value, undefined);
  }

  _del(key: Buffer): void {
    this.n.batch_del(this.batch, key, undefined);
  }

  _merge(key: Buffer, value: Buffer): void {
    this.n.batch_merge(this.batch, key, value, undefined);
  }

  /** writes what the batch holds and empties it, also when the write fails */
  _writeSync(): void {
    try {
      this.n.batch_write(this.db, this.batch, undefined);
    } finally {
      this.n.batch_clear(this.batch);
    }
  }

  /** empties the batch (it stays usable) */
  _closeSync(): void {
    this.n.batch_clear(this.batch);
  }
}

/** A database's synchronous multi-get through the native function (see Native). */
export function nativeGetMany(db: RocksDB): (keys: Buffer[]) => Array<Buffer | undefined | null> {
  const n = loadNative();
  const handle = nativeDb(db);
  return (keys) => n.db_get_many_sync(handle, keys, undefined);
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
      // a compaction preset is what lets the memtable size be set: write_buffer_size = budget / 4,
      // flushed two at a time (up to 6, so 1.5 x the budget at worst while flushes lag).
      // Universal, not level: the binding's level preset compresses every level from the second
      // on with ZSTD whatever `compression` says, so each block-cache miss of a database larger
      // than its cache paid a decompression. Multi-gets of a 5M-key database with a 36 MB block
      // cache, 173,703 keys/s against 105,385 (bench/rocksdb-block-cache.ts); 10M keys under a
      // 256 MB heap, 113,805 and 96,120 records/s against 57,088-92,274 (bench/README.md)
      compaction: 'universal',
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
export function scanPrefix(db: RocksDB, prefix: Buffer): Array<[Buffer, Buffer]> {
  const bounds: { gte: Buffer; lt?: Buffer } = { gte: prefix };
  const end = prefixEnd(prefix);
  if (end) bounds.lt = end;
  const it = db.iterator({ ...ITERATOR_OPTIONS, ...bounds });
  const out: Array<[Buffer, Buffer]> = [];
  try {
    for (;;) {
      const { rows, finished } = it._nextvSync(1000, NO_OPTIONS);
      for (let j = 0; j < rows.length; j += 2) out.push([rows[j]!, rows[j + 1]!]);
      if (finished || rows.length === 0) break;
    }
  } finally {
    void it.close();
  }
  return out;
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
