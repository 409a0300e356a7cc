import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { fileChunks } from './file-chunks.js';

/**
 * SHA-256 of streamed checkpoint files on a thread of its own. Hashing runs at about 2 GB/s,
 * as fast as the disk takes the bytes, so on the task thread it took as long as the write
 * itself and stalled records meanwhile; here the task thread only hands the bytes over.
 *
 * The bytes are shared, not copied: chunks backed by a SharedArrayBuffer (the heap snapshot's,
 * see sharedChunk) go over as they are, others are copied into shared slabs first. A chunk must
 * not change once it has been given to `update` (the rule of streamed writes anyway).
 *
 * One worker per thread serves every stream at once; it keeps the process alive only while a
 * stream is open. When no worker can be started (or one has failed), the hashing runs on the
 * calling thread.
 */
export class BackgroundSha256 {
  private readonly id = nextStreamId++;
  private readonly pool = hasherPool();
  private readonly local: { file: Hash; part: Hash | undefined } | undefined;
  private bufs: SharedArrayBuffer[] = [];
  private offs: number[] = [];
  private lens: number[] = [];
  /** chunks not in shared memory, by their index in `bufs`: copied into a reused slab when posted */
  private copies: Array<Uint8Array | undefined> = [];
  private copyBytes = 0;
  private batched = 0;
  private closed = false;
  /** whether the worker has heard of this stream (it then keeps the process alive until the end) */
  private posted = false;
  size = 0;

  /** `parts`: also hash the bytes between `partDigest` calls (an upload's request bodies) */
  constructor(private readonly parts = false) {
    if (!this.pool)
      this.local = { file: createHash('sha256'), part: parts ? createHash('sha256') : undefined };
  }

  update(chunk: Uint8Array): void {
    const n = chunk.byteLength;
    if (n === 0) return;
    this.size += n;
    if (this.local) {
      this.local.file.update(chunk);
      this.local.part?.update(chunk);
      return;
    }
    const buf = chunk.buffer;
    if (buf instanceof SharedArrayBuffer) {
      this.bufs.push(buf);
      this.offs.push(chunk.byteOffset);
    } else {
      // copied when the batch is posted (the chunk does not change meanwhile)
      this.copies[this.bufs.length] = chunk;
      this.copyBytes += n;
      this.bufs.push(NO_BUFFER);
      this.offs.push(0);
    }
    this.lens.push(n);
    this.batched += n;
    if (this.batched >= BATCH_BYTES) void this.post(OP_UPDATE);
  }

  /** The SHA-256 (hex) of the bytes since the last part digest; needs `parts`. */
  partDigest(): Promise<string> {
    if (!this.parts) throw new Error('BackgroundSha256: partDigest needs a hasher made with parts');
    if (this.local) {
      const hex = this.local.part!.digest('hex');
      this.local.part = createHash('sha256');
      return Promise.resolve(hex);
    }
    return this.post(OP_PART);
  }

  /** The SHA-256 (hex) of everything; the stream ends. */
  digest(): Promise<string> {
    if (this.closed) return Promise.reject(new Error('BackgroundSha256: digest of a stream that has ended'));
    this.closed = true;
    if (this.local) return Promise.resolve(this.local.file.digest('hex'));
    return this.post(OP_END);
  }

