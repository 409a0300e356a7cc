import {
  DIRECT_ROOM,
  UnsupportedValueError,
  encodeDirect,
  encodeEvent,
  valueEncoder,
  type ChannelEvent,
} from '@weir/core/runtime';
import type { FrameKind } from '../worker-protocol.js';
import { BufferHeader, RECORDS_START, TARGET_BUFFER_BYTES, VARINT_RUNS } from './buffer-format.js';
import { SpillFile } from './spill-file.js';

export type FrameSink = (
  partitionId: string,
  subpartition: number,
  kind: FrameKind,
  bytes: Uint8Array,
) => void;

interface Frame {
  kind: FrameKind;
  bytes: Uint8Array;
}

/**
 * One consumer's share of a result partition. A record is serialized when it is emitted and
 * its bytes appended to the open buffer; a full buffer (TARGET_BUFFER_BYTES) or the buffer
 * timeout closes it, and closed buffers queue here until the consumer has granted credit for
 * them (credit-based flow control, as in Flink's network stack).
 *
 * A task stops taking input while a subpartition has `maxBacklog` buffers waiting, but one
 * input can make any amount of output (a flatMap emitting a million records), and an emit
 * cannot wait: the tasks of a slot share one thread, so the consumer (or what it waits for)
 * may be on it. Buffers past `maxBuffersInMemory` therefore go to a spill file and come back
 * in order as credit arrives: the producer's memory stays bounded whatever one call emits.
 *
 * With buffer debloating the consumer says how large each subpartition's buffers should be
 * (with its credit): a slow consumer gets small buffers, so what queues ahead of a checkpoint
 * barrier is little data, not `maxBacklog` full buffers. A record larger than that size still
 * goes in one buffer of its own size (up to `bufferSize`); only larger ones are fragmented.
 */
/** The most a timestamp block for one record can take (a 1-byte offset, the float64 base, the width byte). */
const MAX_TIMESTAMP_BLOCK_ONE = 10;
/** A fixed runs block (see buffer-format.ts): the run count and the width byte, then 12 bytes per run. */
const RUNS_FIXED = 5;
const RUN_BYTES = 12;
/** A varint runs block: the first run's timestamp, the run count, the varints' bytes and the width byte. */
const VARINT_RUNS_FIXED = 17;
/** The widest span of a buffer's timestamps the varint runs form takes: every difference is an int32. */
const MAX_VARINT_SPAN = 0x7fffffff;

/** Bytes of `v` (a uint32) as an unsigned LEB128 varint. */
function varintBytes(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** An int32 difference as an unsigned number, small for small differences of either sign. */
function zigzag(d: number): number {
  return ((d << 1) ^ (d >> 31)) >>> 0;
}

function writeVarint(buf: Buffer, p: number, v: number): number {
  while (v >= 0x80) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p] = v;
  return p + 1;
}

/**
 * Varint bytes a new run with timestamp `t` adds once it starts at record `sp.count`: the run
 * before it gets its length, and the new run its difference (the first run: one byte).
 */
function newRunVarintBytes(sp: ResultSubpartition, t: number): number {
  const r = sp.runs;
  return r > 0 ? varintBytes(sp.count - sp.runStarts[r - 1]!) + varintBytes(zigzag(t - sp.lastTs)) : 1;
}

/**
 * Whether the open buffer's runs can take the varint form: every timestamp an integer, none
 * missing, all within MAX_VARINT_SPAN of each other. Once false, false until the buffer closes.
 */
function varintRunsFit(sp: ResultSubpartition): boolean {
  return sp.tsIntegers && !sp.tsMissing && sp.tsMax - sp.tsMin <= MAX_VARINT_SPAN;
}

/**
 * Bytes of the runs form of the open buffer's timestamps: the smaller of varint and fixed
 * runs. The open run's length is counted at the most it can take, so records that extend
 * that run leave the size as it is.
 */
function runsBlockBytes(sp: ResultSubpartition): number {
  const fixed = RUNS_FIXED + RUN_BYTES * sp.runs;
  if (!varintRunsFit(sp)) return fixed;
  const v = VARINT_RUNS_FIXED + sp.varintBytes + sp.openRunBytes;
  return v < fixed ? v : fixed;
}

