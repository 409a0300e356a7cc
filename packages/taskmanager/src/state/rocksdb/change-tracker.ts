import { ITERATOR_OPTIONS, NO_OPTIONS, writeBatch, type RocksDB } from './binding.js';
import { KEY_HEADER_BYTES, keyGroupOf } from './key-layout.js';

/**
 * The tracked keys of a key group (a Set while they fit in memory, else read back from the
 * change log), and the delta batches recorded as they were written (see OpLog), which apply
 * before what the keys read.
 */
export type ChangedKeys = Iterable<string> & {
  /** keys to read and operations recorded */
  readonly size: number;
  readonly ops?: OpBatch[];
  /** how many of size are recorded operations, and their bytes */
  readonly opCount?: number;
  readonly opBytes?: number;
};

/** A delta batch's operations, encoded (see DeltaOp), without the batch's array header. */
export interface OpBatch {
  bytes: Buffer;
  count: number;
}

/** Bytes of one chunk of a key group's recorded operations (each chunk is one delta batch). */
const OP_CHUNK_BYTES = 256 * 1024;

/**
 * The delta operations of one key group written since a snapshot, recorded when the write
 * buffer wrote them to RocksDB (a put of a value state: [PUT, state, key, value]; a removal:
 * [DELETE_KEY, state, key]). An incremental checkpoint uploads them as they are, in order,
 * instead of reading each changed key back from RocksDB: no seek and no Buffer per key.
 */
export class OpLog {
  readonly chunks: OpBatch[] = [];
  /** small at first: a segment has one log per key group it touched, of up to 32,768 */
  private buf = Buffer.allocUnsafe(256);
  private len = 0;
  private count = 0;
  /** operations recorded, bytes held */
  size = 0;
  bytes = 0;

  /**
   * Appends [op, name, key, value?]: header is the op's fixarray header and code, name the
   * packed state name, key the RocksDB key (its normalized key from KEY_HEADER_BYTES on),
   * value the stored bytes (omitted for a removal).
   */
  add(header: Buffer, name: Buffer, key: Buffer, keyFrom: number, value?: Buffer): void {
    const n = header.length + name.length + key.length - keyFrom + (value ? value.length : 0);
    if (this.len + n > this.buf.length) this.grow(n);
    let p = this.len;
    const b = this.buf;
    for (let i = 0; i < header.length; i++) b[p++] = header[i]!;
    for (let i = 0; i < name.length; i++) b[p++] = name[i]!;
    for (let i = keyFrom; i < key.length; i++) b[p++] = key[i]!;
    if (value) {
      if (value.length <= 32) for (let i = 0; i < value.length; i++) b[p++] = value[i]!;
      else p += value.copy(b, p);
    }
    this.len = p;
    this.count++;
    this.size++;
    this.bytes += n;
  }

  private grow(n: number): void {
    if (this.count > 0 && this.len + n > OP_CHUNK_BYTES) this.seal();
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.len + n, Math.min(OP_CHUNK_BYTES, this.buf.length * 2)));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /** Closes the chunk being written (a view of its bytes), so the next write starts a new one. */
  private seal(): void {
    if (this.count === 0) return;
    this.chunks.push({ bytes: this.buf.subarray(0, this.len), count: this.count });
    this.buf = Buffer.allocUnsafe(256);
    this.len = 0;
    this.count = 0;
  }

  /** Every chunk, in order (the one being written is closed first). */
  batches(): OpBatch[] {
    this.seal();
    return this.chunks;
  }
}

/** What changed since a point in time, per key group: RocksDB keys ('k' + key) and cleared map prefixes ('p' + prefix), latin1. */
interface ChangeSegment {
  /** the checkpoint whose synchronous part froze this segment (0 while it is the current one) */
  id: number;
  /** its number in the change log (rows of the keys it spilled) */
  seq: number;
  /** everything may have changed (at the start, or after a restore that is not reused) */
  all: boolean;
  /** the keys held in memory (at most maxTrackedKeys; the rest went to the change log) */
  keys: Map<number, Set<string>>;
  /** operations recorded as written, per key group (see OpLog) */
  ops: Map<number, OpLog>;
  opBytes: number;
  count: number;
  /** keys per key group written to the change log (a key spilled twice counts twice) */
  spilled: Map<number, number> | undefined;
  /** a completed checkpoint covers it; its log rows go once no upload reads them */
  covered: boolean;
  /** uploads reading its log rows */
  readers: number;
}

/** What an incremental checkpoint must upload: everything, or these tracked keys per key group. */
export interface Changes {
  all: boolean;
  changed: Map<number, ChangedKeys>;
  /** the upload is done reading the change log */
  release(): void;
}

const SEQ_BYTES = 4;

