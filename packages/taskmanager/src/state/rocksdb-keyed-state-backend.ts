import type {
  AggregatingState,
  AggregatingStateDescriptor,
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ReducingState,
  ReducingStateDescriptor,
  State,
  StateDescriptor,
  ValueState,
  ValueStateDescriptor,
} from '@weir/api';
import {
  decodeValues,
  normalizeKey,
  type KeyGroupRange,
  type RocksDBFileHandle,
  type RocksDBNativeKeyedHandle,
} from '@weir/core/runtime';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { aggregatingState, reducingState } from './appending-state.js';
import { DeltaOp, type IncrementalKeyedHandle } from './incremental-snapshot.js';
import type {
  IncrementalSnapshotMaterializer,
  KeyedStateBackend,
  KeyedStateSnapshot,
  KeyedStateSnapshotMaterializer,
  NativeSnapshotMaterializer,
} from './keyed-state-backend.js';
import {
  ITERATOR_OPTIONS,
  NO_OPTIONS,
  forEachInRange,
  getBytes,
  openAtSequence,
  openRocksDB,
  scanPrefix,
  writeBatch,
  NativeBatch,
  nativeGetMany,
  type RocksBatch,
  type RocksDB,
  type RocksIterator,
} from './rocksdb/binding.js';
import { PrefixReader } from './rocksdb/prefix-reader.js';
import { ChangeLog, ChangeTracker } from './rocksdb/change-tracker.js';
import type { EventTimeStateKind, RocksEventTimeHost, RocksWriteBuffer } from './rocksdb/event-time-host.js';
import {
  ABSENT,
  AppendList,
  DELETED,
  fromHeld,
  heldFlatFromStored,
  heldValue,
  overwriteFlat,
  pack,
  type NK,
  type StateMeta,
} from './rocksdb/held-values.js';
import { PENDING_DELETE, PENDING_HELD, PendingValues } from './rocksdb/pending-values.js';
import {
  emptyChains,
  planGroups,
  restoredChains,
  uploadIncremental,
  type Chains,
} from './rocksdb/incremental-chains.js';
import { KEY_HEADER_BYTES, KeyScratch, groupBound, stateIdOf, stateKeyPrefix } from './rocksdb/key-layout.js';
import { ListWrite, listFromArrayBytes } from './rocksdb/list-values.js';
import {
  dropLocalCheckpoints,
  localCheckpointDir,
  materializeLocalCheckpoint,
  materializeRecovered,
  readLocalCheckpoint,
  recoverLocalCheckpoint,
  takeLocalCheckpoint,
} from './rocksdb/local-checkpoint.js';
import {
  copyRows,
  downloadNativeCheckpoint,
  openNative,
  liveTableFiles,
  tablesStillIn,
  uploadedFilesOf,
  uploadNativeCheckpoint,
  type UploadedFiles,
} from './rocksdb/native-checkpoint.js';
import { ReadCache, type CacheEntry } from './rocksdb/read-cache.js';
import {
  DEFAULT_MAX_BATCH_BYTES,
  OP_DELETE_KEY,
  OP_PUT,
  scanCanonical,
  type StateNames,
} from './rocksdb/snapshot-batches.js';
import { restoreBatchBytes } from './rocksdb/restore-batches.js';
import { timerKeyOf } from './rocksdb/timer-keys.js';
import { WriteOrder } from './rocksdb/write-order.js';
import {
  rocksCell,
  rocksListState,
  rocksMapState,
  rocksValueState,
  type RocksStateHost,
} from './rocksdb/states.js';

/*
 * The parts of this backend live in ./rocksdb/: the binding (binding.ts), the key layout
 * (key-layout.ts), how the write buffer and read cache hold values (held-values.ts), the state
 * objects (states.ts), the change tracker (change-tracker.ts) and the snapshot batches and
 * incremental chains (snapshot-batches.ts, incremental-chains.ts). This file keeps the backend's
 * own state: the database, the buffer and cache, and the checkpoint bookkeeping; it stays above
 * 400 lines because those share its fields (every write, flush, snapshot and restore goes through
 * the same buffer, cache and change tracker).
 */

export interface RocksDBKeyedStateBackendOptions {
  /** the database directory; must not exist yet (a fresh one per task attempt) */
  directory: string;
  maxParallelism: number;
  blockCacheSize: number;
  writeBufferSize: number;
  /**
   * written entries held in memory before a batched write (default 200,000: in one subtask's
   * keyed count over 500,000 keys, 10% more records per CPU second than 50,000, from updates of
   * one key merged and longer runs of neighbouring keys per memtable insert; the flush at a
   * checkpoint's synchronous part takes up to about 0.2 s)
   */
  maxBufferedEntries?: number;
  /** estimated bytes of the read cache in front of RocksDB (default 32 MiB; see read-cache.ts) */
  readCacheBytes?: number;
  /** read entries cached at most, whatever their size (default: no bound but the bytes) */
  maxCachedEntries?: number;
  /** incremental checkpoints: track what changed since the last completed checkpoint */
  incremental?: boolean;
  /** changed keys held in memory; past this many, a checkpoint's changed keys go to a change log on disk (default 200,000) */
  maxTrackedKeys?: number;
  /** bytes of value-state writes recorded for the next incremental checkpoint; past this, written keys are tracked and read back instead (default: a quarter of the read cache's bytes, at least 4 MiB; see OpLog) */
  maxRecordedOpBytes?: number;
  /** a shared file of an incremental checkpoint is closed when it reaches this size (default 64 MiB) */
  maxSharedFileBytes?: number;
  /** a snapshot batch (one link of a chain) is closed at about this size, so a large key group spans several (default 8 MiB) */
  maxBatchBytes?: number;
  /** a key group's chain is rewritten in full at the latest when it has this many links (default 64; each group's own limit lies between half of it and it) */
  maxChainLength?: number;
  /** local recovery: where this subtask keeps its local checkpoints (see rocksdb/local-checkpoint.ts) */
  localCheckpoints?: string;
  /**
   * Native checkpoints (see rocksdb/native-checkpoint.ts): checkpoints upload the database's
   * files; the first and last key group of this subtask, which the handles record
   */
  nativeCheckpoints?: [number, number];
}