  /** Ends the stream without a digest (the write failed). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.posted) void this.post(OP_ABORT).catch(() => {});
  }

  private post(op: number): Promise<string> {
    const pool = this.pool!;
    if (!this.posted) {
      this.posted = true;
      pool.opened();
    }
    const seq = pool.nextSeq();
    if (this.copyBytes > 0) {
      const region = copyRegion(this.copyBytes, seq);
      let at = region.off;
      for (const [i, c] of this.copies.entries()) {
        if (c === undefined) continue;
        new Uint8Array(region.buf, at, c.byteLength).set(c);
        this.bufs[i] = region.buf;
        this.offs[i] = at;
        at += c.byteLength;
      }
      this.copies = [];
      this.copyBytes = 0;
    }
    const msg = {
      id: this.id,
      seq,
      op,
      parts: this.parts,
      bufs: this.bufs,
      offs: this.offs,
      lens: this.lens,
    };
    this.bufs = [];
    this.offs = [];
    this.lens = [];
    this.batched = 0;
    return pool.send(msg, op !== OP_UPDATE);
  }
}

/** bytes handed to the worker per message */
const BATCH_BYTES = 1 << 20;
const OP_UPDATE = 0;
const OP_PART = 1;
const OP_END = 2;
const OP_ABORT = 3;
const OP_FILE = 4;
/** the hashing thread's read buffer for files (reused) */
const FILE_READ_BYTES = 4 << 20;
/**
 * Shared memory comes in slabs of this size, carved into chunks: a SharedArrayBuffer of its own
 * per 64 KiB chunk costs about 40 µs to allocate (zeroed and registered), a 1 MiB slab about as
 * much as one allocUnsafe chunk.
 */
const SLAB_BYTES = 1 << 20;
let nextStreamId = 1;

/**
 * Slabs whose chunks nobody reads or writes any more (see SlabArena.release), reused before new
 * ones are allocated: fresh memory costs about 3.4 ms per MiB to fault in on this project's VMs
 * (a third of a 1M-key heap snapshot's time on its task thread), reused memory about a twentieth
 * of that. A release keeps its own slabs, up to FREE_SLABS_MAX per thread, and drops older free
 * ones: what stays allocated between checkpoints is about the last snapshot's size.
 */
let freeSlabs: SharedArrayBuffer[] = [];
const FREE_SLABS_MAX = 128;

/**
 * Chunks of shared memory carved from slabs (a SharedArrayBuffer per 64 KiB chunk costs about
 * 40 µs to allocate, zeroed and registered; a 1 MiB slab about as much as one allocUnsafe chunk).
 * An arena whose chunks have all been written and hashed gives its slabs back with `release`.
 */
export class SlabArena {
  private slab: SharedArrayBuffer | undefined;
  private pos = 0;
  private readonly slabs: SharedArrayBuffer[] = [];

  /** `recycles`: whether `release` gives the slabs to later arenas (else they are the GC's) */
  constructor(private readonly recycles = true) {}

  /**
   * A Buffer of `size` bytes in shared memory, which BackgroundSha256 hands to its thread without
   * a copy. A slab lives as long as any of its chunks does, or until `release`.
   */
  chunk(size: number): Buffer {
    if (size > SLAB_BYTES / 4) return Buffer.from(new SharedArrayBuffer(size));
    if (this.slab === undefined || this.pos + size > SLAB_BYTES) {
      this.slab = (this.recycles ? freeSlabs.pop() : undefined) ?? new SharedArrayBuffer(SLAB_BYTES);
      if (this.recycles) this.slabs.push(this.slab);
      this.pos = 0;
    }
    const out = Buffer.from(this.slab, this.pos, size);
    // 8-byte aligned starts (readers may view a chunk's bytes as wider typed arrays)
    this.pos += (size + 7) & ~7;
    return out;
  }

  /**
   * Every chunk handed out is done with: written durably, hashed, read by nobody (a failed or
   * aborted write may still have a chunk in flight, so only a completed one releases). Later
   * arenas reuse the slabs; this one starts afresh.
   */
  release(): void {
    // an arena that took no slab (or was released already) leaves the free ones to the next
    if (!this.recycles || this.slabs.length === 0) return;
    // this snapshot's slabs serve the next one of its size; older free ones, not taken by this
    // one, are left to the garbage collector
    freeSlabs = this.slabs.slice(0, FREE_SLABS_MAX);
    this.slabs.length = 0;
    this.slab = undefined;
    this.pos = 0;
  }
}

/** the arena of callers that never release theirs: its slabs go with their last chunk */
const defaultArena = new SlabArena(false);

/** A chunk of shared memory that is never reused (see SlabArena.chunk). */
export function sharedChunk(size: number): Buffer {
  return defaultArena.chunk(size);
}

/**
 * The SHA-256 (hex) of a file's first `size` bytes, read and hashed on the hashing thread: no
 * byte passes through the calling thread, and no memory is handed over (fresh shared memory
 * costs about 3 ms per MiB to fault in on some machines). Throws when the file is shorter.
 */
export function sha256OfFile(file: string, size: number): Promise<string> {
  const pool = hasherPool();
  if (!pool) return sha256OfFileHere(file, size);
  pool.opened();
  const msg = {
    id: nextStreamId++,
    seq: pool.nextSeq(),
    op: OP_FILE,
    parts: false,
    bufs: [],
    offs: [],
    lens: [],
    file,
    size,
  };
  return pool.send(msg, true);
}

async function sha256OfFileHere(file: string, size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of fileChunks(file, size)) h.update(c);
  return h.digest('hex');
}