/** runsBlockBytes once a new run with timestamp `t` (NaN: none) starts at record `sp.count`. */
function runsBlockBytesWith(sp: ResultSubpartition, t: number): number {
  // records before the first timestamped one of a buffer form a run without a timestamp
  const untimed = !sp.timed && sp.count > 0;
  const runs = sp.runs + (untimed ? 2 : 1);
  const fixed = RUNS_FIXED + RUN_BYTES * runs;
  if (untimed || t !== t || !Number.isSafeInteger(t) || !sp.tsIntegers || sp.tsMissing) return fixed;
  const min = t < sp.tsMin ? t : sp.tsMin;
  const max = t > sp.tsMax ? t : sp.tsMax;
  if (max - min > MAX_VARINT_SPAN) return fixed;
  const v =
    VARINT_RUNS_FIXED + sp.varintBytes + newRunVarintBytes(sp, t) + varintBytes(sp.buffer?.length ?? 0);
  return v < fixed ? v : fixed;
}

/** Bytes per timestamp when the buffer's timestamps span `min..max` (see buffer-format.ts). */
function timestampWidth(min: number, max: number, integers: boolean): 1 | 2 | 4 | 8 {
  if (!integers) return 8;
  if (min > max) return 1; // no timestamp yet, or only NaN
  const range = max - min;
  return range < 0xff ? 1 : range < 0xffff ? 2 : range < 0xffffffff ? 4 : 8;
}

/** Bytes of the per-record offsets form of a timestamp block: `count` values of width `w` (8: float64s, no base). */
function offsetsBlockBytes(w: 1 | 2 | 4 | 8, count: number): number {
  return w === 8 ? 1 + 8 * count : 9 + w * count;
}

/**
 * The size of the open buffer's timestamp block once one more record, with timestamp `t`
 * (NaN: none), joins it: the smaller of the offsets form and the runs form.
 */
function timestampBlockBytes(sp: ResultSubpartition, t: number): number {
  let min = sp.tsMin;
  let max = sp.tsMax;
  let integers = sp.tsIntegers;
  if (t === t) {
    if (t < min) min = t;
    if (t > max) max = t;
    if (!Number.isSafeInteger(t)) integers = false;
  }
  const w = timestampWidth(min, max, integers);
  const offsets = offsetsBlockBytes(w, sp.count + 1);
  const runs = sp.timed && continuesRun(sp, t) ? runsBlockBytes(sp) : runsBlockBytesWith(sp, t);
  return offsets < runs ? offsets : runs;
}

/** Whether `t` continues the open buffer's last run (NaN continues a run of records without one). */
function continuesRun(sp: ResultSubpartition, t: number): boolean {
  if (sp.runs === 0) return false;
  const last = sp.lastTs;
  return t === last || (t !== t && last !== last);
}

/**
 * A run of records with timestamp `t` (NaN: none) starts at record `sp.count`. A fast source
 * starts one every few dozen records, so this only notes the run and the range.
 */
function startRun(sp: ResultSubpartition, t: number): void {
  const r = sp.runs;
  // what the varint form takes for the run before (its length, now known) and this one's
  // difference; only read while varintRunsFit, which a NaN or a wide span ends for the buffer
  sp.varintBytes += newRunVarintBytes(sp, t);
  sp.openRunBytes = varintBytes(sp.buffer?.length ?? 0);
  if (r >= sp.runTs.length) {
    const starts = new Uint32Array(2 * r);
    starts.set(sp.runStarts);
    sp.runStarts = starts;
    const ts = new Float64Array(2 * r);
    ts.set(sp.runTs);
    sp.runTs = ts;
  }
  sp.runStarts[r] = sp.count;
  sp.runTs[r] = t;
  sp.runs = r + 1;
  sp.lastTs = t;
  if (t !== t) sp.tsMissing = true;
  else {
    if (t < sp.tsMin) sp.tsMin = t;
    if (t > sp.tsMax) sp.tsMax = t;
    if (sp.tsIntegers && !Number.isSafeInteger(t)) sp.tsIntegers = false;
  }
  sp.runLimit = (sp.buffer?.length ?? 0) - runsBlockBytes(sp);
  // integer timestamps a new run may have and start in place: a one-byte difference, the
  // span and safe integers kept, so the varint form stays and grows by less than RUN_BYTES
  if (varintRunsFit(sp)) {
    sp.newRunMin = Math.max(t - 63, sp.tsMax - MAX_VARINT_SPAN, Number.MIN_SAFE_INTEGER);
    sp.newRunMax = Math.min(t + 63, sp.tsMin + MAX_VARINT_SPAN, Number.MAX_SAFE_INTEGER);
  } else {
    sp.newRunMin = Infinity;
    sp.newRunMax = -Infinity;
  }
}

