import type {
  AggregatingState,
  AggregatingStateDescriptor,
  AppendingState,
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
  UnsupportedValueError,
  assignNormalizedKeyToKeyGroup,
  decodeValue,
  decodeValues,
  normalizeKey,
  valueEncoder,
} from '@weir/core';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type {
  IncrementalSnapshotMaterializer,
  KeyedStateBackend,
  KeyedStateSnapshot,
  KeyedStateSnapshotMaterializer,
  SharedFileWriter,
} from './keyed-state-backend.js';
import {
  DeltaOp,
  linksByGroup,
  type ChainLink,
  type IncrementalKeyedHandle,
  type ResolvedLink,
  type SharedFileHandle,
} from './incremental-snapshot.js';

/*
 * The binding is @nxtedition/rocksdb (chosen by measurement, see bench/README.md): the only one
 * with synchronous reads, writes and iteration, which the synchronous state API needs. It is a
 * CommonJS native module, loaded on first use so heap-only tasks never load it.
 */
interface RocksIterator {
  nextv(size: number): Promise<Array<[Buffer, Buffer]>>;
  _nextvSync(size: number, options: object): { rows: Buffer[]; finished: boolean };
  /** flat rows [k0, v0, k1, v1, ...], read on libuv's pool; no [k, v] pair per row as nextv() makes */
  _nextvAsync(size: number, options: object): Promise<{ rows: Buffer[]; finished: boolean }>;
  _seekSync(target: Buffer): void;
  close(): Promise<void>;
}
interface RocksBatch {
  _put(key: Buffer, value: Buffer, options: object): void;
  _del(key: Buffer, options: object): void;
  _writeSync(options: object): void;
  _closeSync(): void;
}
interface RocksDB {
  status: string;
  open(options: object): Promise<void>;
  close(): Promise<void>;
  batch(): RocksBatch;
  iterator(options: object): RocksIterator;
  _getManySync(keys: Buffer[], options: object): Array<Buffer | undefined>;
}
type RocksLevelClass = new (location: string, options: object) => RocksDB;

let rocksLevel: RocksLevelClass | undefined;
function loadBinding(): RocksLevelClass {
  rocksLevel ??= (createRequire(import.meta.url)('@nxtedition/rocksdb') as { RocksLevel: RocksLevelClass })
    .RocksLevel;
  return rocksLevel;
}

export interface RocksDBKeyedStateBackendOptions {
  /** the database directory; must not exist yet (a fresh one per task attempt) */
  directory: string;
  maxParallelism: number;
  blockCacheSize: number;
  writeBufferSize: number;
  /** written entries held in memory before a batched write (default 50,000) */
  maxBufferedEntries?: number;
  /** read entries cached in memory (default 100,000) */
  maxCachedEntries?: number;
  /** incremental checkpoints: track what changed since the last completed checkpoint */
  incremental?: boolean;
  /** changed keys remembered individually before the tracking gives up and the next checkpoint is full (default 200,000) */
  maxTrackedKeys?: number;
  /** a shared file of an incremental checkpoint is closed when it reaches this size (default 64 MiB) */
  maxSharedFileBytes?: number;
  /** a key group's chain is rewritten in full at the latest when it has this many links (default 64; each group's own limit lies between half of it and it) */
  maxChainLength?: number;
}

/** The codec's bytes of a value in a Buffer of their own (see core/codec.ts). */
function pack(value: unknown): Buffer {
  const n = valueEncoder.encode(value);
  return Buffer.from(valueEncoder.buffer.subarray(0, n));
}

function isImmutable(v: unknown): boolean {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint';
}

/**
 * What the write buffer and the read cache hold for a value: a string, number, boolean or
 * bigint as it is (nothing can change it), anything else as its bytes, decoded afresh on every
 * read. A user value is never a Buffer here (objects are encoded), so a Buffer means bytes.
 */
function toHeld(v: unknown): unknown {
  return isImmutable(v) ? v : pack(v);
}

/** toHeld, with the state's name in the error when the codec refuses the value. */
function held(meta: StateMeta, v: unknown, what: 'key' | 'value' = 'value'): unknown {
  try {
    return what === 'key' ? pack(v) : toHeld(v);
  } catch (e) {
    if (e instanceof UnsupportedValueError)
      throw new Error(
        e.describe(what === 'key' ? 'the map key' : 'the value', `Cannot store keyed state '${meta.name}'`),
      );
    throw e;
  }
}

function fromHeld(v: unknown): unknown {
  return Buffer.isBuffer(v) ? decodeValue(v) : v;
}

function heldBytes(v: unknown): Buffer {
  return Buffer.isBuffer(v) ? v : pack(v);
}

/** Rows read from RocksDB per call while snapshotting (measured: see bench/README.md). */
const SCAN_BATCH = 16_384;