const NO_BUFFER = new SharedArrayBuffer(0);

/**
 * Copies of chunks outside shared memory go to slabs that are reused once the hashing thread
 * has hashed every message naming them (it publishes the last message it finished in
 * `hashedSeq`): fresh shared memory costs about 3 ms per MiB to fault in on a VM whose freed
 * pages go back to the host, more than the hashing itself (sharedChunk's slabs, which the
 * writers keep, cannot be reused so).
 */
const COPY_SLAB_BYTES = 8 << 20;
/** copy slabs kept for reuse at most (their memory stays allocated) */
const COPY_SLABS_KEPT = 8;
interface CopySlab {
  buf: SharedArrayBuffer;
  pos: number;
  /** the last message naming it */
  seq: number;
}
let copySlab: CopySlab | undefined;
const usedCopySlabs: CopySlab[] = [];
let copySlabCount = 0;
const hashedSeq = new Int32Array(new SharedArrayBuffer(4));

/** Room for `size` bytes of copies that message `seq` will carry. */
function copyRegion(size: number, seq: number): { buf: SharedArrayBuffer; off: number } {
  if (size > COPY_SLAB_BYTES) return { buf: new SharedArrayBuffer(size), off: 0 };
  if (copySlab === undefined || copySlab.pos + size > COPY_SLAB_BYTES) {
    if (copySlab) usedCopySlabs.push(copySlab);
    copySlab = undefined;
    const done = Atomics.load(hashedSeq, 0);
    const free = usedCopySlabs.findIndex((sl) => sl.seq <= done);
    if (free >= 0) {
      copySlab = usedCopySlabs.splice(free, 1)[0]!;
      copySlab.pos = 0;
    } else if (copySlabCount < COPY_SLABS_KEPT) {
      copySlabCount++;
      copySlab = { buf: new SharedArrayBuffer(COPY_SLAB_BYTES), pos: 0, seq: 0 };
    } else return { buf: new SharedArrayBuffer(size), off: 0 };
  }
  const off = copySlab.pos;
  copySlab.pos += (size + 7) & ~7;
  copySlab.seq = seq;
  return { buf: copySlab.buf, off };
}

interface HashMessage {
  id: number;
  /** this thread's messages in the order sent (and hashed) */
  seq: number;
  op: number;
  parts: boolean;
  bufs: SharedArrayBuffer[];
  offs: number[];
  lens: number[];
  /** OP_FILE: the file and how much of it */
  file?: string;
  size?: number;
}

/**
 * The hashing thread allocates almost nothing of its own, so its garbage collector hardly ever
 * runs, and the shared chunks it was handed stay referenced by dead wrappers until it does: the
 * memory of every hashed byte stayed (a 10M-key RocksDB job's resident set grew by each 1 GB
 * checkpoint). A young-generation collection after each 16 MiB hashed frees them.
 */
const GC_EVERY_BYTES = 16 << 20;