/**
 * A record encoded up to `end` in the open timed buffer that did not take the common cases
 * (extending the last run, or a new run close to it, with the runs form still fitting): kept
 * (true) when the timestamp block of the smaller form still fits after it.
 */
function placeTimestamped(sp: ResultSubpartition, buf: Buffer, end: number, t: number): boolean {
  const n = sp.count + 1;
  if (t === sp.lastTs) {
    const w = timestampWidth(sp.tsMin, sp.tsMax, sp.tsIntegers);
    if (end + offsetsBlockBytes(w, n) > buf.length) return false;
  } else if (end + timestampBlockBytes(sp, t) > buf.length) return false;
  else startRun(sp, t);
  sp.pos = end;
  sp.count = n;
  return true;
}

function resetTimestamps(sp: ResultSubpartition): void {
  sp.timed = false;
  sp.runs = 0;
  sp.lastTs = NaN;
  sp.runLimit = -1;
  sp.newRunMin = Infinity;
  sp.newRunMax = -Infinity;
  sp.tsMin = Infinity;
  sp.tsMax = -Infinity;
  sp.tsIntegers = true;
  sp.tsMissing = false;
  sp.varintBytes = 0;
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
/** whether a Float64Array holds its bytes little-endian (the platform's byte order) */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `buf.writeDoubleBE(v, p)` without its checks and call. */
function writeFloat64BE(buf: Buffer, p: number, v: number): void {
  f64[0] = v;
  if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) buf[p + i] = f64Bytes[7 - i]!;
  else for (let i = 0; i < 8; i++) buf[p + i] = f64Bytes[i]!;
}

/**
 * Writes the timestamp block after the records at `pos`, in the smallest form (see
 * buffer-format.ts): runs of equal timestamps when records come many to a millisecond
 * (varint runs when the timestamps allow), else one offset per record from the smallest
 * timestamp in the narrowest width that holds their range, or float64 timestamps when they
 * are not all integers or span 2^32 ms or more. Gives the end.
 */
function writeTimestampBlock(buf: Buffer, pos: number, sp: ResultSubpartition): number {
  const w = timestampWidth(sp.tsMin, sp.tsMax, sp.tsIntegers);
  const count = sp.count;
  const runs = sp.runs;
  const starts = sp.runStarts;
  const runTs = sp.runTs;
  const offsets = offsetsBlockBytes(w, count);
  const fixed = RUNS_FIXED + RUN_BYTES * runs;
  // the open run's length as it is, not at the most it could have taken
  const varint =
    runs > 0 && varintRunsFit(sp)
      ? VARINT_RUNS_FIXED + sp.varintBytes + varintBytes(count - starts[runs - 1]!)
      : Infinity;
  let p = pos;
  if (varint <= fixed && varint <= offsets) {
    let prev = runTs[0]!;
    for (let r = 0; r < runs; r++) {
      const t = runTs[r]!;
      p = writeVarint(buf, p, (r + 1 < runs ? starts[r + 1]! : count) - starts[r]!);
      p = writeVarint(buf, p, zigzag(t - prev));
      prev = t;
    }
    const bytes = p - pos;
    writeFloat64BE(buf, p, runTs[0]!);
    buf.writeUInt32BE(runs, p + 8);
    buf.writeUInt32BE(bytes, p + 12);
    buf[p + 16] = VARINT_RUNS;
    return p + VARINT_RUNS_FIXED;
  }
  if (fixed <= offsets) {
    // bytes written directly: a run is a few dozen records of a fast source
    for (let r = 0; r < runs; r++, p += RUN_BYTES) {
      const n = (r + 1 < runs ? starts[r + 1]! : count) - starts[r]!;
      buf[p] = n >>> 24;
      buf[p + 1] = (n >>> 16) & 0xff;
      buf[p + 2] = (n >>> 8) & 0xff;
      buf[p + 3] = n & 0xff;
      writeFloat64BE(buf, p + 4, runTs[r]!);
    }
    buf.writeUInt32BE(runs, p);
    buf[p + 4] = 0;
    return p + RUNS_FIXED;
  }
  const base = sp.tsMin <= sp.tsMax ? sp.tsMin : 0;
  for (let r = 0; r < runs; r++) {
    const n = (r + 1 < runs ? starts[r + 1]! : count) - starts[r]!;
    const t = runTs[r]!;
    if (w === 8) {
      for (let i = 0; i < n; i++, p += 8) writeFloat64BE(buf, p, t);
      continue;
    }
    const o = t === t ? t - base : w === 1 ? 0xff : w === 2 ? 0xffff : 0xffffffff;
    // bytes written directly: this runs for every record of the buffer
    if (w === 1) for (let i = 0; i < n; i++, p++) buf[p] = o;
    else if (w === 2)
      for (let i = 0; i < n; i++, p += 2) {
        buf[p] = o >>> 8;
        buf[p + 1] = o & 0xff;
      }
    else
      for (let i = 0; i < n; i++, p += 4) {
        buf[p] = o >>> 24;
        buf[p + 1] = (o >>> 16) & 0xff;
        buf[p + 2] = (o >>> 8) & 0xff;
        buf[p + 3] = o & 0xff;
      }
  }
  if (w !== 8) {
    buf.writeDoubleBE(base, p);
    p += 8;
  }
  buf[p] = w;
  return p + 1;
}