/** What changed since a point in time, per key group: RocksDB keys ('k' + key) and cleared map prefixes ('p' + prefix), latin1. */
interface ChangeSegment {
  /** the checkpoint whose synchronous part froze this segment (0 while it is the current one) */
  id: number;
  /** everything may have changed (at the start, after a restore that is not reused, or when tracking overflowed) */
  all: boolean;
  keys: Map<number, Set<string>>;
  count: number;
}

/** One link of a key group's chain as the backend keeps it. */
type Link = ResolvedLink;

interface Chains {
  groups: Map<number, Link[]>;
  /** entries of the group's last full batch (-1 unknown), bytes of it and of its deltas */
  stats: Map<number, { entries: number; fullBytes: number; deltaBytes: number }>;
}

function emptySegment(all: boolean): ChangeSegment {
  return { id: 0, all, keys: new Map(), count: 0 };
}

/** The first key after every key of key group g (for an iterator's upper bound). */
function groupBound(g: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(g, 0);
  return b;
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

const DELETED = Symbol('deleted');
const ABSENT = Symbol('absent');
const NO_OPTIONS = {};
const DISPOSED = 'RocksDB state backend used after it was disposed';
const ITERATOR_OPTIONS = { keyEncoding: 'buffer', valueEncoding: 'buffer' };

type NK = string | number;

const ENTRY_HEADER = Buffer.from([0x93]); // msgpack fixarray of 3: [state name, key, value]
const PAIR_HEADER = Buffer.from([0x92]); // fixarray of 2: [user key, user value]
// delta operations (see DeltaOp): a fixarray header and the op code
const OP_PUT = Buffer.from([0x94, DeltaOp.PUT]);
const OP_DELETE_KEY = Buffer.from([0x93, DeltaOp.DELETE_KEY]);
const OP_MAP_PUT = Buffer.from([0x95, DeltaOp.MAP_PUT]);
const OP_MAP_REMOVE = Buffer.from([0x94, DeltaOp.MAP_REMOVE]);

/** The handle of a checkpoint's chains: every file they reference, once, and the links by index. */
function chainsToHandle(
  chains: { groups: Map<number, ResolvedLink[]> },
  kinds: Record<string, string>,
  uploaded: number,
): IncrementalKeyedHandle {
  const files: SharedFileHandle[] = [];
  const indexOf = new Map<string, number>();
  const groups: Record<string, ChainLink[]> = {};
  let fullSize = 0;
  for (const [g, links] of [...chains.groups].sort((a, b) => a[0] - b[0])) {
    groups[g] = links.map((l) => {
      let i = indexOf.get(l.file.path);
      if (i === undefined) {
        indexOf.set(l.file.path, (i = files.length));
        files.push({
          path: l.file.path,
          size: l.file.size,
          sha256: l.file.sha256,
          checkpointId: l.file.checkpointId,
        });
      }
      fullSize += l.length;
      return [i, l.offset, l.length, l.full ? 1 : 0];
    });
  }
  return { format: 'incremental', kinds, files, groups, checkpointedSize: uploaded, fullSize };
}

function array32(n: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Length of the msgpack item (a normalized key: a string or a number) starting at `at`. */
function msgpackItemLength(b: Buffer, at: number): number {
  const t = b[at]!;
  if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return 1;
  if (t >= 0xa0 && t <= 0xbf) return 1 + (t & 0x1f);
  switch (t) {
    case 0xd9:
      return 2 + b[at + 1]!;
    case 0xda:
      return 3 + b.readUInt16BE(at + 1);
    case 0xdb:
      return 5 + b.readUInt32BE(at + 1);
    case 0xcc:
    case 0xd0:
      return 2;
    case 0xcd:
    case 0xd1:
      return 3;
    case 0xce:
    case 0xd2:
    case 0xca:
      return 5;
    case 0xcf:
    case 0xd3:
    case 0xcb:
      return 9;
    default:
      throw new Error(`Unexpected msgpack type 0x${t.toString(16)} in a RocksDB state key`);
  }
}
interface StateMeta {
  name: string;
  kind: string;
  id: number;
  /** written, not yet in RocksDB: normalized key -> the value as held (see toHeld) or DELETED */
  dirty: Map<NK, unknown>;
  /** read cache: normalized key -> the value as held (see toHeld) or ABSENT */
  clean: Map<NK, unknown>;
  /** map state only: normalized key -> normalized user key -> [user key's bytes, value as held or DELETED] */
  mapDirty: Map<NK, Map<NK, [unknown, unknown]>>;
}

/**
 * Keyed state in RocksDB (one database per task attempt, on local disk), with the heap
 * backend's synchronous semantics.
 *
 * Layout of a RocksDB key: key group (2 bytes, big-endian), state id (2 bytes), the
 * normalized key (msgpack, self-delimiting), and for map state the user key (msgpack); so
 * one key group, one state of a key group, or one key's map can each be scanned alone.
 * Values are msgpack.
 *
 * In front of RocksDB: a write buffer (Map of dirty entries per state, written in one batch
 * before each snapshot and whenever it reaches maxBufferedEntries) and a read cache (dropped
 * whole when it reaches maxCachedEntries), both holding objects as serialized bytes (strings,
 * numbers, booleans and bigints as they are). As in Flink's RocksDB backend, update()
 * serializes at once and every read decodes a fresh copy, so a change to a read value is state
 * only after update(), whatever the cache holds.
 */
export class RocksDBKeyedStateBackend implements KeyedStateBackend {
  readonly type = 'rocksdb' as const;
  private db: RocksDB | undefined;
  private closed = false;
  private currentKey: unknown;
  private nk: NK = '';
  private readonly metas = new Map<string, StateMeta>();
  private readonly byId = new Map<number, StateMeta>();
  private readonly states = new Map<string, State>();
  private dirtyCount = 0;
  private cleanCount = 0;
  private readonly maxBuffered: number;
  private readonly maxCached: number;
  private readonly snapshots = new Set<Promise<unknown>>();
  // ---- incremental checkpoints
  private readonly incremental: boolean;
  /** changes since the synchronous part of the last incremental snapshot; starts as "everything" */
  private tracking: ChangeSegment;
  /** segments frozen by snapshots whose checkpoints have not completed yet, oldest first */
  private frozen: ChangeSegment[] = [];
  /** the chains of the last completed checkpoint: what the next one builds on */
  private base: Chains = { groups: new Map(), stats: new Map() };
  private readonly pendingChains = new Map<number, Chains>();
  private lastCompleted = 0;

  constructor(private readonly opts: RocksDBKeyedStateBackendOptions) {
    this.maxBuffered = opts.maxBufferedEntries ?? 50_000;
    this.maxCached = opts.maxCachedEntries ?? 100_000;
    this.incremental = opts.incremental ?? false;
    this.tracking = emptySegment(true);
  }

  get directory(): string {
    return this.opts.directory;
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
    const RocksLevel = loadBinding();
    const db = new RocksLevel(dir, {});
    try {
      await db.open({
        createIfMissing: true,
        errorIfExists: true,
        cacheSize: this.opts.blockCacheSize,
        // 'level' compaction is what lets the memtable size be set: write_buffer_size = budget / 4
        compaction: 'level',
        memtableMemoryBudget: this.opts.writeBufferSize * 4,
        compression: false,
        walCompression: false,
        parallelism: 1,
      });
    } catch (e) {
      const cause = (e as Error & { cause?: Error }).cause?.message;
      throw new Error(
        `Cannot open RocksDB state in ${dir}: ${(e as Error).message}${cause ? ` (${cause})` : ''}`,
      );
    }
    this.db = db;
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // running snapshots notice `closed` at their next batch and give up
    await Promise.allSettled([...this.snapshots]);
    const db = this.db;
    this.db = undefined;
    if (db) await db.close().catch(() => {});
    try {
      rmSync(this.opts.directory, { recursive: true, force: true });
    } catch {
      /* it was never created (an unusable local directory) */
    }
  }

  private get rdb(): RocksDB {
    if (!this.db) throw new Error(this.closed ? DISPOSED : 'RocksDB state backend used before open()');
    return this.db;
  }

  setCurrentKey(key: unknown): void {
    this.currentKey = key;
    this.nk = normalizeKey(key);
  }

  getCurrentKey(): unknown {
    return this.currentKey;
  }

  // ---- keys and values

  /** key group, state id and normalized key: the prefix of every RocksDB key of this key's state */
  private prefix(meta: StateMeta, nk: NK): Buffer {
    const n = valueEncoder.encode(nk);
    const out = Buffer.allocUnsafe(4 + n);
    out.writeUInt16BE(assignNormalizedKeyToKeyGroup(nk, this.opts.maxParallelism), 0);
    out.writeUInt16BE(meta.id, 2);
    valueEncoder.buffer.copy(out, 4, 0, n);
    return out;
  }

  private mapKey(meta: StateMeta, nk: NK, userKey: unknown): Buffer {
    return Buffer.concat([this.prefix(meta, nk), pack(userKey)]);
  }

  /** The stored bytes of a RocksDB key (undefined when absent). */
  private getBytes(key: Buffer): Buffer | undefined {
    const v = this.rdb._getManySync([key], NO_OPTIONS)[0];
    return v === undefined || v === null ? undefined : v;
  }

  /** Synchronous scan of every RocksDB key starting with prefix. */
  private scan(prefix: Buffer, limit = Infinity): Array<[Buffer, Buffer]> {
    // the first key after every key starting with prefix: drop trailing 0xff bytes, add one to the last
    let i = prefix.length - 1;
    while (i >= 0 && prefix[i] === 0xff) i--;
    const bounds: { gte: Buffer; lt?: Buffer } = { gte: prefix };
    if (i >= 0) {
      bounds.lt = Buffer.from(prefix.subarray(0, i + 1));
      bounds.lt[i]! += 1;
    }
    const it = this.rdb.iterator({ ...ITERATOR_OPTIONS, ...bounds });
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
      clean: new Map(),
      mapDirty: new Map(),
    };
    this.metas.set(name, meta);
    this.byId.set(meta.id, meta);
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
    let v = meta.dirty.get(nk);
    if (v !== undefined) return v === DELETED ? undefined : fromHeld(v);
    v = meta.clean.get(nk);
    if (v !== undefined) return v === ABSENT ? undefined : fromHeld(v);
    const bytes = this.getBytes(this.prefix(meta, nk));
    if (this.cleanCount >= this.maxCached) this.dropCache();
    const value = bytes && decodeValue(bytes);
    meta.clean.set(nk, bytes === undefined ? ABSENT : isImmutable(value) ? value : bytes);
    this.cleanCount++;
    return value;
  }

  /** Serializes now: a later change to the object passed to update() is not state (as in Flink's RocksDB backend). */
  private write(meta: StateMeta, v: unknown): void {
    if (this.closed) throw new Error(DISPOSED);
    const before = meta.dirty.size;
    meta.dirty.set(this.nk, v === DELETED ? DELETED : held(meta, v));
    if (meta.dirty.size > before && ++this.dirtyCount >= this.maxBuffered) this.flush();
  }

  private dropCache(): void {
    for (const m of this.metas.values()) m.clean.clear();
    this.cleanCount = 0;
  }

  /** Writes the buffered entries to RocksDB in one batch; they stay readable from the cache. */
  flush(): void {
    if (this.dirtyCount === 0) return;
    const batch = this.rdb.batch();
    try {
      for (const meta of this.metas.values()) {
        for (const [nk, v] of meta.dirty) {
          const key = this.prefix(meta, nk);
          if (v === DELETED) batch._del(key, NO_OPTIONS);
          else batch._put(key, heldBytes(v), NO_OPTIONS);
          if (this.incremental) this.track(key, 'k');
          meta.clean.set(nk, v === DELETED ? ABSENT : v);
          this.cleanCount++;
        }
        meta.dirty.clear();
        for (const [nk, entries] of meta.mapDirty) {
          const prefix = this.prefix(meta, nk);
          for (const [uk, v] of entries.values()) {
            const key = Buffer.concat([prefix, uk as Buffer]);
            if (v === DELETED) batch._del(key, NO_OPTIONS);
            else batch._put(key, heldBytes(v), NO_OPTIONS);
            if (this.incremental) this.track(key, 'k');
          }
        }
        meta.mapDirty.clear();
      }
      batch._writeSync(NO_OPTIONS);
    } finally {
      batch._closeSync();
    }
    this.dirtyCount = 0;
    if (this.cleanCount > this.maxCached) this.dropCache();
  }

  /** Remembers a changed RocksDB key (or a cleared map prefix) for the next incremental checkpoint. */
  private track(key: Buffer, kind: 'k' | 'p'): void {
    const t = this.tracking;
    if (t.all) return;
    const g = key.readUInt16BE(0);
    let set = t.keys.get(g);
    if (!set) t.keys.set(g, (set = new Set()));
    const before = set.size;
    set.add(kind + key.toString('latin1'));
    if (set.size > before && ++t.count > (this.opts.maxTrackedKeys ?? 200_000)) {
      // too many to remember one by one: the next checkpoint rewrites every key group
      t.all = true;
      t.keys.clear();
      t.count = 0;
    }
  }

  getState<T>(desc: ValueStateDescriptor<T>): ValueState<T> {
    return this.cached(desc, (meta) => {
      const dflt = desc.defaultValue;
      return {
        value: () => {
          const v = this.read(meta) as T | undefined;
          return v === undefined ? dflt : v;
        },
        update: (v: T) => this.write(meta, v === undefined || v === null ? DELETED : v),
        clear: () => this.write(meta, DELETED),
      };
    });
  }

  getListState<T>(desc: ListStateDescriptor<T>): ListState<T> {
    return this.cached(desc, (meta) => {
      const list = (): T[] => (this.read(meta) as T[] | undefined) ?? [];
      return {
        get: list,
        add: (v: T) => {
          const l = list();
          l.push(v);
          this.write(meta, l);
        },
        addAll: (vs: T[]) => {
          if (vs.length === 0) return;
          const l = list();
          l.push(...vs);
          this.write(meta, l);
        },
        update: (vs: T[]) => this.write(meta, vs.length === 0 ? DELETED : [...vs]),
        clear: () => this.write(meta, DELETED),
      };
    });
  }

  private appending<IN, ACC, OUT>(
    meta: StateMeta,
    fold: (acc: ACC | undefined, v: IN) => ACC,
    result: (acc: ACC) => OUT,
  ): AppendingState<IN, OUT> {
    return {
      get: () => {
        const acc = this.read(meta) as ACC | undefined;
        return acc === undefined ? undefined : result(acc);
      },
      add: (v: IN) => this.write(meta, fold(this.read(meta) as ACC | undefined, v)),
      clear: () => this.write(meta, DELETED),
    };
  }

  getReducingState<T>(desc: ReducingStateDescriptor<T>): ReducingState<T> {
    const reduce = desc.reduceFunction;
    return this.cached(desc, (meta) =>
      this.appending<T, T, T>(
        meta,
        (acc, v) => (acc === undefined ? v : reduce(acc, v)),
        (acc) => acc,
      ),
    );
  }

  getAggregatingState<IN, ACC, OUT>(
    desc: AggregatingStateDescriptor<IN, ACC, OUT>,
  ): AggregatingState<IN, OUT> {
    const f = desc.aggregateFunction;
    return this.cached(desc, (meta) =>
      this.appending<IN, ACC, OUT>(
        meta,
        (acc, v) => f.add(v, acc === undefined ? f.createAccumulator() : acc),
        (acc) => f.getResult(acc),
      ),
    );
  }

  // ---- map state: one RocksDB entry per user key

  getMapState<UK, UV>(desc: MapStateDescriptor<UK, UV>): MapState<UK, UV> {
    return this.cached(desc, (meta) => {
      const get = (k: UK): UV | undefined => {
        const d = meta.mapDirty.get(this.nk)?.get(normalizeKey(k));
        if (d) return d[1] === DELETED ? undefined : (fromHeld(d[1]) as UV);
        const bytes = this.getBytes(this.mapKey(meta, this.nk, k));
        return bytes && (decodeValue(bytes) as UV);
      };
      const put = (k: UK, v: unknown): void => {
        let m = meta.mapDirty.get(this.nk);
        if (!m) meta.mapDirty.set(this.nk, (m = new Map()));
        const before = m.size;
        // user key and value serialized now, like update()
        const keyBytes = held(meta, k, 'key');
        m.set(normalizeKey(k), [keyBytes, v === DELETED ? DELETED : held(meta, v)]);
        if (m.size > before && ++this.dirtyCount >= this.maxBuffered) this.flush();
      };
      /** every entry of the current key's map, from RocksDB after a flush */
      const all = (): Array<[UK, UV]> => {
        this.flush();
        const prefixLength = this.prefix(meta, this.nk).length;
        return this.scan(this.prefix(meta, this.nk)).map(([k, v]) => [
          decodeValue(k.subarray(prefixLength)) as UK,
          decodeValue(v) as UV,
        ]);
      };
      return {
        get,
        put: (k: UK, v: UV) => put(k, v),
        putAll: (entries: Iterable<[UK, UV]>) => {
          for (const [k, v] of entries) put(k, v);
        },
        remove: (k: UK) => put(k, DELETED),
        contains: (k: UK) => get(k) !== undefined,
        entries: () => all(),
        keys: () => all().map((e) => e[0]),
        values: () => all().map((e) => e[1]),
        isEmpty: () => {
          this.flush();
          return this.scan(this.prefix(meta, this.nk), 1).length === 0;
        },
        clear: () => {
          this.flush();
          const prefix = this.prefix(meta, this.nk);
          const rows = this.scan(prefix);
          if (rows.length === 0) return;
          if (this.incremental) this.track(prefix, 'p');
          const batch = this.rdb.batch();
          try {
            for (const [k] of rows) batch._del(k, NO_OPTIONS);
            batch._writeSync(NO_OPTIONS);
          } finally {
            batch._closeSync();
          }
        },
      };
    });
  }

  // ---- snapshots and restore

  /** Packed state names by state id, and the kinds, as of now. */
  private stateNames(): {
    kinds: Record<string, string>;
    names: Map<number, { name: Buffer; map: boolean }>;
  } {
    const kinds: Record<string, string> = {};
    const names = new Map<number, { name: Buffer; map: boolean }>();
    for (const m of this.metas.values()) {
      kinds[m.name] = m.kind;
      names.set(m.id, { name: pack(m.name), map: m.kind === 'map' });
    }
    return { kinds, names };
  }

  /**
   * Synchronous part: write the buffer to RocksDB and open an iterator, which is a consistent
   * point-in-time view. Asynchronous part: read that view in batches (the reads run on libuv's
   * pool) and build the canonical per-key-group batches between them, while records go on.
   * Savepoints and checkpoints without incremental mode take this path.
   */
  snapshot(maxParallelism: number): KeyedStateSnapshotMaterializer {
    this.checkLayout(maxParallelism);
    this.flush();
    const it = this.rdb.iterator(ITERATOR_OPTIONS);
    const { kinds, names } = this.stateNames();
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
    names: Map<number, { name: Buffer; map: boolean }>,
  ): Promise<KeyedStateSnapshot | undefined> {
    const parts: Buffer[] = [];
    const index: Record<number, [number, number]> = {};
    let offset = 0;
    await this.scanCanonical(it, names, (group, bytes) => {
      index[group] = [offset, bytes.byteLength];
      parts.push(bytes);
      offset += bytes.byteLength;
    });
    if (parts.length === 0) return undefined;
    return { data: Buffer.concat(parts), index, kinds };
  }

  /**
   * Reads an iterator to its end and hands over one canonical batch per key group, built from
   * the stored bytes without decoding them: keys and values are already msgpack (written by the
   * same codec), so a key group's batch is an array32 header and, per entry, a 3-array of the
   * packed state name, the key's bytes and the value's bytes (map state: an array32 of
   * [user key, value] 2-arrays). It decodes exactly as encodeRecords() of the same entries would.
   */
  private async scanCanonical(
    it: RocksIterator,
    names: Map<number, { name: Buffer; map: boolean }>,
    onGroup: (group: number, bytes: Buffer, entries: number) => void | Promise<void>,
  ): Promise<void> {
    let group = -1;
    let groupParts: Buffer[] = [];
    let groupEntries = 0;
    // the map entry being gathered: its state id and key bytes, and its [user key, value] pairs
    let mapId = -1;
    let mapKey: Buffer | undefined;
    let mapParts: Buffer[] = [];
    let mapEntries = 0;
    const endMap = (): void => {
      if (mapKey) groupParts.push(Buffer.concat([array32(mapEntries), ...mapParts]));
      mapId = -1;
      mapKey = undefined;
      mapParts = [];
      mapEntries = 0;
    };
    const endGroup = async (): Promise<void> => {
      endMap();
      if (groupEntries > 0)
        await onGroup(group, Buffer.concat([array32(groupEntries), ...groupParts]), groupEntries);
      groupParts = [];
      groupEntries = 0;
    };
    for (;;) {
      if (this.closed) throw new Error('The task ended while its RocksDB state was being snapshotted');
      // flat rows and large batches: fewer round trips to libuv's pool and no pair array per row
      const { rows, finished } = await it._nextvAsync(SCAN_BATCH, NO_OPTIONS);
      for (let j = 0; j < rows.length; j += 2) {
        const k = rows[j]!;
        const v = rows[j + 1]!;
        const g = k.readUInt16BE(0);
        if (g !== group) {
          await endGroup();
          group = g;
        }
        const id = k.readUInt16BE(2);
        const state = names.get(id);
        if (!state) throw new Error(`RocksDB state has an entry of unknown state id ${id}`);
        if (state.map) {
          const keyEnd = 4 + msgpackItemLength(k, 4);
          const key = k.subarray(4, keyEnd);
          if (id !== mapId || !mapKey || !mapKey.equals(key)) {
            endMap();
            mapId = id;
            mapKey = key;
            groupParts.push(ENTRY_HEADER, state.name, key);
            groupEntries++;
          }
          mapParts.push(PAIR_HEADER, k.subarray(keyEnd), v);
          mapEntries++;
        } else {
          endMap();
          groupParts.push(ENTRY_HEADER, state.name, k.subarray(4), v);
          groupEntries++;
        }
      }
      if (finished || rows.length === 0) break;
    }
    await endGroup();
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
    const seg = this.tracking;
    seg.id = checkpointId;
    this.frozen.push(seg);
    this.tracking = emptySegment(false);
    // everything that changed since the last completed checkpoint: the segments not covered by it
    let all = false;
    const changed = new Map<number, Set<string>>();
    for (const s of this.frozen) {
      if (s.all) all = true;
      if (all) continue;
      for (const [g, keys] of s.keys) {
        const have = changed.get(g);
        if (!have) changed.set(g, keys);
        else changed.set(g, new Set([...have, ...keys]));
      }
    }
    const base = this.base;
    const fullGroups: number[] = [];
    const deltaGroups: Array<[number, Set<string>]> = [];
    if (!all) {
      // chains are capped between half the maximum and the maximum, staggered by key group, so
      // the key groups written whole by one checkpoint are not all rewritten again by one later
      const half = Math.ceil((this.opts.maxChainLength ?? 64) / 2);
      for (const [g, keys] of [...changed].sort((a, b) => a[0] - b[0])) {
        const st = base.stats.get(g);
        const chain = base.groups.get(g) ?? [];
        const maxChain = half + ((Math.imul(g + 1, 0x9e3779b1) >>> 0) % half);
        // rewrite a key group whole when most of it changed or its deltas outgrew its full batch
        const rewrite =
          st !== undefined &&
          ((st.entries > 0 && keys.size * 2 >= st.entries) ||
            st.deltaBytes > st.fullBytes ||
            chain.length >= maxChain);
        if (rewrite) fullGroups.push(g);
        else deltaGroups.push([g, keys]);
      }
    }
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
      const p = this.materializeIncremental(
        checkpointId,
        write,
        all,
        base,
        scans,
        deltaView,
        deltaGroups,
        kinds,
        names,
      ).finally(() =>
        Promise.all(
          [...scans.map(([, it]) => it), ...(deltaView ? [deltaView] : [])].map((it) =>
            it.close().catch(() => {}),
          ),
        ).then(() => this.snapshots.delete(p)),
      );
      this.snapshots.add(p);
      return p;
    };
  }

  private async materializeIncremental(
    checkpointId: number,
    write: SharedFileWriter,
    all: boolean,
    base: Chains,
    scans: Array<[number, RocksIterator]>,
    deltaView: RocksIterator | undefined,
    deltaGroups: Array<[number, Set<string>]>,
    kinds: Record<string, string>,
    names: Map<number, { name: Buffer; map: boolean }>,
  ): Promise<IncrementalKeyedHandle | undefined> {
    const maxFile = this.opts.maxSharedFileBytes ?? 64 * 1024 * 1024;
    const next: Chains = all
      ? { groups: new Map(), stats: new Map() }
      : { groups: new Map(base.groups), stats: new Map(base.stats) };
    // the shared file being filled: its batches, and the links that point into it
    let parts: Buffer[] = [];
    let size = 0;
    let file: SharedFileHandle = { path: '', size: 0, sha256: '', checkpointId };
    let fileNo = 0;
    let uploaded = 0;
    const closeFile = async (): Promise<void> => {
      if (size === 0) return;
      const h = await write(`${fileNo++}`, Buffer.concat(parts));
      Object.assign(file, h, { checkpointId });
      uploaded += h.size;
      parts = [];
      size = 0;
      file = { path: '', size: 0, sha256: '', checkpointId };
    };
    const add = async (bytes: Buffer, full: boolean): Promise<Link> => {
      const link: Link = { file, offset: size, length: bytes.byteLength, full };
      parts.push(bytes);
      size += bytes.byteLength;
      if (size >= maxFile) await closeFile();
      return link;
    };
    for (const [g, it] of scans) {
      let seen = false;
      await this.scanCanonical(it, names, async (group, bytes, entries) => {
        seen = true;
        next.groups.set(group, [await add(bytes, true)]);
        next.stats.set(group, { entries, fullBytes: bytes.byteLength, deltaBytes: 0 });
      });
      // a key group that is empty now has no chain
      if (!seen && g >= 0) {
        next.groups.delete(g);
        next.stats.delete(g);
      }
    }
    let done = 0;
    for (const [g, keys] of deltaGroups) {
      const { bytes, ops } = this.deltaBatch(deltaView!, keys, names);
      if (ops > 0) {
        next.groups.set(g, [...(base.groups.get(g) ?? []), await add(bytes, false)]);
        const st = base.stats.get(g) ?? { entries: -1, fullBytes: 0, deltaBytes: 0 };
        next.stats.set(g, { ...st, deltaBytes: st.deltaBytes + bytes.byteLength });
      }
      done += keys.size;
      if (done >= 2048) {
        // let records through between chunks of point reads
        done = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.closed) throw new Error('The task ended while its RocksDB state was being snapshotted');
      }
    }
    await closeFile();
    this.pendingChains.set(checkpointId, next);
    if (next.groups.size === 0) return undefined;
    return chainsToHandle(next, kinds, uploaded);
  }

  /**
   * The delta of one key group: for every changed key its state in the snapshot's view (a put,
   * or a removal when it is gone); for a cleared map, a removal of the whole key and its entries
   * as they are now. Built from the stored bytes, like the canonical batches.
   */
  private deltaBatch(
    view: RocksIterator,
    keys: Set<string>,
    names: Map<number, { name: Buffer; map: boolean }>,
  ): { bytes: Buffer; ops: number } {
    const parts: Buffer[] = [];
    let ops = 0;
    const stateOf = (k: Buffer): { name: Buffer; map: boolean } => {
      const id = k.readUInt16BE(2);
      const state = names.get(id);
      if (!state) throw new Error(`RocksDB state has an entry of unknown state id ${id}`);
      return state;
    };
    for (const tracked of keys) {
      const key = Buffer.from(tracked.slice(1), 'latin1');
      const state = stateOf(key);
      view._seekSync(key);
      if (tracked[0] === 'p') {
        // a cleared map: drop the key, then put back what the map holds now
        parts.push(OP_DELETE_KEY, state.name, key.subarray(4));
        ops++;
        for (;;) {
          const { rows, finished } = view._nextvSync(256, NO_OPTIONS);
          let j = 0;
          for (; j < rows.length; j += 2) {
            const k = rows[j]!;
            if (k.length < key.length || k.compare(key, 0, key.length, 0, key.length) !== 0) break;
            parts.push(OP_MAP_PUT, state.name, key.subarray(4), k.subarray(key.length), rows[j + 1]!);
            ops++;
          }
          if (finished || j < rows.length || rows.length === 0) break;
        }
        continue;
      }
      const { rows } = view._nextvSync(1, NO_OPTIONS);
      const found = rows.length > 0 && rows[0]!.equals(key);
      if (state.map) {
        const keyEnd = 4 + msgpackItemLength(key, 4);
        if (found)
          parts.push(OP_MAP_PUT, state.name, key.subarray(4, keyEnd), key.subarray(keyEnd), rows[1]!);
        else parts.push(OP_MAP_REMOVE, state.name, key.subarray(4, keyEnd), key.subarray(keyEnd));
      } else if (found) {
        parts.push(OP_PUT, state.name, key.subarray(4), rows[1]!);
      } else {
        parts.push(OP_DELETE_KEY, state.name, key.subarray(4));
      }
      ops++;
    }
    return { bytes: Buffer.concat([array32(ops), ...parts]), ops };
  }

  /** Checkpoint n completed: its chains are what the next checkpoint builds on. */
  notifyCheckpointComplete(checkpointId: number): void {
    if (!this.incremental || checkpointId <= this.lastCompleted) return;
    const chains = this.pendingChains.get(checkpointId);
    if (!chains) return; // not an incremental checkpoint of this backend (a savepoint, or taken before a restore)
    this.lastCompleted = checkpointId;
    this.base = chains;
    this.frozen = this.frozen.filter((s) => s.id > checkpointId);
    for (const id of this.pendingChains.keys()) if (id <= checkpointId) this.pendingChains.delete(id);
  }

  /** Checkpoint n was aborted: its changes stay to be uploaded by the next one. */
  notifyCheckpointAborted(checkpointId: number): void {
    this.pendingChains.delete(checkpointId);
  }

  /**
   * After restoring an incremental checkpoint of this job: its chains (of this subtask's key
   * groups) become the base of the next checkpoint, which uploads only what changes from now.
   */
  adoptRestoredChains(
    checkpointId: number,
    handles: IncrementalKeyedHandle[],
    inRange: (kg: number) => boolean,
  ): void {
    if (!this.incremental) return;
    const groups = linksByGroup(handles, inRange);
    const stats = new Map<number, { entries: number; fullBytes: number; deltaBytes: number }>();
    for (const [g, links] of groups) {
      let fullBytes = 0;
      let deltaBytes = 0;
      for (const l of links) {
        if (l.full) fullBytes += l.length;
        else deltaBytes += l.length;
      }
      stats.set(g, { entries: -1, fullBytes, deltaBytes });
    }
    this.base = { groups, stats };
    this.lastCompleted = checkpointId;
    this.tracking = emptySegment(false);
    this.frozen = [];
  }

  /** Applies a delta batch of an incremental checkpoint (see DeltaOp), after the chain's earlier links. */
  restoreDelta(kinds: Record<string, string>, ops: unknown[]): void {
    this.flush();
    this.dropCache();
    const batch = this.rdb.batch();
    try {
      for (const op of ops as Array<[number, string, NK, unknown?, unknown?]>) {
        const [code, name, nk] = op;
        const kind = kinds[name];
        if (!kind) throw new Error(`Restored state '${name}' has no kind in the snapshot`);
        const meta = this.register(name, kind);
        const prefix = this.prefix(meta, nk);
        if (code === DeltaOp.PUT) batch._put(prefix, pack(op[3]), NO_OPTIONS);
        else if (code === DeltaOp.MAP_PUT)
          batch._put(Buffer.concat([prefix, pack(op[3])]), pack(op[4]), NO_OPTIONS);
        else if (code === DeltaOp.MAP_REMOVE) batch._del(Buffer.concat([prefix, pack(op[3])]), NO_OPTIONS);
        else if (code === DeltaOp.DELETE_KEY) {
          if (kind === 'map') for (const [k] of this.scan(prefix)) batch._del(k, NO_OPTIONS);
          else batch._del(prefix, NO_OPTIONS);
        } else throw new Error(`Unknown operation ${String(code)} in a delta of incremental keyed state`);
      }
      batch._writeSync(NO_OPTIONS);
    } finally {
      batch._closeSync();
    }
  }

  /** Writes entries of a canonical snapshot (one key group's batch) into RocksDB. */
  restoreEntries(kinds: Record<string, string>, entries: unknown[]): void {
    this.flush();
    this.dropCache();
    const batch = this.rdb.batch();
    try {
      for (const e of entries as Array<[string, NK, unknown]>) {
        const [name, nk, value] = e;
        const kind = kinds[name];
        if (!kind) throw new Error(`Restored state '${name}' has no kind in the snapshot`);
        const meta = this.register(name, kind);
        if (kind === 'map') {
          const prefix = this.prefix(meta, nk);
          for (const [uk, uv] of value as Array<[unknown, unknown]>)
            batch._put(Buffer.concat([prefix, pack(uk)]), pack(uv), NO_OPTIONS);
        } else {
          batch._put(this.prefix(meta, nk), pack(value), NO_OPTIONS);
        }
      }
      batch._writeSync(NO_OPTIONS);
    } finally {
      batch._closeSync();
    }
  }

  numKeys(): number {
    this.flush();
    const keys = new Set<unknown>();
    const it = this.rdb.iterator(ITERATOR_OPTIONS);
    try {
      for (;;) {
        const { rows, finished } = it._nextvSync(1000, NO_OPTIONS);
        for (let j = 0; j < rows.length; j += 2) keys.add(decodeValues(rows[j]!.subarray(4))[0]);
        if (finished) break;
      }
    } finally {
      void it.close();
    }
    return keys.size;
  }
}
