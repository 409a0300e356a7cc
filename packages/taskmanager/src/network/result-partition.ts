import { encodeEvent, encodeRecords, type ChannelEvent } from '@weir/core';
import type { FrameKind } from '../worker-protocol.js';

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
 * One consumer's share of a result partition. Records collect in an array until the buffer
 * is full or the buffer timeout fires; full buffers queue here until the consumer has
 * granted credit for them (credit-based flow control, as in Flink's network stack).
 */
class ResultSubpartition {
  pending: unknown[] = [];
  readonly queue: Frame[] = [];
  credit = 0;
  requested = false;
  released = false;

  constructor(readonly index: number) {}
}

const TARGET_BUFFER_BYTES = 32 * 1024;

export interface ResultPartitionOptions {
  partitionId: string;
  numberOfSubpartitions: number;
  /** buffers queued per subpartition before the producer counts as backpressured */
  maxBacklog: number;
  send: FrameSink;
  onAvailable: () => void;
}

export class ResultPartition {
  readonly partitionId: string;
  private readonly subpartitions: ResultSubpartition[];
  private readonly send: FrameSink;
  private readonly maxBacklog: number;
  private readonly onAvailable: () => void;
  /** adapted after each buffer so buffers come out near TARGET_BUFFER_BYTES */
  private recordsPerBuffer = 256;
  bytesOut = 0;

  constructor(opts: ResultPartitionOptions) {
    this.partitionId = opts.partitionId;
    this.subpartitions = Array.from(
      { length: opts.numberOfSubpartitions },
      (_, i) => new ResultSubpartition(i),
    );
    this.send = opts.send;
    this.maxBacklog = opts.maxBacklog;
    this.onAvailable = opts.onAvailable;
  }

  get numberOfSubpartitions(): number {
    return this.subpartitions.length;
  }

  /** Hot path: append one record to a subpartition's open buffer. */
  emit(subpartition: number, record: unknown): void {
    const sp = this.subpartitions[subpartition]!;
    const n = sp.pending.push(record);
    if (n >= this.recordsPerBuffer) this.flushSubpartition(sp);
  }

  broadcastEmit(record: unknown): void {
    for (const sp of this.subpartitions) {
      if (sp.pending.push(record) >= this.recordsPerBuffer) this.flushSubpartition(sp);
    }
  }

  /** Called by the buffer timeout and at end of input. */
  flushAll(): void {
    for (const sp of this.subpartitions) if (sp.pending.length > 0) this.flushSubpartition(sp);
  }

  broadcastEvent(event: ChannelEvent): void {
    this.flushAll();
    const bytes = encodeEvent(event);
    for (const sp of this.subpartitions) {
      sp.queue.push({ kind: 'event', bytes: new Uint8Array(bytes) });
      this.drain(sp);
    }
  }

  private flushSubpartition(sp: ResultSubpartition): void {
    const records = sp.pending;
    sp.pending = [];
    // copy out of the codec's shared scratch buffer so the bytes can be transferred
    const bytes = new Uint8Array(encodeRecords(records));
    this.bytesOut += bytes.byteLength;
    const perRecord = bytes.byteLength / records.length;
    this.recordsPerBuffer = Math.max(16, Math.min(16384, Math.round(TARGET_BUFFER_BYTES / perRecord)));
    if (sp.released) return;
    sp.queue.push({ kind: 'buffer', bytes });
    this.drain(sp);
  }

  private drain(sp: ResultSubpartition): void {
    if (!sp.requested) return;
    const q = sp.queue;
    while (q.length > 0) {
      const head = q[0]!;
      if (head.kind === 'buffer') {
        if (sp.credit <= 0) break;
        sp.credit--;
      }
      q.shift();
      this.send(this.partitionId, sp.index, head.kind, head.bytes);
    }
  }

  onRequest(subpartition: number, credit: number): void {
    const sp = this.subpartitions[subpartition];
    if (!sp) throw new Error(`Partition ${this.partitionId} has no subpartition ${subpartition}`);
    sp.requested = true;
    sp.credit += credit;
    this.drain(sp);
    this.notifyIfAvailable();
  }

  onCredit(subpartition: number, credit: number): void {
    const sp = this.subpartitions[subpartition];
    if (!sp) return;
    sp.credit += credit;
    this.drain(sp);
    this.notifyIfAvailable();
  }

  /** The consumer is gone: drop what it would have received so the producer is not stuck. */
  onRelease(subpartition: number): void {
    const sp = this.subpartitions[subpartition];
    if (!sp) return;
    sp.released = true;
    sp.queue.length = 0;
    sp.pending = [];
    this.notifyIfAvailable();
  }

  isAvailable(): boolean {
    for (const sp of this.subpartitions) if (sp.queue.length >= this.maxBacklog) return false;
    return true;
  }

  /** Every frame handed to the network (used to finish only once all output left). */
  isDrained(): boolean {
    for (const sp of this.subpartitions) if (sp.queue.length > 0 || sp.pending.length > 0) return false;
    return true;
  }

  private notifyIfAvailable(): void {
    if (this.isAvailable()) this.onAvailable();
  }
}