/**
 * Unsent buffers of a subpartition, in buffers of the consumer's size: the spilled buffers of
 * a burst are full size (see append), so their bytes count, and the producer waits for the
 * same bytes of backlog as with the consumer's buffers.
 */
function backlog(sp: ResultSubpartition): number {
  const spill = sp.spill;
  if (!spill) return sp.queue.length;
  return sp.queue.length + Math.max(spill.size, spill.bytes / sp.bufferSize);
}

class ResultSubpartition {
  /** the open buffer: headers, then `count` whole serialized records up to `pos` */
  buffer: Buffer | undefined;
  pos = 0;
  count = 0;
  readonly queue: Frame[] = [];
  /** closed buffers beyond the in-memory budget, in order after `queue` */
  spill: SpillFile | undefined;
  credit = 0;
  /** bytes per new buffer: the partition's buffer size, or what the consumer asked for */
  bufferSize: number;
  requested = false;
  released = false;
  /** whether the open buffer carries timestamps: some record of it has one */
  timed = false;
  /**
   * The open buffer's timestamps while `timed`, as runs of equal ones: run r starts at record
   * runStarts[r] and has timestamp runTs[r] (NaN: none). Records come many to a millisecond,
   * so a record usually only extends the last run. Reused from buffer to buffer.
   */
  runStarts = new Uint32Array(64);
  runTs = new Float64Array(64);
  runs = 0;
  /** the last run's timestamp */
  lastTs = NaN;
  /** where a record extending the last run may end so the runs form still fits the buffer */
  runLimit = -1;
  /** timestamps a new run may have and start in place (see startRun); none while the buffer has no runs */
  newRunMin = Infinity;
  newRunMax = -Infinity;
  /** smallest and largest timestamp of the open buffer, and whether all are integers */
  tsMin = Infinity;
  tsMax = -Infinity;
  tsIntegers = true;
  /** whether some record of the open buffer has no timestamp (a run of NaN) */
  tsMissing = false;
  /** bytes of the varint runs form for the closed runs' lengths and every run's difference */
  varintBytes = 0;
  /** the most the open run's length can take as a varint (its buffer's length as one) */
  openRunBytes = 1;

  constructor(
    readonly index: number,
    bufferSize: number,
  ) {
    this.bufferSize = bufferSize;
  }
}

export interface ResultPartitionOptions {
  partitionId: string;
  numberOfSubpartitions: number;
  /** buffers queued per subpartition before the producer counts as backpressured */
  maxBacklog: number;
  send: FrameSink;
  onAvailable: () => void;
  /** bytes per network buffer (default TARGET_BUFFER_BYTES) */
  bufferSize?: number;
  /**
   * bytes per buffer until a consumer says otherwise (default bufferSize): with buffer
   * debloating, small, so what is emitted before the consumer connects does not flood it
   */
  initialBufferSize?: number;
  /** who emits into this partition, for error messages: "'Flat Map' to 'Keyed Process'" */
  description?: string;
  /** where buffers over the in-memory budget go (none: they stay in memory) */
  spillDirectory?: string;
  /** closed buffers kept in memory per subpartition before spilling (default maxBacklog + 8) */
  maxBuffersInMemory?: number;
}