/** A fresh database directory below the TaskManager's local state directory. */
export function rocksDBDirectory(
  localDir: string,
  t: { jobId: string; operatorId: string; subtaskIndex: number; attemptNumber: number },
): string {
  const op = t.operatorId.replace(/[^A-Za-z0-9_.-]/g, '_');
  return path.join(
    localDir,
    `job_${t.jobId}_op_${op}_${t.subtaskIndex}_attempt_${t.attemptNumber}_${randomUUID().slice(0, 8)}`,
  );
}
const DISPOSED = 'RocksDB state backend used after it was disposed';
/** the database a local checkpoint is recovered in, once: small caches, as the logs are at most the memtables */
const RECOVERY_DB = { blockCacheSize: 1 << 20, writeBufferSize: 16 << 20 };
const EMPTY = Buffer.alloc(0);
/** keys read per multi-get when prefetching (RocksDB sorts and reads each batch in one call) */
const PREFETCH_BATCH = 4096;
/** prefetched entries between two looks at how many of them were read */
const PREFETCH_WINDOW = 2048;
/** input buffers skipped after a window in which under a quarter of what was prefetched was read */
const PREFETCH_PAUSE = 31;
/** bytes of a state's pending values (see pending-values.ts) past which rewrites that grew them flush */
const PENDING_VALUES_FLUSH = 16 << 20;

/**
 * Keyed state in RocksDB (one database per task attempt, on local disk), with the heap
 * backend's synchronous semantics. Keys are laid out key group first (see key-layout.ts).
 *
 * In front of RocksDB: a write buffer (Map of dirty entries per state, written in one batch
 * before each snapshot and whenever it reaches maxBufferedEntries) and a read cache bounded in
 * bytes with CLOCK eviction (read-cache.ts), both holding objects as serialized bytes (strings,
 * numbers, booleans and bigints as they are). As in Flink's RocksDB backend, update()
 * serializes at once and every read decodes a fresh copy, so a change to a read value is state
 * only after update(), whatever the cache holds. The task hands each input buffer to
 * prefetch() before processing it: the keys the cache misses are read in one multi-get.
 * Keys are built in a scratch buffer (KeyScratch), not allocated per operation.
 */
export class RocksDBKeyedStateBackend implements KeyedStateBackend {
  readonly type = 'rocksdb' as const;
  private db: RocksDB | undefined;
  /** incremental mode: the change log (changed keys past maxTrackedKeys), a database of its own */
  private changeDb: RocksDB | undefined;
  private closed = false;
  private currentKey: unknown;
  private nk: NK = '';
  private readonly metas = new Map<string, StateMeta>();
  private readonly states = new Map<string, State>();
  private dirtyCount = 0;
  private readonly maxBuffered: number;
  private readonly cache: ReadCache;
  /** the cache entry the last read of the current key found, and its state (see write) */
  private lastRead: CacheEntry | undefined;
  private lastReadMeta: StateMeta | undefined;
  /** the states of one value per key (value, reducing, aggregating): what prefetch() reads, buffered in the cache */
  private readonly valueMetas: StateMeta[] = [];
  private readonly scratch = new KeyScratch();
  private readonly writeOrder = new WriteOrder();
  private readonly oneKey: Buffer[] = [Buffer.alloc(0)];
  // prefetch's reused arrays: keys (views of prefetchScratch), and whose they are
  private readonly prefetchScratch = new KeyScratch();
  private readonly prefetchKeys: Buffer[] = [];
  private readonly prefetchMetas: StateMeta[] = [];
  private readonly prefetchNks: NK[] = [];
  private readonly prefetchSeen = new Set<string | number>();
  /**
   * What the last prefetch found for its buffer's records, in record order, when the operator
   * has one value state: each record's key and its cache entry (undefined: look it up). The
   * records are then processed in that order, one setCurrentKey each (the cursor), so a read
   * takes its record's entry without a second Map lookup when the key matches and the entry was
   * not dropped since; anything else (a timer's key, a record that set no key) looks up.
   */
  private readonly handedNks: NK[] = [];
  private readonly handedEntries: Array<CacheEntry | undefined> = [];
  private handedMeta: StateMeta | undefined;
  private handedCursor = 0;
  /** for each key of the multi-get being gathered: the record it was first asked for by (-1: none handed) */
  private readonly prefetchRecords: number[] = [];
  /** entries prefetched in the current window, and input buffers still to skip */
  private prefetched = 0;
  private prefetchPaused = 0;
  private readonly snapshots = new Set<Promise<unknown>>();
  private readonly host: RocksStateHost;
  /** buffered writes of timer queues (see eventTimeHost) */
  private readonly writeBuffers: RocksWriteBuffer[] = [];
  private eventTime: RocksEventTimeHost | undefined;
  // ---- incremental checkpoints
  private readonly incremental: boolean;
  private readonly changes: ChangeTracker;
  /** the chains of the last completed checkpoint: what the next one builds on */
  private base: Chains = emptyChains();
  private readonly pendingChains = new Map<number, Chains>();
  private lastCompleted = 0;
  // ---- native checkpoints
  /** the table files and logs of the last completed native checkpoint: the next one references these */
  private uploadedFiles: UploadedFiles = new Map();
  private readonly pendingFiles = new Map<number, UploadedFiles>();
  /** directories of linked files (a native checkpoint's) and downloads, removed on disposal */
  private readonly scratchDirs = new Set<string>();

  constructor(private readonly opts: RocksDBKeyedStateBackendOptions) {
    this.maxBuffered = opts.maxBufferedEntries ?? 200_000;
    this.incremental = opts.incremental ?? false;
    const readCacheBytes = opts.readCacheBytes ?? 32 * 1024 * 1024;
    this.changes = new ChangeTracker(
      opts.maxTrackedKeys ?? 200_000,
      undefined,
      opts.maxRecordedOpBytes ?? Math.max(4 << 20, Math.floor(readCacheBytes / 4)),
    );
    this.cache = new ReadCache(readCacheBytes, opts.maxCachedEntries ?? Infinity);
    const self = this;
    this.host = {
      get nk() {
        return self.nk;
      },
      read: (meta) => this.read(meta),
      write: (meta, v) => this.write(meta, v),
      writeHeld: (meta, v) => this.writeHeld(meta, v),
      bufferedOne: () => {
        if (++this.dirtyCount >= this.maxBuffered) this.flush();
      },
      flush: () => this.flush(),
      getBytes: (key) => getBytes(this.rdb, key),
      rows: (prefix, first) => this.reader().rows(prefix, first),
      prefix: (meta, nk) => this.prefix(meta, nk),
      mapKey: (meta, nk, userKey) => Buffer.concat([this.prefix(meta, nk), pack(userKey)]),
      deleteMap: (prefix) => {
        // read and deleted 1,000 rows at a time: a large map is never held whole
        let chunk: Buffer[] = [];
        let tracked = false;
        const del = (): void => {
          writeBatch(this.rdb, (batch) => {
            for (const k of chunk) batch._del(k, NO_OPTIONS);
          });
          chunk = [];
        };
        for (const [k] of this.reader().rows(prefix)) {
          // an empty map was not changed
          if (!tracked && this.incremental) this.changes.track(prefix, 'p');
          tracked = true;
          chunk.push(k);
          if (chunk.length >= 1000) del();
        }
        if (chunk.length > 0) del();
      },
    };
  }

  get directory(): string {
    return this.opts.directory;
  }