function seqBound(seq: number): Buffer {
  const b = Buffer.allocUnsafe(SEQ_BYTES);
  b.writeUInt32BE(seq >>> 0, 0);
  return b;
}

/**
 * The keys tracked past the memory bound, in a RocksDB database of their own: one empty row per
 * key, keyed segment (4 bytes) | key group (2 bytes) | the tracked key, so a segment's keys of one
 * key group are one range and a segment is dropped with one range delete.
 */
export class ChangeLog {
  constructor(private readonly db: RocksDB) {}

  write(seq: number, keys: Map<number, Set<string>>): void {
    const EMPTY = Buffer.alloc(0);
    writeBatch(this.db, (batch) => {
      for (const [g, set] of keys) {
        for (const tracked of set) {
          const row = Buffer.allocUnsafe(SEQ_BYTES + 2 + Buffer.byteLength(tracked, 'latin1'));
          row.writeUInt32BE(seq >>> 0, 0);
          row.writeUInt16BE(g, SEQ_BYTES);
          row.write(tracked, SEQ_BYTES + 2, 'latin1');
          batch._put(row, EMPTY, NO_OPTIONS);
        }
      }
    });
  }

  /** The keys of one key group that segment seq spilled, read in chunks. */
  *read(seq: number, group: number): Generator<string> {
    const prefix = Buffer.allocUnsafe(SEQ_BYTES + 2);
    prefix.writeUInt32BE(seq >>> 0, 0);
    prefix.writeUInt16BE(group, SEQ_BYTES);
    const end = Buffer.from(prefix);
    if (group < 0xffff) end.writeUInt16BE(group + 1, SEQ_BYTES);
    else end.writeUInt32BE((seq + 1) >>> 0, 0);
    const it = this.db.iterator({ ...ITERATOR_OPTIONS, gte: prefix, lt: end });
    try {
      for (;;) {
        const { rows, finished } = it._nextvSync(1024, NO_OPTIONS);
        for (let j = 0; j < rows.length; j += 2) yield rows[j]!.toString('latin1', SEQ_BYTES + 2);
        if (finished || rows.length === 0) return;
      }
    } finally {
      void it.close();
    }
  }

  /** Drops the rows of segments from..to-1. */
  drop(from: number, to: number): void {
    this.db.clear({ gte: seqBound(from), lt: seqBound(to) }).catch(() => {
      /* the database was closed: the rows go with its directory */
    });
  }
}

function emptySegment(all: boolean, seq: number): ChangeSegment {
  return {
    id: 0,
    seq,
    all,
    keys: new Map(),
    ops: new Map(),
    opBytes: 0,
    count: 0,
    spilled: undefined,
    covered: false,
    readers: 0,
  };
}

/**
 * The RocksDB keys changed since the last completed checkpoint, per key group (the role of
 * the SST-file diff in Flink's RocksIncrementalSnapshotStrategy, done per key here). Each
 * snapshot freezes the current segment; a completed checkpoint drops the segments it covers,
 * so an aborted checkpoint's changes are uploaded by the next one. Memory is bounded: past
 * maxTrackedKeys distinct keys in memory, a segment writes them to the change log (a RocksDB
 * database of its own) and goes on, so incremental checkpoints stay incremental at any number
 * of changed keys. Without a change log, overflowing makes the next checkpoint full.
 */
export class ChangeTracker {
  private nextSeq = 1;
  /** changes since the synchronous part of the last incremental snapshot; starts as "everything" */
  private tracking: ChangeSegment = emptySegment(true, this.nextSeq++);
  /** segments frozen by snapshots whose checkpoints have not completed yet, oldest first */
  private frozen: ChangeSegment[] = [];
  /** covered segments whose log rows an upload still reads */
  private draining: ChangeSegment[] = [];

  constructor(
    private readonly maxTrackedKeys = 200_000,
    private log?: ChangeLog,
    /** bytes of recorded operations (see OpLog) per segment; past them, written keys are tracked instead */
    private readonly maxOpBytes = 64 * 1024 * 1024,
  ) {}

  /**
   * Records a delta operation as it is written (see OpLog.add) for the next incremental
   * checkpoint, instead of tracking the key to read it back. Past maxOpBytes recorded since the
   * last snapshot, the key is tracked instead: the recorded operations apply first and a
   * tracked key's state in the snapshot's view after them, so the delta stays exact.
   */
  op(header: Buffer, name: Buffer, key: Buffer, value?: Buffer): void {
    const t = this.tracking;
    if (t.all) return;
    if (t.opBytes >= this.maxOpBytes) {
      this.track(key, 'k');
      return;
    }
    const g = keyGroupOf(key);
    let log = t.ops.get(g);
    if (!log) t.ops.set(g, (log = new OpLog()));
    const before = log.bytes;
    log.add(header, name, key, KEY_HEADER_BYTES, value);
    t.opBytes += log.bytes - before;
  }