export class ResultPartition {
  readonly partitionId: string;
  private readonly subpartitions: ResultSubpartition[];
  private readonly send: FrameSink;
  private readonly maxBacklog: number;
  private readonly onAvailable: () => void;
  private readonly bufferSize: number;
  private readonly description: string;
  private readonly spillDirectory: string | undefined;
  private readonly maxBuffersInMemory: number;
  bytesOut = 0;

  constructor(opts: ResultPartitionOptions) {
    this.partitionId = opts.partitionId;
    this.bufferSize = opts.bufferSize ?? TARGET_BUFFER_BYTES;
    if (this.bufferSize < 16) throw new Error(`Network buffer size ${this.bufferSize} is too small`);
    this.subpartitions = Array.from(
      { length: opts.numberOfSubpartitions },
      (_, i) =>
        new ResultSubpartition(
          i,
          Math.max(16, Math.min(this.bufferSize, opts.initialBufferSize ?? this.bufferSize)),
        ),
    );
    this.send = opts.send;
    this.maxBacklog = opts.maxBacklog;
    this.onAvailable = opts.onAvailable;
    this.description = opts.description ?? `partition ${opts.partitionId}`;
    this.spillDirectory = opts.spillDirectory;
    this.maxBuffersInMemory = Math.max(opts.maxBuffersInMemory ?? opts.maxBacklog + 8, 1);
  }

  get numberOfSubpartitions(): number {
    return this.subpartitions.length;
  }

  /**
   * Hot path: serialize one record into a subpartition's open buffer. The common case (a record
   * the direct encoding writes, room in the open buffer) is all this method does, so that it
   * stays small enough to be inlined into the record writer; everything else is emitSlow.
   */
  emit(subpartition: number, record: unknown): void {
    const sp = this.subpartitions[subpartition]!;
    const buf = sp.buffer;
    if (buf !== undefined && !sp.timed && buf.length - sp.pos >= DIRECT_ROOM) {
      const end = encodeDirect(buf, sp.pos, record);
      if (end >= 0) {
        sp.pos = end;
        sp.count++;
        return;
      }
    }
    this.emitSlow(sp, record);
  }

  private emitSlow(sp: ResultSubpartition, record: unknown): void {
    const buf = sp.buffer;
    if (buf !== undefined && !sp.timed) {
      // most records fit into the open buffer: written there directly
      const end = this.encodeInto(record, buf, sp.pos);
      if (end >= 0) {
        sp.pos = end;
        sp.count++;
        return;
      }
    }
    const n = this.serialize(record);
    this.append(sp, valueEncoder.buffer, n, NaN);
    if (n > this.bufferSize) this.afterLargeRecord(n);
  }

  /**
   * A record with an event-time timestamp: the buffer carries timestamps beside its records.
   * The common case, small like emit's: the record extends the open buffer's last run of
   * timestamps (a fast source puts dozens of records in one millisecond) and the runs form
   * still fits after it (`runLimit`, -1 while the buffer has no runs).
   */
  emitTimestamped(subpartition: number, record: unknown, timestamp: number): void {
    const sp = this.subpartitions[subpartition]!;
    const buf = sp.buffer;
    if (buf !== undefined && timestamp === sp.lastTs && buf.length - sp.pos >= DIRECT_ROOM) {
      const end = encodeDirect(buf, sp.pos, record);
      if (end >= 0 && end <= sp.runLimit) {
        sp.pos = end;
        sp.count++;
        return;
      }
    }
    this.emitTimestampedSlow(sp, record, timestamp);
  }

  private emitTimestampedSlow(sp: ResultSubpartition, record: unknown, timestamp: number): void {
    const buf = sp.buffer;
    if (buf !== undefined && sp.timed) {
      // written in place; it fits only with room left for every record's timestamp
      let end = buf.length - sp.pos >= DIRECT_ROOM ? encodeDirect(buf, sp.pos, record) : -1;
      if (end < 0) end = this.encodeInto(record, buf, sp.pos);
      if (end >= 0) {
        // where the runs form still fits: the record extends the last run, or starts a new
        // one a millisecond or so on (a fast source: every few dozen records)
        if (timestamp === sp.lastTs) {
          if (end <= sp.runLimit) {
            sp.pos = end;
            sp.count++;
            return;
          }
        } else if (
          end <= sp.runLimit - RUN_BYTES &&
          timestamp >= sp.newRunMin &&
          timestamp <= sp.newRunMax &&
          Math.floor(timestamp) === timestamp
        ) {
          startRun(sp, timestamp);
          sp.pos = end;
          sp.count++;
          return;
        }
        if (placeTimestamped(sp, buf, end, timestamp)) return;
      }
    }
    const n = this.serialize(record);
    this.append(sp, valueEncoder.buffer, n, timestamp);
    if (n > this.bufferSize) this.afterLargeRecord(n);
  }

