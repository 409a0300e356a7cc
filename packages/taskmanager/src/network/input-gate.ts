import { decodeEvent, decodeRecords, decodeValue, type ChannelEvent } from '@weir/core/runtime';
import type { FrameKind } from '../worker-protocol.js';
import { BufferHeader, RECORDS_START, VARINT_RUNS, type TimestampRuns } from './buffer-format.js';
import type { BufferDebloater } from './buffer-debloater.js';

interface QueuedFrame {
  kind: FrameKind;
  bytes: Uint8Array;
  /** replayed channel state: no producer gave credit for it, so reading it earns none back */
  restored?: true;
}

class InputChannel {
  readonly queue: QueuedFrame[] = [];
  head = 0;
  finished = false;
  endOfData = false;
  /** credits earned by consumed buffers, returned to the producer in one message per slice */
  creditToReturn = 0;
  /** a record arriving in fragments: its bytes so far */
  assembly: Uint8Array | undefined;
  assembled = 0;
  /** the timestamp of the record in `assembly` (NaN: none) */
  assemblyTimestamp = NaN;
  /** a frame arrived in the current debloating period */
  active = false;
  /** the buffer size its producer was last told (debloating) */
  announcedBufferSize: number;
  /** an unaligned checkpoint records what arrives here until this channel's barrier */
  recording: QueuedFrame[] | undefined;
  constructor(
    readonly index: number,
    bufferSize: number,
  ) {
    this.announcedBufferSize = bufferSize;
  }

  get size(): number {
    return this.queue.length - this.head;
  }

  take(): QueuedFrame | undefined {
    if (this.head >= this.queue.length) return undefined;
    const f = this.queue[this.head]!;
    this.head++;
    if (this.head > 64 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return f;
  }
}

export interface InputHandler {
  /** `timestamps[i]`: record i's event time, NaN for none; absent when no record has one */
  onRecords(records: unknown[], channel: number, timestamps?: TimestampRuns): void;
  onEvent(event: ChannelEvent, channel: number): void;
}

/**
 * All input channels of one task. Frames are queued per channel as they arrive and read
 * round-robin; each consumed buffer earns the producer one credit back. With a debloater, the
 * producers are also told how large to make their buffers (with the next credit).
 */
export class InputGate {
  private readonly channels: InputChannel[];
  private next = 0;
  private finishedCount = 0;
  private endOfDataCount = 0;
  /** channels that may not be read right now (barrier alignment) */
  private readonly blocked = new Set<number>();
  /** bytes of the buffers read so far (metrics) */
  bytesIn = 0;
  /** bytesIn at the start of the debloating period */
  private periodBytes = 0;
  /** the task is waiting for input (debloating leaves that time out of its throughput) */
  private waiting = false;

  constructor(
    numberOfChannels: number,
    /** `bufferSize`: a new size for the producer's buffers, when it changed */
    private readonly returnCredit: (channel: number, credit: number, bufferSize?: number) => void,
    readonly debloater?: BufferDebloater,
  ) {
    const size = debloater?.bufferSize ?? 0;
    this.channels = Array.from({ length: numberOfChannels }, (_, i) => new InputChannel(i, size));
  }

  /** The buffer size producers start with (in the partition request), or undefined without debloating. */
  get initialBufferSize(): number | undefined {
    return this.debloater?.bufferSize;
  }

  /** The task ran out of readable input. */
  markWaiting(now: number): void {
    this.waiting = true;
    this.debloater?.idle(now);
  }

  /**
   * A debloating period ended: the buffer size is recalculated from what was consumed, and a
   * changed one goes to the producers at once (a slow task may not return credit for a while).
   */
  debloat(now: number): void {
    const d = this.debloater;
    if (!d) return;
    let active = 0;
    for (const ch of this.channels) {
      if (!ch.finished && (ch.active || ch.size > 0)) active++;
      ch.active = false;
    }
    const bytes = this.bytesIn - this.periodBytes;
    this.periodBytes = this.bytesIn;
    if (d.recalculate(now, bytes, active) !== undefined) this.flushCredits();
  }