  /**
   * Namespaced state and timers (eventtime/rocksdb-namespaced-state.ts,
   * eventtime/rocksdb-timer-queue.ts) in this backend's database: states of kind 'namespaced'
   * (key | namespace -> value, buffered like map entries) and 'timers' (order-preserving keys,
   * empty values), in its snapshots, incremental checkpoints and restores.
   */
  eventTimeHost(): RocksEventTimeHost {
    const self = this;
    return (this.eventTime ??= {
      maxParallelism: this.opts.maxParallelism,
      register: (name: string, kind: EventTimeStateKind) => this.register(name, kind),
      statesOf: (kind: EventTimeStateKind) => [...this.metas.values()].filter((m) => m.kind === kind),
      bufferedOne: () => this.host.bufferedOne(),
      flush: () => this.flush(),
      addWriteBuffer: (b: RocksWriteBuffer) => void this.writeBuffers.push(b),
      getBytes: (key: Buffer) => {
        if (self.closed) throw new Error(DISPOSED);
        return getBytes(this.rdb, key);
      },
      forEachInRange: (range, fn, chunk) => forEachInRange(this.rdb, range, fn, chunk),
      rows: (prefix) => this.reader().rows(prefix),
      writeNow: (fill) => {
        const track = (key: Buffer): void => {
          if (this.incremental) this.changes.track(key, 'k');
        };
        writeBatch(this.rdb, (batch) => fill(batch, track));
      },
    });
  }

  async open(): Promise<void> {
    if (this.db) return;
    const dir = this.opts.directory;
    try {
      mkdirSync(path.dirname(dir), { recursive: true });
    } catch (e) {
      throw new Error(
        `Cannot create the RocksDB local state directory ${path.dirname(dir)}: ${(e as Error).message}`,
      );
    }
    this.db = await openRocksDB(dir, this.opts);
    if (this.incremental) {
      // small: it is written in batches of maxTrackedKeys rows and read once per checkpoint
      this.changeDb = await openRocksDB(this.changeLogDirectory, {
        blockCacheSize: 1 << 20,
        writeBufferSize: 4 << 20,
      });
      this.changes.attach(new ChangeLog(this.changeDb));
    }
  }