  /** `timestamp`: the record's event time, NaN for none. */
  broadcastEmit(record: unknown, timestamp = NaN): void {
    const n = this.serialize(record);
    for (const sp of this.subpartitions) this.append(sp, valueEncoder.buffer, n, timestamp);
    if (n > this.bufferSize) this.afterLargeRecord(n);
  }

  /**
   * The codec's encodeInto for what encodeDirect does not write (objects, long strings), out of
   * line: the record path inlines the direct encoding and calls this for the rest.
   */
  private encodeInto(record: unknown, buf: Buffer, pos: number): number {
    try {
      return valueEncoder.encodeInto(record, buf, pos);
    } catch (e) {
      throw this.refused(e);
    }
  }

  private serialize(record: unknown): number {
    try {
      return valueEncoder.encode(record);
    } catch (e) {
      throw this.refused(e);
    }
  }

  private refused(e: unknown): unknown {
    return e instanceof UnsupportedValueError
      ? new Error(e.describe('record', `Cannot send a record from ${this.description}`))
      : e;
  }

  private append(sp: ResultSubpartition, src: Buffer, n: number, timestamp: number): void {
    if (sp.released) return;
    let buf = sp.buffer;
    const hasTimestamp = timestamp === timestamp;
    // with timestamps, room stays free for the timestamp block after the records
    const reserve = hasTimestamp || sp.timed ? timestampBlockBytes(sp, timestamp) : 0;
    if (buf === undefined || sp.pos + n + reserve > buf.length) {
      if (buf !== undefined) this.closeBuffer(sp);
      if (n + RECORDS_START + (hasTimestamp ? MAX_TIMESTAMP_BLOCK_ONE : 0) > this.bufferSize)
        return this.appendFragments(sp, src, n, timestamp);
      // the consumer's size, or what this one record needs when it is larger. Once one call has
      // spilled a full backlog of full-size buffers (a flatMap emitting 1M records), that much
      // queues ahead of a barrier whatever the buffers' size, so the rest of the burst goes in
      // full-size ones: small ones would cost a frame, a spill write and a message each (the
      // 1M records in 16-byte buffers ran 25x slower)
      const size = this.inBurst(sp) ? this.bufferSize : sp.bufferSize;
      const fit = n + RECORDS_START + (hasTimestamp ? MAX_TIMESTAMP_BLOCK_ONE : 0);
      buf = sp.buffer = Buffer.allocUnsafeSlow(size >= fit ? size : fit);
      buf[0] = BufferHeader.RECORDS;
      buf[1] = 0xdd; // MessagePack array 32; its count is written when the buffer is closed
      sp.pos = RECORDS_START;
      sp.count = 0;
    }
    if (sp.timed) {
      if (!continuesRun(sp, timestamp)) startRun(sp, timestamp);
    } else if (hasTimestamp) {
      // the first record with a timestamp: the ones before it in this buffer have none
      sp.timed = true;
      if (sp.count > 0) {
        const n = sp.count;
        sp.count = 0;
        startRun(sp, NaN);
        sp.count = n;
      }
      startRun(sp, timestamp);
    }
    const p = sp.pos;
    if (n <= 32) for (let i = 0; i < n; i++) buf[p + i] = src[i]!;
    else src.copy(buf, p, 0, n);
    sp.pos = p + n;
    sp.count++;
  }

  /** A record larger than a buffer: a sequence of buffers, the first saying how long the record is. */
  private appendFragments(sp: ResultSubpartition, src: Buffer, n: number, timestamp: number): void {
    const timed = timestamp === timestamp;
    let off = 0;
    while (off < n) {
      const header = off > 0 ? 1 : timed ? 13 : 5;
      const chunk = Math.min(this.bufferSize - header, n - off);
      const frame = Buffer.allocUnsafeSlow(header + chunk);
      frame[0] =
        off > 0
          ? BufferHeader.MORE_FRAGMENT
          : timed
            ? BufferHeader.FIRST_FRAGMENT_WITH_TIMESTAMP
            : BufferHeader.FIRST_FRAGMENT;
      if (off === 0) frame.writeUInt32BE(n, 1);
      if (off === 0 && timed) frame.writeDoubleBE(timestamp, 5);
      src.copy(frame, header, off, off + chunk);
      off += chunk;
      this.enqueue(sp, 'buffer', frame);
    }
  }