  get numberOfChannels(): number {
    return this.channels.length;
  }

  onFrame(channel: number, kind: FrameKind, bytes: Uint8Array): void {
    const ch = this.channels[channel];
    if (!ch) throw new Error(`No input channel ${channel}`);
    const frame = { kind, bytes };
    ch.queue.push(frame);
    ch.recording?.push(frame);
    ch.active = true;
    if (this.waiting) {
      this.waiting = false;
      this.debloater?.busy(performance.now());
    }
  }

  /** Restore: input channel state of an unaligned checkpoint, read before anything that arrives. */
  restoreFrame(channel: number, kind: FrameKind, bytes: Uint8Array): void {
    const ch = this.channels[channel];
    if (!ch)
      throw new Error(
        `Channel state names input channel ${channel}, but the task has ${this.channels.length} input channels`,
      );
    ch.queue.push({ kind, bytes, restored: true });
  }

  /**
   * What an unaligned checkpoint finds in flight on a channel: the part of a record whose
   * remaining fragments are still to come (as a first fragment), then the frames not read yet.
   */
  inFlight(channel: number): Array<{ kind: FrameKind; bytes: Uint8Array }> {
    const ch = this.channels[channel]!;
    const out: Array<{ kind: FrameKind; bytes: Uint8Array }> = [];
    if (ch.assembly) {
      const timed = ch.assemblyTimestamp === ch.assemblyTimestamp;
      const start = timed ? 13 : 5;
      const first = Buffer.allocUnsafe(start + ch.assembled);
      first[0] = timed ? BufferHeader.FIRST_FRAGMENT_WITH_TIMESTAMP : BufferHeader.FIRST_FRAGMENT;
      first.writeUInt32BE(ch.assembly.byteLength, 1);
      if (timed) first.writeDoubleBE(ch.assemblyTimestamp, 5);
      first.set(ch.assembly.subarray(0, ch.assembled), start);
      out.push({ kind: 'buffer', bytes: first });
    }
    for (let i = ch.head; i < ch.queue.length; i++) out.push(ch.queue[i]!);
    return out;
  }

  /** From now on, frames arriving on `channel` are also kept (until stopRecording). */
  startRecording(channel: number): void {
    this.channels[channel]!.recording = [];
  }

  /** What arrived on `channel` since startRecording, in order. */
  stopRecording(channel: number): Array<{ kind: FrameKind; bytes: Uint8Array }> {
    const ch = this.channels[channel]!;
    const frames = ch.recording ?? [];
    ch.recording = undefined;
    return frames;
  }

  /** Frames queued over all channels, not yet read (metrics: input buffer usage). */
  queuedFrames(): number {
    let n = 0;
    for (const ch of this.channels) n += ch.size;
    return n;
  }

  hasData(): boolean {
    for (const ch of this.channels) if (ch.size > 0 && !this.blocked.has(ch.index)) return true;
    return false;
  }

  isFinished(): boolean {
    return this.finishedCount === this.channels.length;
  }

  /** Every channel delivered EndOfData (or ended): no record will arrive any more. */
  isEndOfData(): boolean {
    return this.endOfDataCount === this.channels.length;
  }

  isChannelFinished(channel: number): boolean {
    return this.channels[channel]!.finished;
  }

  block(channel: number): void {
    this.blocked.add(channel);
  }

  unblockAll(): void {
    this.blocked.clear();
  }