  private get changeLogDirectory(): string {
    return `${this.opts.directory}-changes`;
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // running snapshots notice `closed` at their next batch and give up
    await Promise.allSettled([...this.snapshots]);
    const db = this.db;
    const changeDb = this.changeDb;
    this.db = undefined;
    this.changeDb = undefined;
    if (db) await db.close().catch(() => {});
    if (changeDb) await changeDb.close().catch(() => {});
    for (const dir of [this.opts.directory, this.changeLogDirectory, ...this.scratchDirs]) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        /* it was never created (an unusable local directory) */
      }
    }
  }

  private get rdb(): RocksDB {
    if (!this.db) throw new Error(this.closed ? DISPOSED : 'RocksDB state backend used before open()');
    return this.db;
  }

  /** the map reads' iterator of the database opened (see PrefixReader) */
  private prefixReader: PrefixReader | undefined;
  private reader(): PrefixReader {
    const db = this.rdb;
    if (this.prefixReader?.db !== db) {
      this.prefixReader?.release();
      this.prefixReader = new PrefixReader(db);
    }
    return this.prefixReader;
  }

  /** the database's reused write batch and multi-get on the record path (see NativeBatch), made for each database opened */
  private nativeFor: RocksDB | undefined;
  private batch!: NativeBatch;
  private getMany!: (keys: Buffer[]) => Array<Buffer | undefined | null>;
  private native(): void {
    const db = this.rdb;
    if (this.nativeFor === db) return;
    this.batch = new NativeBatch(db);
    this.getMany = nativeGetMany(db);
    this.nativeFor = db;
  }

  setCurrentKey(key: unknown): void {
    this.currentKey = key;
    this.nk = normalizeKey(key);
    this.lastReadMeta = undefined;
    this.handedCursor++;
  }

  getCurrentKey(): unknown {
    return this.currentKey;
  }

  /** key group, state id and normalized key: the prefix of every RocksDB key of this key's state */
  private prefix(meta: StateMeta, nk: NK): Buffer {
    return stateKeyPrefix(meta.id, nk, this.opts.maxParallelism);
  }

  // ---- registration

  private register(name: string, kind: string): StateMeta {
    const existing = this.metas.get(name);
    if (existing) {
      if (existing.kind !== kind)
        throw new Error(`State '${name}' is already registered as ${existing.kind} state, not ${kind}`);
      return existing;
    }
    if (this.metas.size >= 0xffff) throw new Error('Too many keyed states in one operator (at most 65535)');
    const meta: StateMeta = {
      name,
      kind,
      id: this.metas.size + 1,
      dirty: new Map(),
      clean: this.cache.newMap(),
      pending: [],
      pendingEntries: [],
      pendingCount: 0,
      pendingValues: new PendingValues(),
      mapDirty: new Map(),
    };
    this.metas.set(name, meta);
    // list state is read past the cache (its stored bytes are appended to by merges); namespaced
    // state and timers are read by their own keys (see eventTimeHost), never through read()
    if (kind !== 'map' && kind !== 'list' && kind !== 'namespaced' && kind !== 'timers')
      this.valueMetas.push(meta);
    return meta;
  }

  private cached<S extends State>(desc: StateDescriptor<S>, make: (meta: StateMeta) => S): S {
    const meta = this.register(desc.name, desc.kind);
    let s = this.states.get(desc.name);
    if (!s) this.states.set(desc.name, (s = make(meta)));
    return s as S;
  }

  // ---- one value per key (value, list, reducing, aggregating), through the buffer and cache

  private read(meta: StateMeta): unknown {
    if (this.closed) throw new Error(DISPOSED); // also for what the cache still holds
    const nk = this.nk;
    // the entry the prefetch handed this record (see handedEntries), else a lookup; written
    // entries are in the cache too (marked dirty)
    const c = this.handedCursor - 1;
    let e: CacheEntry | undefined;
    if (meta === this.handedMeta && c < this.handedNks.length && this.handedNks[c] === nk) {
      e = this.handedEntries[c];
      if (e !== undefined && e.bytes >= 0) this.cache.touch(e);
      else e = this.cache.getEntry(meta.clean, nk);
    } else e = this.cache.getEntry(meta.clean, nk);
    if (e !== undefined) {
      this.lastRead = e;
      this.lastReadMeta = meta;
      return e.v === ABSENT ? undefined : fromHeld(e.v);
    }
    if (this.cache.complete) {
      // not cached, so not in RocksDB either (see ReadCache.complete)
      this.lastRead = this.cache.put(meta.clean, nk, ABSENT);
      this.lastReadMeta = meta;
      return undefined;
    }
    const end = this.scratch.stateKey(0, meta.id, nk, this.opts.maxParallelism);
    this.oneKey[0] = this.scratch.view(0, end);
    this.native();
    const bytes = this.getMany(this.oneKey)[0] ?? undefined;
    if (bytes === undefined) {
      this.cache.put(meta.clean, nk, ABSENT);
      return undefined;
    }
    const stored = heldFlatFromStored(bytes);
    this.cache.put(meta.clean, nk, stored);
    return fromHeld(stored);
  }

  /**
   * Reads, in multi-gets, the value states of the keys of a buffer of records that neither the
   * write buffer nor the cache holds, into the cache; the records are processed after. A key
   * selector that throws stops the prefetch (processing the record reports it). An operator
   * that mostly writes without reading (under a quarter of a window of prefetched entries
   * read) has the next 31 input buffers not prefetched, which keeps measuring.
   */
  prefetch(records: readonly unknown[], keyOf: (record: unknown) => unknown): void {
    const metas = this.valueMetas;
    this.handedMeta = undefined;
    // a complete cache answers every read itself (see ReadCache.complete)
    if (this.closed || !this.db || metas.length === 0 || this.cache.complete) return;
    if (this.prefetchPaused > 0) {
      this.prefetchPaused--;
      return;
    }
    if (this.prefetched >= PREFETCH_WINDOW) {
      if (this.cache.prefetchedRead * 4 < this.prefetched) this.prefetchPaused = PREFETCH_PAUSE;
      this.prefetched = 0;
      this.cache.prefetchedRead = 0;
    }
    const keys = this.prefetchKeys;
    const seen = this.prefetchSeen;
    // one value state: its entries are handed to the reads (see handedEntries)
    const hand = metas.length === 1 ? metas[0]! : undefined;
    const handedNks = this.handedNks;
    const handedEntries = this.handedEntries;
    handedNks.length = 0;
    handedEntries.length = 0;
    this.handedMeta = hand;
    this.handedCursor = 0;
    let at = 0;
    try {
      for (let i = 0; i < records.length; i++) {
        const nk = normalizeKey(keyOf(records[i]));
        let first = true;
        for (let m = 0; m < metas.length; m++) {
          const meta = metas[m]!;
          if (hand !== undefined) {
            const e = meta.clean.get(nk);
            handedNks.push(nk);
            handedEntries.push(e);
            if (e !== undefined) continue;
          } else if (this.cache.has(meta.clean, nk)) continue;
          // a key seen before in this buffer is queued already (only misses are remembered)
          if (first) {
            first = false;
            if (seen.has(nk)) break;
            seen.add(nk);
          }
          const end = this.prefetchScratch.stateKey(at, meta.id, nk, this.opts.maxParallelism);
          keys.push(this.prefetchScratch.viewOf(keys.length, at, end));
          this.prefetchMetas.push(meta);
          this.prefetchNks.push(nk);
          this.prefetchRecords.push(hand !== undefined ? i : -1);
          at = end;
          if (keys.length >= PREFETCH_BATCH) {
            this.readPrefetched();
            at = 0;
          }
        }
      }
    } catch {
      // a key selector failed: the record's processing raises it; the records after it get
      // nothing handed (their keys are not known)
    } finally {
      seen.clear();
    }
    this.readPrefetched();
  }

  private readPrefetched(): void {
    const keys = this.prefetchKeys;
    if (keys.length > 0) {
      this.prefetched += keys.length;
      this.native();
      const values = this.getMany(keys);
      for (let i = 0; i < keys.length; i++) {
        const bytes = values[i];
        const e = this.cache.put(
          this.prefetchMetas[i]!.clean,
          this.prefetchNks[i]!,
          bytes === undefined || bytes === null ? ABSENT : heldFlatFromStored(bytes),
          true,
        );
        const r = this.prefetchRecords[i]!;
        if (r >= 0) this.handedEntries[r] = e;
      }
    }
    keys.length = 0;
    this.prefetchMetas.length = 0;
    this.prefetchNks.length = 0;
    this.prefetchRecords.length = 0;
  }

  /**
   * Copies now (a flat value) or serializes now: a later change to the object passed to
   * update() is not state (as in Flink's RocksDB backend).
   */
  private write(meta: StateMeta, v: unknown): void {
    if (this.closed) throw new Error(DISPOSED);
    const nk = this.nk;
    // the entry the last read found, when it was of this state and key (setCurrentKey forgets it)
    const last = this.lastReadMeta === meta ? this.lastRead : undefined;
    const held =
      last !== undefined && overwriteFlat(last.v, v) ? last.v : v === DELETED ? ABSENT : heldValue(meta, v);
    const slot = meta.pendingCount;
    const e = this.cache.write(meta.clean, nk, held, last, slot);
    const fresh = e.slot === slot;
    meta.pendingValues.set(e.slot, held, fresh);
    if (fresh) {
      meta.pendingCount++;
      meta.pending[slot] = nk;
      meta.pendingEntries[slot] = e;
      if (++this.dirtyCount >= this.maxBuffered || this.cache.dirtyOverHalf()) this.flush();
    } else if (meta.pendingValues.size > PENDING_VALUES_FLUSH) this.flush();
  }

  /** list state: a ListWrite or DELETED into its write buffer */
  private writeHeld(meta: StateMeta, v: unknown): void {
    if (this.closed) throw new Error(DISPOSED);
    const before = meta.dirty.size;
    meta.dirty.set(this.nk, v);
    if (meta.dirty.size > before && ++this.dirtyCount >= this.maxBuffered) this.flush();
  }

  private dropCache(): void {
    this.cache.clear();
  }

  /** Writes the buffered entries to RocksDB in one batch; they stay readable from the cache. */
  flush(): void {
    if (this.dirtyCount === 0) return;
    const sc = this.scratch;
    const maxP = this.opts.maxParallelism;
    const order = this.writeOrder;
    this.native();
    const batch = this.batch;
    try {
      for (const meta of this.metas.values()) {
        // in RocksDB's key order: the memtable inserts cost less (see write-order.ts)
        let n = order.sort(meta.pending, maxP, meta.pendingCount);
        // incremental: a value state's writes are recorded as delta operations (OpLog), the
        // other kinds' keys are tracked and read back at the checkpoint
        const opName = n > 0 && this.incremental ? pack(meta.name) : undefined;
        const values = meta.pendingValues;
        for (let i = 0; i < n; i++) {
          const nk = order.nkAt(i);
          const slot = order.indexAt(i);
          const start = values.startOf(slot);
          // the key and the value's bytes side by side in the scratch buffer
          const end = sc.stateKeyInGroup(0, order.groupAt(i), meta.id, nk);
          const key = sc.view(0, end);
          if (start === PENDING_DELETE) {
            batch._del(key);
            if (opName !== undefined) this.changes.op(OP_DELETE_KEY, opName, key);
          } else {
            const bytes =
              start === PENDING_HELD
                ? this.valueBytes(meta.pendingEntries[slot]!.v, end)
                : sc.view(end, sc.copyIn(end, values.bytes, start, values.endOf(slot)));
            batch._put(key, bytes);
            if (opName !== undefined) this.changes.op(OP_PUT, opName, key, bytes);
          }
        }
        // in the order written, apart from the puts: the entries' loads do not wait on each other
        const count = meta.pendingCount;
        for (let i = 0; i < count; i++) this.cache.markClean(meta.pendingEntries[i]!);
        // the entries are the cache's again (an evicted one is not kept alive from here)
        meta.pendingEntries.fill(undefined, 0, count);
        meta.pendingCount = 0;
        values.reset();
        // list state's own write buffer
        n = order.sort(meta.dirty, maxP);
        for (let i = 0; i < n; i++) {
          const nk = order.nkAt(i);
          const v = meta.dirty.get(nk);
          const end = sc.stateKeyInGroup(0, order.groupAt(i), meta.id, nk);
          const key = sc.view(0, end);
          if (v === DELETED) batch._del(key);
          else if (v instanceof ListWrite) {
            if (v.replace) batch._put(key, v.bytes());
            else batch._merge(key, v.bytes());
          }
          if (this.incremental) this.changes.track(key, 'k');
        }
        meta.dirty.clear();
        for (const [nk, entries] of meta.mapDirty) {
          const prefixEnd = sc.stateKey(0, meta.id, nk, maxP);
          for (const [uk, v] of entries.values()) {
            const end = sc.bytes(prefixEnd, uk as Buffer);
            const key = sc.view(0, end);
            if (v === DELETED) batch._del(key);
            else batch._put(key, this.valueBytes(v, end));
            if (this.incremental) this.changes.track(key, 'k');
          }
        }
        meta.mapDirty.clear();
      }
      const track = this.incremental ? (key: Buffer) => this.changes.track(key, 'k') : undefined;
      for (const b of this.writeBuffers) b.writeTo(batch, track);
      batch._writeSync();
      // an iterator kept for map reads is stale now and pins the memtables it saw
      this.prefixReader?.release();
    } finally {
      // what a failed flush put in the batch is not written later with the next one
      batch._closeSync();
    }
    order.clear();
    this.dirtyCount = 0;
  }

  /** The stored bytes of a held value: its Buffer, a window list's bytes, or a primitive encoded into the scratch buffer after `at`. */
  private valueBytes(v: unknown, at: number): Buffer {
    if (Buffer.isBuffer(v)) return v;
    if (v instanceof AppendList) return v.bytes();
    return this.scratch.view(at, this.scratch.value(at, v));
  }

  getState<T>(desc: ValueStateDescriptor<T>): ValueState<T> {
    return this.cached(desc, (meta) => rocksValueState(this.host, meta, desc));
  }

  getListState<T>(desc: ListStateDescriptor<T>): ListState<T> {
    return this.cached(desc, (meta) => rocksListState(this.host, meta, desc));
  }

  getReducingState<T>(desc: ReducingStateDescriptor<T>): ReducingState<T> {
    return this.cached(desc, (meta) => reducingState(desc, rocksCell<T>(this.host, meta)));
  }

  getAggregatingState<IN, ACC, OUT>(
    desc: AggregatingStateDescriptor<IN, ACC, OUT>,
  ): AggregatingState<IN, OUT> {
    return this.cached(desc, (meta) => aggregatingState(desc, rocksCell<ACC>(this.host, meta)));
  }

  getMapState<UK, UV>(desc: MapStateDescriptor<UK, UV>): MapState<UK, UV> {
    return this.cached(desc, (meta) => rocksMapState(this.host, meta, desc));
  }

  // ---- snapshots and restore

  /** Packed state names by state id, and the kinds, as of now. */
  private stateNames(): { kinds: Record<string, string>; names: StateNames } {
    const kinds: Record<string, string> = {};
    const names: StateNames = new Map();
    for (const m of this.metas.values()) {
      kinds[m.name] = m.kind;
      names.set(m.id, {
        name: pack(m.name),
        map: m.kind === 'map',
        list: m.kind === 'list',
        namespaced: m.kind === 'namespaced',
        timers: m.kind === 'timers',
      });
    }
    return { kinds, names };
  }

  private readonly isClosed = (): boolean => this.closed;

  /**
   * Synchronous part: write the buffer to RocksDB and open an iterator, which is a consistent
   * point-in-time view. Asynchronous part: read that view in batches (the reads run on libuv's
   * pool) and build the canonical per-key-group batches between them, while records go on.
   * The result is one Buffer of the whole state, so checkpoints and savepoints take
   * snapshotStreamed() instead; this stays for callers that want the single-file format.
   */
  snapshot(maxParallelism: number): KeyedStateSnapshotMaterializer {
    this.checkLayout(maxParallelism);
    this.flush();
    const it = this.rdb.iterator(ITERATOR_OPTIONS);
    const { names, kinds } = this.stateNames();
    let called = false;
    return () => {
      if (called) throw new Error('A snapshot can be materialized only once');
      called = true;
      const p = this.materialize(it, kinds, names).finally(() => {
        this.snapshots.delete(p);
        return it.close().catch(() => {});
      });
      this.snapshots.add(p);
      return p;
    };
  }

  private checkLayout(maxParallelism: number): void {
    if (maxParallelism !== this.opts.maxParallelism) {
      throw new Error(
        `Snapshot with max parallelism ${maxParallelism}, but the RocksDB state was laid out for ${this.opts.maxParallelism}`,
      );
    }
  }

  private async materialize(
    it: RocksIterator,
    kinds: Record<string, string>,
    names: StateNames,
  ): Promise<KeyedStateSnapshot | undefined> {
    const parts: Buffer[] = [];
    const index: Record<number, [number, number]> = {};
    let offset = 0;
    await scanCanonical(
      it,
      names,
      (group, bytes) => {
        index[group] = [offset, bytes.byteLength];
        parts.push(bytes);
        offset += bytes.byteLength;
      },
      this.isClosed,
      Infinity, // one batch per key group: the format of this snapshot
    );
    if (parts.length === 0) return undefined;
    return { data: Buffer.concat(parts), index, kinds };
  }

  /**
   * A full snapshot streamed to storage: the synchronous part opens a consistent view (an
   * iterator); the asynchronous part reads it in order and writes batches of at most
   * maxBatchBytes into files of at most maxSharedFileBytes as it goes, so no Buffer ever holds
   * the whole state. The handle has the incremental format (per key group a chain of full
   * batches) with files the caller places in the checkpoint's own directory; it references no
   * earlier checkpoint and leaves the incremental bookkeeping alone.
   */
  snapshotStreamed(checkpointId: number, maxParallelism: number): IncrementalSnapshotMaterializer {
    this.checkLayout(maxParallelism);
    this.flush();
    const it = this.rdb.iterator(ITERATOR_OPTIONS);
    const { kinds, names } = this.stateNames();
    let called = false;
    return (write) => {
      if (called) throw new Error('A snapshot can be materialized only once');
      called = true;
      const p = uploadIncremental({
        checkpointId,
        write,
        all: true,
        base: emptyChains(),
        scans: [[-1, it]],
        deltaView: undefined,
        deltaGroups: [],
        kinds,
        names,
        maxSharedFileBytes: this.maxSharedFileBytes,
        maxBatchBytes: this.opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
        isClosed: this.isClosed,
      })
        .then(({ handle }) => handle)
        .finally(() =>
          it
            .close()
            .catch(() => {})
            .then(() => this.snapshots.delete(p)),
        );
      this.snapshots.add(p);
      return p;
    };
  }

  private get maxSharedFileBytes(): number {
    return this.opts.maxSharedFileBytes ?? 64 * 1024 * 1024;
  }

  // ---- incremental checkpoints

  /**
   * Synchronous part of an incremental checkpoint: write the buffer, freeze what changed since
   * the last snapshot, and open consistent views (iterators) of what must be uploaded: whole key
   * groups that changed much (or everything, the first time), and the changed keys of the others.
   * Key groups that did not change since the last completed checkpoint reference its files.
   */
  snapshotIncremental(checkpointId: number, maxParallelism: number): IncrementalSnapshotMaterializer {
    this.checkLayout(maxParallelism);
    if (!this.incremental)
      throw new Error('Incremental snapshot of a RocksDB backend made without incremental mode');
    this.flush();
    const { all, changed, release } = this.changes.freeze(checkpointId);
    const base = this.base;
    const { fullGroups, deltaGroups } = all
      ? { fullGroups: [], deltaGroups: [] }
      : planGroups(base, changed, this.opts.maxChainLength ?? 64);
    // iterators opened now see the state as of now, whenever they are read
    const scans: Array<[number, RocksIterator]> = all
      ? [[-1, this.rdb.iterator(ITERATOR_OPTIONS)]]
      : fullGroups.map((g) => [
          g,
          this.rdb.iterator({
            ...ITERATOR_OPTIONS,
            gte: groupBound(g),
            ...(g < 0xffff ? { lt: groupBound(g + 1) } : {}),
          }),
        ]);
    const deltaView = deltaGroups.length > 0 ? this.rdb.iterator(ITERATOR_OPTIONS) : undefined;
    const { kinds, names } = this.stateNames();
    let called = false;
    return (write) => {
      if (called) throw new Error('A snapshot can be materialized only once');
      called = true;
      const p = uploadIncremental({
        checkpointId,
        write,
        all,
        base,
        scans,
        deltaView,
        deltaGroups,
        kinds,
        names,
        maxSharedFileBytes: this.maxSharedFileBytes,
        maxBatchBytes: this.opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
        isClosed: this.isClosed,
      })
        .then(({ next, handle }) => {
          this.pendingChains.set(checkpointId, next);
          return handle;
        })
        .finally(() =>
          Promise.all(
            [...scans.map(([, it]) => it), ...(deltaView ? [deltaView] : [])].map((it) =>
              it.close().catch(() => {}),
            ),
          ).then(() => {
            release();
            this.snapshots.delete(p);
          }),
        );
      this.snapshots.add(p);
      return p;
    };
  }

  // ---- local checkpoints (local recovery)

  /**
   * Keeps the database as it is now as the local checkpoint of checkpoint `checkpointId`; called
   * at the checkpoint's synchronous part, after its snapshot. Returns why it could not (the
   * checkpoint goes on; a restore of it reads its files).
   */
  keepLocalCheckpoint(checkpointId: number): string | undefined {
    const root = this.opts.localCheckpoints;
    if (root === undefined || this.closed || !this.db) return undefined;
    this.flush();
    const db = this.db;
    try {
      takeLocalCheckpoint(
        this.opts.directory,
        localCheckpointDir(root, checkpointId),
        {
          checkpointId,
          maxParallelism: this.opts.maxParallelism,
          sequence: String(db.sequence),
          states: [...this.metas.values()].map((m) => [m.name, m.kind]),
        },
        () => db.getProperty('rocksdb.current-super-version-number'),
      );
      return undefined;
    } catch (e) {
      return `cannot keep a local RocksDB checkpoint of checkpoint ${checkpointId} in ${root}: ${(e as Error).message}`;
    }
  }

  /**
   * Restores the local checkpoint of checkpoint `checkpointId` in place of the (still empty)
   * database: opened where it stood, no row written again. Returns what it stood for, undefined
   * when there is none, or why it was not used (in both cases the database is empty and the
   * checkpoint's files are to be read).
   */
  async restoreLocalCheckpoint(
    checkpointId: number,
    native?: readonly RocksDBNativeKeyedHandle[],
  ): Promise<{ bytes: number; recovered: boolean } | string | undefined> {
    const root = this.opts.localCheckpoints;
    if (root === undefined) return undefined;
    const dir = localCheckpointDir(root, checkpointId);
    const meta = readLocalCheckpoint(dir);
    if (meta === undefined || typeof meta === 'string') return meta;
    if (meta.checkpointId !== checkpointId || meta.maxParallelism !== this.opts.maxParallelism)
      return `the local RocksDB checkpoint in ${dir} is of checkpoint ${meta.checkpointId} at max parallelism ${meta.maxParallelism}, not ${checkpointId} at ${this.opts.maxParallelism}`;
    const conflict = this.idConflict(meta.states, `the local RocksDB checkpoint ${dir}`);
    if (conflict) return conflict;
    const dbDir = this.opts.directory;
    await this.db?.close();
    this.db = undefined;
    let why = '';
    // its recovered form first (no logs to replay), then the copy as it was taken
    for (const [recovered, lay] of [
      [true, () => materializeRecovered(dir, dbDir)],
      [false, () => materializeLocalCheckpoint(dir, meta, dbDir)],
    ] as const) {
      try {
        rmSync(dbDir, { recursive: true, force: true });
        const bytes = lay();
        if (bytes === undefined) continue;
        const opened = await openAtSequence(dbDir, this.opts, meta.sequence);
        if ('db' in opened) {
          this.db = opened.db;
          for (const [name, kind] of meta.states) this.register(name, kind);
          this.replacedDatabase();
          this.adoptUploadedTables(native, dbDir);
          return { bytes, recovered };
        }
        why = `the local RocksDB checkpoint in ${dir} opened at sequence number ${opened.shown}, not ${meta.sequence} (a write-ahead log is incomplete)`;
      } catch (e) {
        why = `the local RocksDB checkpoint in ${dir} cannot be opened (${(e as Error).message})`;
      }
    }
    rmSync(dbDir, { recursive: true, force: true });
    this.db = await openRocksDB(dbDir, this.opts);
    return why;
  }

  /**
   * After a local restore: the next native checkpoint references the table files the restored
   * checkpoint uploaded and the database still has (without this it uploaded the whole database
   * again). Only a handle of this subtask's own key groups qualifies.
   */
  private adoptUploadedTables(native: readonly RocksDBNativeKeyedHandle[] | undefined, dbDir: string): void {
    const keyGroups = this.opts.nativeCheckpoints;
    const only = native?.length === 1 ? native[0]! : undefined;
    if (keyGroups && only && only.keyGroups[0] === keyGroups[0] && only.keyGroups[1] === keyGroups[1])
      this.uploadedFiles = tablesStillIn(only, dbDir, this.liveTables());
  }

  /** The table files of the database's current version. */
  private liveTables(): Set<string> {
    return liveTableFiles(this.rdb.getProperty('rocksdb.sstables'));
  }

  /** Another database's files took this one's place: nothing cached from it holds. */
  private replacedDatabase(): void {
    this.dropCache();
    for (const b of this.writeBuffers) b.restored?.();
  }

  /** Why the states registered so far cannot keep the ids a database's rows carry (`states` in id order). */
  private idConflict(states: ReadonlyArray<[string, string]>, what: string): string | undefined {
    for (const m of this.metas.values())
      if (states[m.id - 1]?.[0] !== m.name || states[m.id - 1]?.[1] !== m.kind)
        return `state '${m.name}' was registered before the restore with another id than in ${what}`;
    return undefined;
  }

  // ---- native checkpoints

  /** A directory next to the database, removed on disposal if still there. */
  private scratchDir(what: string): string {
    const dir = `${this.opts.directory}-${what}-${randomUUID().slice(0, 8)}`;
    this.scratchDirs.add(dir);
    return dir;
  }

  private dropScratchDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
    this.scratchDirs.delete(dir);
  }

  snapshotNative(checkpointId: number, maxParallelism: number): NativeSnapshotMaterializer | undefined {
    const keyGroups = this.opts.nativeCheckpoints;
    if (!keyGroups) return undefined;
    this.checkLayout(maxParallelism);
    this.flush();
    const db = this.rdb;
    const staged = this.scratchDir(`chk-${checkpointId}`);
    // table files some version named before the links: complete, so later checkpoints may
    // reference them (see uploadedFilesOf)
    const live = this.liveTables();
    const meta = takeLocalCheckpoint(
      this.opts.directory,
      staged,
      {
        checkpointId,
        maxParallelism,
        sequence: String(db.sequence),
        states: [...this.metas.values()].map((m) => [m.name, m.kind]),
      },
      () => db.getProperty('rocksdb.current-super-version-number'),
    );
    const previous = this.uploadedFiles;
    let called = false;
    return (write) => {
      if (called) throw new Error('A snapshot can be materialized only once');
      called = true;
      const p = uploadNativeCheckpoint({
        staged,
        meta,
        checkpointId,
        keyGroups,
        previous,
        write,
        isClosed: this.isClosed,
      })
        .then((handle) => {
          this.pendingFiles.set(checkpointId, uploadedFilesOf(handle, live));
          return handle;
        })
        .finally(() => {
          this.dropScratchDir(staged);
          this.snapshots.delete(p);
        });
      this.snapshots.add(p);
      return p;
    };
  }

  async restoreNative(
    handles: RocksDBNativeKeyedHandle[],
    range: KeyGroupRange,
    read: (f: RocksDBFileHandle) => Promise<Buffer>,
    own: boolean,
  ): Promise<void> {
    const only = handles.length === 1 ? handles[0]! : undefined;
    if (
      only &&
      only.keyGroups[0] === range.start &&
      only.keyGroups[1] === range.end &&
      !this.idConflict(only.states, 'the native RocksDB checkpoint')
    ) {
      // the same key groups: the database itself, opened where it stood
      const dbDir = this.opts.directory;
      await this.db?.close();
      this.db = undefined;
      rmSync(dbDir, { recursive: true, force: true });
      await downloadNativeCheckpoint(only, dbDir, read);
      this.db = await openNative(dbDir, this.opts, only);
      for (const [name, kind] of only.states) this.register(name, kind);
      this.replacedDatabase();
      if (own) this.uploadedFiles = uploadedFilesOf(only, this.liveTables());
      return;
    }
    // rescaled (or states registered first with other ids): the rows of this subtask's key
    // groups, their state ids mapped to this backend's
    this.flush();
    for (const h of handles) {
      const first = Math.max(range.start, h.keyGroups[0]);
      const last = Math.min(range.end, h.keyGroups[1]);
      if (first > last) continue;
      const ids = h.states.map(([name, kind]) => this.register(name, kind).id);
      const dir = this.scratchDir('restore');
      try {
        await downloadNativeCheckpoint(h, dir, read);
        const src = await openNative(dir, RECOVERY_DB, h);
        try {
          copyRows(src, this.rdb, first, last, ids);
        } finally {
          await src.close().catch(() => {});
        }
      } finally {
        this.dropScratchDir(dir);
      }
    }
    this.replacedDatabase();
  }

  /** The local checkpoint of a completed checkpoint gets its recovered form, off the record path. */
  private recoverLocal(root: string, checkpointId: number): void {
    const dir = localCheckpointDir(root, checkpointId);
    const meta = readLocalCheckpoint(dir);
    if (meta === undefined || typeof meta === 'string' || this.closed) return;
    // a failure leaves the copy as it was taken, which a restore replays instead. Disposal
    // does not wait for it: it works on a database of its own, and a job canceled for a
    // restart would otherwise wait for its log replay (about 0.2 s at 10M keys) before the
    // restart could begin; a restore uses the recovered form only once it is renamed complete
    void recoverLocalCheckpoint(dir, meta, (d) => openRocksDB(d, RECOVERY_DB, true)).catch(() => {});
  }

  /** Checkpoint n completed: its chains are what the next checkpoint builds on. */
  notifyCheckpointComplete(checkpointId: number): void {
    const root = this.opts.localCheckpoints;
    // the older local checkpoints go once this one's is kept (a savepoint has none)
    if (root !== undefined && existsSync(localCheckpointDir(root, checkpointId))) {
      dropLocalCheckpoints(root, (id) => id < checkpointId);
      this.recoverLocal(root, checkpointId);
    }
    const files = this.pendingFiles.get(checkpointId);
    if (files) {
      this.uploadedFiles = files;
      for (const id of this.pendingFiles.keys()) if (id <= checkpointId) this.pendingFiles.delete(id);
    }
    if (!this.incremental || checkpointId <= this.lastCompleted) return;
    const chains = this.pendingChains.get(checkpointId);
    if (!chains) return; // not an incremental checkpoint of this backend (a savepoint, or taken before a restore)
    this.lastCompleted = checkpointId;
    this.base = chains;
    this.changes.completed(checkpointId);
    for (const id of this.pendingChains.keys()) if (id <= checkpointId) this.pendingChains.delete(id);
  }

  /** Checkpoint n was aborted: its changes stay to be uploaded by the next one. */
  notifyCheckpointAborted(checkpointId: number): void {
    const root = this.opts.localCheckpoints;
    if (root !== undefined) dropLocalCheckpoints(root, (id) => id === checkpointId);
    this.pendingChains.delete(checkpointId);
    this.pendingFiles.delete(checkpointId);
  }

  /**
   * After restoring an incremental checkpoint of this job: its chains (of this subtask's key
   * groups) become the base of the next checkpoint, which uploads only what changes from now.
   * A streamed full snapshot's files live in its checkpoint's directory, which goes when that
   * checkpoint is subsumed: nothing may build on them, so the next checkpoint is full.
   */
  adoptRestoredChains(
    checkpointId: number,
    handles: IncrementalKeyedHandle[],
    inRange: (kg: number) => boolean,
  ): void {
    if (!this.incremental) return;
    if (handles.some((h) => h.files.some((f) => !f.path.startsWith('../shared/')))) return;
    this.base = restoredChains(handles, inRange);
    this.lastCompleted = checkpointId;
    this.changes.reset();
  }

  /** Applies a delta batch of an incremental checkpoint (see DeltaOp), after the chain's earlier links. */
  restoreDelta(kinds: Record<string, string>, ops: unknown[]): void {
    this.restoring((batch) => {
      for (const op of ops as Array<[number, string, NK, unknown?, unknown?]>) {
        const [code, name, nk] = op;
        const meta = this.restoredState(kinds, name);
        const kind = meta.kind;
        if (kind === 'timers') {
          // [MAP_PUT | MAP_REMOVE, name, key, namespace, timestamp] (see deltaBatch)
          const key = timerKeyOf(meta.id, this.opts.maxParallelism, op[4] as number, nk, op[3] as NK);
          if (code === DeltaOp.MAP_PUT) batch._put(key, EMPTY, NO_OPTIONS);
          else if (code === DeltaOp.MAP_REMOVE) batch._del(key, NO_OPTIONS);
          else throw new Error(`Unexpected operation ${String(code)} on timers '${name}' in a delta`);
          continue;
        }
        const prefix = this.prefix(meta, nk);
        if (code === DeltaOp.PUT)
          batch._put(prefix, kind === 'list' ? listFromArrayBytes(pack(op[3])) : pack(op[3]), NO_OPTIONS);
        else if (code === DeltaOp.MAP_PUT)
          batch._put(Buffer.concat([prefix, pack(op[3])]), pack(op[4]), NO_OPTIONS);
        else if (code === DeltaOp.MAP_REMOVE) batch._del(Buffer.concat([prefix, pack(op[3])]), NO_OPTIONS);
        else if (code === DeltaOp.DELETE_KEY) {
          if (kind === 'map' || kind === 'namespaced')
            for (const [k] of scanPrefix(this.rdb, prefix)) batch._del(k, NO_OPTIONS);
          else batch._del(prefix, NO_OPTIONS);
        } else throw new Error(`Unknown operation ${String(code)} in a delta of incremental keyed state`);
      }
    });
  }

  /** Writes entries of a canonical snapshot (one key group's batch) into RocksDB. */
  restoreEntries(kinds: Record<string, string>, entries: unknown[]): void {
    this.restoring((batch) => {
      for (const e of entries) this.restoreEntry(batch, kinds, e as unknown[]);
    });
  }

  /** restoreEntries from the batch's bytes: values go into RocksDB as the snapshot holds them (see restore-batches.ts). */
  restoreEntriesBytes(kinds: Record<string, string>, bytes: Buffer): void {
    const target = {
      state: (name: string) => this.restoredState(kinds, name),
      entry: (batch: RocksBatch, e: unknown[]) => this.restoreEntry(batch, kinds, e),
    };
    this.restoring((batch) =>
      restoreBatchBytes(bytes, batch, target, this.opts.maxParallelism, this.scratch),
    );
  }

  /** A restore's writes: buffered state and caches go first, timer queues read RocksDB again after. */
  private restoring(fill: (batch: RocksBatch) => void): void {
    this.flush();
    this.dropCache();
    writeBatch(this.rdb, fill);
    for (const b of this.writeBuffers) b.restored?.();
  }

  /** The state a snapshot names, registered with the kind the snapshot gives it. */
  private restoredState(kinds: Record<string, string>, name: string): StateMeta {
    const kind = kinds[name];
    if (!kind) throw new Error(`Restored state '${name}' has no kind in the snapshot`);
    return this.register(name, kind);
  }

  private restoreEntry(batch: RocksBatch, kinds: Record<string, string>, e: unknown[]): void {
    const [name, nk, value, namespace] = e as [string, NK, unknown, NK?];
    const meta = this.restoredState(kinds, name);
    const kind = meta.kind;
    if (kind === 'namespaced') {
      batch._put(Buffer.concat([this.prefix(meta, nk), pack(namespace)]), pack(value), NO_OPTIONS);
    } else if (kind === 'timers') {
      // [name, key, timestamp, namespace]
      batch._put(
        timerKeyOf(meta.id, this.opts.maxParallelism, value as number, nk, namespace!),
        EMPTY,
        NO_OPTIONS,
      );
    } else if (kind === 'map') {
      const prefix = this.prefix(meta, nk);
      for (const [uk, uv] of value as Array<[unknown, unknown]>)
        batch._put(Buffer.concat([prefix, pack(uk)]), pack(uv), NO_OPTIONS);
    } else if (kind === 'list') {
      batch._put(this.prefix(meta, nk), listFromArrayBytes(pack(value)), NO_OPTIONS);
    } else {
      batch._put(this.prefix(meta, nk), pack(value), NO_OPTIONS);
    }
  }

  numKeys(): number {
    this.flush();
    const keys = new Set<unknown>();
    const timers = new Set([...this.metas.values()].filter((m) => m.kind === 'timers').map((m) => m.id));
    const it = this.rdb.iterator(ITERATOR_OPTIONS);
    try {
      for (;;) {
        const { rows, finished } = it._nextvSync(1000, NO_OPTIONS);
        for (let j = 0; j < rows.length; j += 2)
          if (!timers.has(stateIdOf(rows[j]!)))
            keys.add(decodeValues(rows[j]!.subarray(KEY_HEADER_BYTES))[0]);
        if (finished) break;
      }
    } finally {
      void it.close();
    }
    return keys.size;
  }
}