  /** After a large record: the encoder's scratch buffer need not stay that large. */
  private afterLargeRecord(n: number): void {
    if (n > 1 << 20) valueEncoder.shrink();
  }

  private closeBuffer(sp: ResultSubpartition): void {
    const buf = sp.buffer!;
    sp.buffer = undefined;
    buf.writeUInt32BE(sp.count, 2);
    if (sp.timed) {
      buf[0] = BufferHeader.RECORDS_WITH_TIMESTAMPS;
      sp.pos = writeTimestampBlock(buf, sp.pos, sp);
      // the block is written with byte stores, which drop what falls past the end unseen
      if (sp.pos > buf.length)
        throw new Error(
          `${this.description}: the timestamp block of a network buffer overran it (${sp.pos} of ${buf.length} bytes); this is a bug in weir`,
        );
      resetTimestamps(sp);
    }
    // a nearly empty buffer (buffer timeout) is copied so the queue does not hold 32 KiB for it
    const bytes =
      sp.pos * 4 < buf.length ? Uint8Array.prototype.slice.call(buf, 0, sp.pos) : buf.subarray(0, sp.pos);
    this.enqueue(sp, 'buffer', bytes);
  }

  /** Whether `sp` has spilled more than a backlog of full-size buffers that it has not sent. */
  private inBurst(sp: ResultSubpartition): boolean {
    return (sp.spill?.bytes ?? 0) >= this.maxBacklog * this.bufferSize;
  }

  private enqueue(sp: ResultSubpartition, kind: FrameKind, bytes: Uint8Array): void {
    if (kind === 'buffer') this.bytesOut += bytes.byteLength;
    if (
      this.spillDirectory !== undefined &&
      ((sp.spill?.size ?? 0) > 0 || sp.queue.length >= this.maxBuffersInMemory)
    ) {
      sp.spill ??= new SpillFile(this.spillDirectory, `${this.partitionId}-${sp.index}`);
      sp.spill.append(kind, bytes);
    } else {
      sp.queue.push({ kind, bytes });
    }
    this.drain(sp);
  }

  /** Bytes that went through spill files (metrics and tests). */
  get bytesSpilled(): number {
    let n = 0;
    for (const sp of this.subpartitions) n += sp.spill?.bytesSpilled ?? 0;
    return n;
  }

  /** The task ended: spill files go. */
  close(): void {
    for (const sp of this.subpartitions) {
      sp.spill?.close();
      sp.spill = undefined;
    }
  }

  /** Called by the buffer timeout and at end of input. */
  flushAll(): void {
    for (const sp of this.subpartitions) if (sp.buffer !== undefined && sp.count > 0) this.closeBuffer(sp);
  }

  broadcastEvent(event: ChannelEvent): void {
    this.flushAll();
    const bytes = encodeEvent(event);
    for (const sp of this.subpartitions) if (!sp.released) this.enqueue(sp, 'event', new Uint8Array(bytes));
  }

  /**
   * An unaligned checkpoint's barrier: it goes ahead of everything each subpartition has not
   * sent yet (Flink's priority event), so it does not wait for credit behind those buffers.
   * Returns copies of the frames it overtook, per subpartition in order: they are sent after
   * the barrier as usual, and stored as the checkpoint's output channel state.
   */
  overtake(barrier: ChannelEvent): Array<{ subpartition: number; kind: FrameKind; bytes: Uint8Array }> {
    this.flushAll();
    const bytes = encodeEvent(barrier);
    const overtaken: Array<{ subpartition: number; kind: FrameKind; bytes: Uint8Array }> = [];
    for (const sp of this.subpartitions) {
      if (sp.released) continue;
      // copies: a frame's bytes are handed over (transferred) when it is sent
      for (const f of sp.queue)
        overtaken.push({ subpartition: sp.index, kind: f.kind, bytes: f.bytes.slice() });
      if (sp.spill) for (const f of sp.spill.peekAll()) overtaken.push({ subpartition: sp.index, ...f });
      sp.queue.unshift({ kind: 'event', bytes: new Uint8Array(bytes) });
      this.drain(sp);
    }
    return overtaken;
  }