  /** Processes one frame from the next readable channel; false when nothing was readable. */
  pollNext(handler: InputHandler): boolean {
    const n = this.channels.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.next + i) % n;
      const ch = this.channels[idx]!;
      if (ch.size === 0 || this.blocked.has(idx)) continue;
      this.next = (idx + 1) % n;
      const frame = ch.take()!;
      if (frame.kind === 'buffer') {
        if (frame.restored === undefined) ch.creditToReturn++;
        this.bytesIn += frame.bytes.byteLength;
        this.onBuffer(ch, frame.bytes, handler);
      } else {
        const event = decodeEvent(frame.bytes);
        if (event.type === 'EndOfData' || (event.type === 'EndOfPartition' && !ch.endOfData)) {
          ch.endOfData = true;
          this.endOfDataCount++;
        }
        if (event.type === 'EndOfPartition') {
          ch.finished = true;
          this.finishedCount++;
        }
        handler.onEvent(event, idx);
      }
      return true;
    }
    return false;
  }

  /** Whole records go to the handler at once; a fragment is kept until its record is complete. */
  private onBuffer(ch: InputChannel, bytes: Uint8Array, handler: InputHandler): void {
    const header = bytes[0];
    if (header === BufferHeader.RECORDS) {
      handler.onRecords(decodeRecords(bytes.subarray(1)), ch.index);
      return;
    }
    if (header === BufferHeader.RECORDS_WITH_TIMESTAMPS) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const count = view.getUint32(2);
      const len = bytes.byteLength;
      const w = bytes[len - 1]!;
      if (w === VARINT_RUNS) {
        const runs = len >= 17 ? view.getUint32(len - 9) : 0;
        const start = len - 17 - (len >= 17 ? view.getUint32(len - 5) : 0);
        if (start < RECORDS_START)
          throw new Error(
            `Input channel ${ch.index}: corrupt network buffer (timestamps of ${count} records)`,
          );
        const timestamps = readVarintRuns(
          bytes,
          start,
          len - 17,
          runs,
          view.getFloat64(len - 17),
          count,
          ch.index,
        );
        handler.onRecords(decodeRecords(bytes.subarray(1, start)), ch.index, timestamps);
        return;
      }
      const runs = w === 0 && len >= 5 ? view.getUint32(len - 5) : 0;
      const start = w === 0 ? len - 5 - 12 * runs : w === 8 ? len - 1 - 8 * count : len - 9 - w * count;
      if ((w !== 0 && w !== 1 && w !== 2 && w !== 4 && w !== 8) || start < RECORDS_START)
        throw new Error(`Input channel ${ch.index}: corrupt network buffer (timestamps of ${count} records)`);
      const timestamps =
        w === 0 ? readRuns(view, start, runs, count, ch.index) : readOffsets(view, start, w, count);
      handler.onRecords(decodeRecords(bytes.subarray(1, start)), ch.index, timestamps);
      return;
    }
    if (header === BufferHeader.FIRST_FRAGMENT || header === BufferHeader.FIRST_FRAGMENT_WITH_TIMESTAMP) {
      if (ch.assembly)
        throw new Error(`Input channel ${ch.index}: a record started before the previous one ended`);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const total = view.getUint32(1);
      const timed = header === BufferHeader.FIRST_FRAGMENT_WITH_TIMESTAMP;
      const start = timed ? 13 : 5;
      ch.assemblyTimestamp = timed ? view.getFloat64(5) : NaN;
      ch.assembly = new Uint8Array(total);
      ch.assembly.set(bytes.subarray(start));
      ch.assembled = bytes.byteLength - start;
    } else if (header === BufferHeader.MORE_FRAGMENT && ch.assembly) {
      const part = bytes.subarray(1);
      if (ch.assembled + part.byteLength > ch.assembly.byteLength)
        throw new Error(`Input channel ${ch.index}: a record's fragments are longer than announced`);
      ch.assembly.set(part, ch.assembled);
      ch.assembled += part.byteLength;
    } else {
      throw new Error(`Input channel ${ch.index}: corrupt network buffer (header ${String(header)})`);
    }
    if (ch.assembled === ch.assembly.byteLength) {
      const record = decodeValue(ch.assembly);
      ch.assembly = undefined;
      const ts = ch.assemblyTimestamp;
      if (ts === ts)
        handler.onRecords([record], ch.index, {
          runs: 1,
          starts: new Uint32Array(1),
          values: Float64Array.of(ts),
        });
      else handler.onRecords([record], ch.index);
    }
  }

  flushCredits(): void {
    const size = this.debloater?.bufferSize;
    for (const ch of this.channels) {
      if (ch.finished) {
        ch.creditToReturn = 0;
        continue;
      }
      if (size !== undefined && size !== ch.announcedBufferSize) {
        ch.announcedBufferSize = size;
        this.returnCredit(ch.index, ch.creditToReturn, size);
      } else if (ch.creditToReturn > 0) {
        this.returnCredit(ch.index, ch.creditToReturn);
      }
      ch.creditToReturn = 0;
    }
  }
}