  /** Keys past maxTrackedKeys go to this log from now on (the backend opens it with its database). */
  attach(log: ChangeLog): void {
    this.log = log;
  }

  /** Remembers a changed RocksDB key (or a cleared map prefix) for the next incremental checkpoint. */
  track(key: Buffer, kind: 'k' | 'p'): void {
    const t = this.tracking;
    if (t.all) return;
    const g = keyGroupOf(key);
    let set = t.keys.get(g);
    if (!set) t.keys.set(g, (set = new Set()));
    const before = set.size;
    set.add(kind + key.toString('latin1'));
    if (set.size > before && ++t.count > this.maxTrackedKeys) this.spill(t);
  }

  private spill(t: ChangeSegment): void {
    if (!this.log) {
      // too many to remember one by one: the next checkpoint rewrites every key group
      t.all = true;
      t.ops = new Map();
      t.opBytes = 0;
    } else {
      this.log.write(t.seq, t.keys);
      t.spilled ??= new Map();
      for (const [g, set] of t.keys) t.spilled.set(g, (t.spilled.get(g) ?? 0) + set.size);
    }
    t.keys = new Map();
    t.count = 0;
  }

  /** Freezes the current segment for checkpoint n; returns everything not covered by the last completed checkpoint. */
  freeze(checkpointId: number): Changes {
    const seg = this.tracking;
    seg.id = checkpointId;
    this.frozen.push(seg);
    this.tracking = emptySegment(false, this.nextSeq++);
    // everything that changed since the last completed checkpoint: the segments not covered by it
    const all = this.frozen.some((s) => s.all);
    const changed = new Map<number, ChangedKeys>();
    if (all) return { all, changed, release: () => {} };
    const inMemory = new Map<number, Set<string>>();
    for (const s of this.frozen) {
      for (const [g, keys] of s.keys) {
        const have = inMemory.get(g);
        if (!have) inMemory.set(g, keys);
        else inMemory.set(g, new Set([...have, ...keys]));
      }
    }
    // recorded operations, oldest segment first (they apply in the order they were written)
    const ops = new Map<number, { batches: OpBatch[]; size: number; bytes: number }>();
    for (const s of this.frozen) {
      for (const [g, log] of s.ops) {
        let o = ops.get(g);
        if (!o) ops.set(g, (o = { batches: [], size: 0, bytes: 0 }));
        o.batches.push(...log.batches());
        o.size += log.size;
        o.bytes += log.bytes;
      }
    }
    const readers = this.frozen.filter((s) => s.spilled);
    const groups = new Set([...inMemory.keys(), ...ops.keys()]);
    for (const s of readers) for (const g of s.spilled!.keys()) groups.add(g);
    for (const g of groups) {
      const mem = inMemory.get(g);
      const o = ops.get(g);
      const logged = readers.filter((s) => s.spilled!.has(g));
      if (logged.length === 0 && !o) {
        changed.set(g, mem!);
        continue;
      }
      const log = this.log;
      // a key both in memory and in the log (or in two segments) is uploaded twice: harmless,
      // each delta op is the key's state in the snapshot's view
      changed.set(g, {
        size: (mem?.size ?? 0) + (o?.size ?? 0) + logged.reduce((n, s) => n + s.spilled!.get(g)!, 0),
        ...(o ? { ops: o.batches, opCount: o.size, opBytes: o.bytes } : {}),
        *[Symbol.iterator]() {
          if (mem) yield* mem;
          for (const s of logged) yield* log!.read(s.seq, g);
        },
      });
    }
    for (const s of readers) s.readers++;
    let released = false;
    return {
      all,
      changed,
      release: () => {
        if (released) return;
        released = true;
        for (const s of readers) s.readers--;
        this.dropDrained();
      },
    };
  }

  /** Checkpoint n completed: the segments it covers are no longer needed. */
  completed(checkpointId: number): void {
    for (const s of this.frozen) if (s.id <= checkpointId && s.spilled) this.draining.push(s);
    for (const s of this.draining) s.covered = true;
    this.frozen = this.frozen.filter((s) => s.id > checkpointId);
    this.dropDrained();
  }

  private dropDrained(): void {
    if (!this.log) return;
    this.draining = this.draining.filter((s) => {
      if (s.readers > 0) return true;
      this.log!.drop(s.seq, s.seq + 1);
      return false;
    });
  }

  /** The state now equals a restored checkpoint: nothing has changed since it. */
  reset(): void {
    this.tracking = emptySegment(false, this.nextSeq++);
    this.frozen = [];
    this.draining = [];
    this.log?.drop(0, this.tracking.seq);
  }
}