  /** Some subpartition still holds a buffer it has not sent (queued, spilled or open). */
  hasUnsentBuffers(): boolean {
    for (const sp of this.subpartitions) {
      if (sp.released) continue;
      if ((sp.buffer !== undefined && sp.count > 0) || (sp.spill?.size ?? 0) > 0) return true;
      for (const f of sp.queue) if (f.kind === 'buffer') return true;
    }
    return false;
  }

  /** Restore: output channel state of an unaligned checkpoint, sent before anything new. */
  restoreFrame(subpartition: number, kind: FrameKind, bytes: Uint8Array): void {
    const sp = this.subpartitions[subpartition];
    if (!sp)
      throw new Error(
        `Channel state of ${this.description} names subpartition ${subpartition}, but the partition has ${this.subpartitions.length}`,
      );
    if (!sp.released) this.enqueue(sp, kind, bytes);
  }

  private drain(sp: ResultSubpartition): void {
    if (!sp.requested) return;
    const q = sp.queue;
    for (;;) {
      while (q.length > 0) {
        const head = q[0]!;
        if (head.kind === 'buffer') {
          if (sp.credit <= 0) return;
          sp.credit--;
        }
        q.shift();
        this.send(this.partitionId, sp.index, head.kind, head.bytes);
      }
      const spill = sp.spill;
      if (!spill || spill.size === 0) return;
      while (q.length < this.maxBuffersInMemory && spill.size > 0) q.push(spill.shift());
    }
  }

  /** `bufferSize`: the consumer's buffer size (buffer debloating), else the partition's full size. */
  onRequest(subpartition: number, credit: number, bufferSize?: number): void {
    const sp = this.subpartitions[subpartition];
    if (!sp) throw new Error(`Partition ${this.partitionId} has no subpartition ${subpartition}`);
    sp.requested = true;
    sp.credit += credit;
    this.resize(sp, bufferSize ?? this.bufferSize);
    this.drain(sp);
    this.notifyIfAvailable();
  }

  onCredit(subpartition: number, credit: number, bufferSize?: number): void {
    const sp = this.subpartitions[subpartition];
    if (!sp) return;
    sp.credit += credit;
    if (bufferSize !== undefined) this.resize(sp, bufferSize);
    this.drain(sp);
    this.notifyIfAvailable();
  }

  /** The size of a subpartition's buffers from now on; its open buffer goes out as it is. */
  private resize(sp: ResultSubpartition, bufferSize: number): void {
    const size = Math.max(16, Math.min(this.bufferSize, Math.floor(bufferSize)));
    if (size === sp.bufferSize || sp.released) return;
    sp.bufferSize = size;
    if (sp.buffer === undefined) return;
    if (sp.count > 0) this.closeBuffer(sp);
    else sp.buffer = undefined;
  }

  /** The size of a subpartition's next buffer (metrics and tests). */
  bufferSizeOf(subpartition: number): number {
    return this.subpartitions[subpartition]!.bufferSize;
  }

  /** The consumer is gone: drop what it would have received so the producer is not stuck. */
  onRelease(subpartition: number): void {
    const sp = this.subpartitions[subpartition];
    if (!sp) return;
    sp.released = true;
    sp.queue.length = 0;
    sp.buffer = undefined;
    resetTimestamps(sp);
    sp.spill?.close();
    sp.spill = undefined;
    this.notifyIfAvailable();
  }

  /** Unsent buffers over the backlog that makes the producer unavailable, for the fullest subpartition (metrics). */
  backlogUsage(): number {
    let most = 0;
    for (const sp of this.subpartitions) most = Math.max(most, backlog(sp));
    return Math.min(1, most / this.maxBacklog);
  }

  isAvailable(): boolean {
    for (const sp of this.subpartitions) if (backlog(sp) >= this.maxBacklog) return false;
    return true;
  }

  /** Every frame handed to the network (used to finish only once all output left). */
  isDrained(): boolean {
    for (const sp of this.subpartitions)
      if (sp.queue.length > 0 || (sp.spill?.size ?? 0) > 0 || (sp.buffer !== undefined && sp.count > 0))
        return false;
    return true;
  }

  private notifyIfAvailable(): void {
    if (this.isAvailable()) this.onAvailable();
  }
}