/** The worker's code (CommonJS, evaluated): per stream a file hash and optionally a part hash. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');
// The flag is process-wide and every thread's hashing worker sets and clears it: retried until
// this thread's new context has gc (another may clear it between), without it if it never does.
let collect;
for (let i = 0; i < 1000 && collect === undefined; i++) {
  v8.setFlagsFromString('--expose-gc');
  collect = vm.runInNewContext('typeof gc === "function" ? gc : undefined');
  v8.setFlagsFromString('--no-expose-gc');
}
const streams = new Map();
let sinceGc = 0;
let fileBuf;
/** op 4: the first m.size bytes of the file m.file, read here (no memory handed over) */
function hashFile(m) {
  const h = createHash('sha256');
  const fd = fs.openSync(m.file, 'r');
  try {
    fileBuf ??= Buffer.allocUnsafe(${FILE_READ_BYTES});
    let at = 0;
    while (at < m.size) {
      const n = fs.readSync(fd, fileBuf, 0, Math.min(fileBuf.length, m.size - at), at);
      if (n === 0) throw new Error(m.file + ' is shorter than the ' + m.size + ' bytes recorded');
      h.update(n === fileBuf.length ? fileBuf : fileBuf.subarray(0, n));
      at += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
parentPort.on('message', (m) => {
  if (m.op === 4) {
    try {
      parentPort.postMessage({ id: m.id, hex: hashFile(m) });
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: e.message });
    }
    Atomics.store(workerData.hashedSeq, 0, m.seq);
    return;
  }
  for (let i = 0; i < m.lens.length; i++) sinceGc += m.lens[i];
  if (sinceGc >= ${GC_EVERY_BYTES}) {
    sinceGc = 0;
    if (collect !== undefined) queueMicrotask(() => collect({ type: 'minor' }));
  }
  let s = streams.get(m.id);
  if (s === undefined) {
    s = { file: createHash('sha256'), part: createHash('sha256') };
    streams.set(m.id, s);
  }
  for (let i = 0; i < m.bufs.length; i++) {
    const b = Buffer.from(m.bufs[i], m.offs[i], m.lens[i]);
    s.file.update(b);
    if (m.parts) s.part.update(b);
  }
  if (m.op === 1) {
    parentPort.postMessage({ id: m.id, hex: s.part.digest('hex') });
    s.part = createHash('sha256');
  } else if (m.op === 2) {
    streams.delete(m.id);
    parentPort.postMessage({ id: m.id, hex: s.file.digest('hex') });
  } else if (m.op === 3) streams.delete(m.id);
  // the copy slabs of this and earlier messages may be reused
  Atomics.store(workerData.hashedSeq, 0, m.seq);
});
`;

/** The worker of this thread and the digests it owes each stream, in order. */
class HasherPool {
  private readonly waiting = new Map<
    number,
    Array<{ resolve: (hex: string) => void; reject: (e: Error) => void }>
  >();
  private streams = 0;
  private failed: Error | undefined;

  constructor(private readonly worker: Worker) {
    worker.unref();
    worker.on('message', (m: { id: number; hex: string; error?: string }) => {
      const q = this.waiting.get(m.id);
      const w = q?.shift();
      if (q?.length === 0) this.waiting.delete(m.id);
      if (m.error === undefined) w?.resolve(m.hex);
      else w?.reject(new Error(m.error));
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`the checkpoint hashing thread exited (code ${code})`)));
  }

  private fail(e: Error): void {
    this.failed ??= new Error(`SHA-256 of a checkpoint file failed: ${e.message}`, { cause: e });
    // the streams in progress fail; later ones hash on their own thread
    if (pool === this) pool = undefined;
    unavailable = true;
    for (const q of this.waiting.values()) for (const w of q) w.reject(this.failed);
    this.waiting.clear();
  }

  private seq = 0;

  nextSeq(): number {
    return ++this.seq;
  }

  /** a stream starts (the worker creates its state on its first message) */
  opened(): void {
    if (this.streams++ === 0) this.worker.ref();
  }

  send(msg: HashMessage, reply: boolean): Promise<string> {
    // a failed worker fails the stream's next digest (updates and aborts need no answer)
    if (this.failed) return reply && msg.op !== OP_ABORT ? Promise.reject(this.failed) : Promise.resolve('');
    this.worker.postMessage(msg);
    if (msg.op === OP_ABORT) this.closed();
    if (!reply || msg.op === OP_ABORT) return Promise.resolve('');
    const digest = new Promise<string>((resolve, reject) => {
      let q = this.waiting.get(msg.id);
      if (q === undefined) this.waiting.set(msg.id, (q = []));
      q.push({ resolve, reject });
    });
    // the worker keeps the process alive until the last stream's digest is back
    if (msg.op === OP_END || msg.op === OP_FILE) void digest.then(this.closed, this.closed);
    return digest;
  }

  private readonly closed = (): void => {
    if (--this.streams === 0) this.worker.unref();
  };
}

let pool: HasherPool | undefined;
let unavailable = false;

function hasherPool(): HasherPool | undefined {
  if (pool || unavailable) return pool;
  try {
    // none of the process's flags (a loader such as tsx, --input-type=module would make the
    // source an ES module): the worker runs only the code above
    pool = new HasherPool(new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { hashedSeq } }));
  } catch {
    // no worker threads here (resource limits): hash on the calling thread
    unavailable = true;
  }
  return pool;
}