/** One unsigned LEB128 varint of at most five bytes at `at.p`, which moves past it. */
function readVarint(bytes: Uint8Array, at: { p: number }): number {
  let p = at.p;
  let b = bytes[p++]!;
  let v = b & 0x7f;
  for (let scale = 0x80; b >= 0x80 && scale <= 0x10000000; scale *= 0x80) {
    b = bytes[p++]!;
    v += (b & 0x7f) * scale;
  }
  at.p = p;
  return v;
}

/**
 * The varint runs form of a timestamp block (see buffer-format.ts): the varints from `start`
 * to `end`, each run's timestamp the previous one's plus its difference, from `first`.
 */
function readVarintRuns(
  bytes: Uint8Array,
  start: number,
  end: number,
  runs: number,
  first: number,
  count: number,
  channel: number,
): TimestampRuns {
  // at least two bytes per run: a corrupt count cannot ask for a huge array
  if (runs * 2 > end - start)
    throw new Error(`Input channel ${channel}: corrupt network buffer (${runs} timestamp runs)`);
  const starts = new Uint32Array(runs);
  const values = new Float64Array(runs);
  const at = { p: start };
  let records = 0;
  let t = first;
  for (let r = 0; r < runs; r++) {
    starts[r] = records;
    records += readVarint(bytes, at);
    const z = readVarint(bytes, at);
    t += (z >>> 1) ^ -(z & 1);
    values[r] = t;
  }
  if (records !== count || at.p !== end)
    throw new Error(
      `Input channel ${channel}: corrupt network buffer (timestamp runs of ${records} records, not ${count})`,
    );
  return { runs, starts, values };
}

/** The fixed runs form of a timestamp block (see buffer-format.ts). */
function readRuns(
  view: DataView,
  start: number,
  runs: number,
  count: number,
  channel: number,
): TimestampRuns {
  const starts = new Uint32Array(runs);
  const values = new Float64Array(runs);
  let at = 0;
  for (let r = 0, p = start; r < runs; r++, p += 12) {
    starts[r] = at;
    at += view.getUint32(p);
    values[r] = view.getFloat64(p + 4);
  }
  if (at !== count)
    throw new Error(
      `Input channel ${channel}: corrupt network buffer (timestamp runs of ${at} records, not ${count})`,
    );
  return { runs, starts, values };
}

/** The offsets (w 1, 2, 4) or float64 (w 8) form, as runs of equal timestamps. */
function readOffsets(view: DataView, start: number, w: number, count: number): TimestampRuns {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const len = view.byteLength;
  const base = w === 8 ? 0 : view.getFloat64(len - 9);
  const none = w === 1 ? 0xff : w === 2 ? 0xffff : 0xffffffff;
  let starts = new Uint32Array(16);
  let values = new Float64Array(16);
  let runs = 0;
  let last = NaN;
  for (let i = 0, p = start; i < count; i++, p += w) {
    let t: number;
    if (w === 8) t = view.getFloat64(p);
    else {
      const o = w === 1 ? bytes[p]! : w === 2 ? view.getUint16(p) : view.getUint32(p);
      t = o === none ? NaN : base + o;
    }
    if (runs > 0 && (t === last || (t !== t && last !== last))) continue;
    if (runs === starts.length) {
      const s2 = new Uint32Array(2 * runs);
      s2.set(starts);
      starts = s2;
      const v2 = new Float64Array(2 * runs);
      v2.set(values);
      values = v2;
    }
    starts[runs] = i;
    values[runs] = t;
    runs++;
    last = t;
  }
  return { runs, starts, values };
}
