import { StorageError } from '@weir/core/runtime';
import type { FrameKind } from '../worker-protocol.js';

/** Where a persisted frame was in flight: an input channel of the task, or a subpartition of one of its outputs. */
export interface ChannelStateEntry {
  /** 'input': `index` is the input channel; 'output': `partition` and `index` the subpartition */
  side: 'input' | 'output';
  partition: number;
  index: number;
  kind: FrameKind;
  /** a network buffer (buffer-format.ts) or an encoded channel event, exactly as it travels */
  bytes: Uint8Array;
}

/** The first bytes of a channel state file; the number is the format version. */
const MAGIC = Buffer.from('WCS1', 'latin1');
/** side (1) + partition (2) + index (4) + kind (1) + length (4) */
const ENTRY_HEADER = 12;

/**
 * The in-flight data of one subtask in an unaligned checkpoint (Flink's ChannelStateWriter):
 * the frames its input channels received before their barrier and the frames its outputs had
 * not sent when the barrier overtook them, in order per channel. One file per subtask and
 * checkpoint; frames are stored as they travel, so restore feeds them to the same input gate
 * and result partition code that reads the network.
 */
export function encodeChannelState(entries: readonly ChannelStateEntry[]): Buffer {
  let size = MAGIC.length;
  for (const e of entries) size += ENTRY_HEADER + e.bytes.byteLength;
  const out = Buffer.allocUnsafe(size);
  MAGIC.copy(out, 0);
  let p = MAGIC.length;
  for (const e of entries) {
    out[p] = e.side === 'input' ? 0 : 1;
    out.writeUInt16BE(e.partition, p + 1);
    out.writeUInt32BE(e.index, p + 3);
    out[p + 7] = e.kind === 'buffer' ? 0 : 1;
    out.writeUInt32BE(e.bytes.byteLength, p + 8);
    out.set(e.bytes, p + ENTRY_HEADER);
    p += ENTRY_HEADER + e.bytes.byteLength;
  }
  return out;
}

/** Reads a channel state file; `file` names it in errors (a damaged file is a CORRUPT storage error). */
export function decodeChannelState(data: Uint8Array, file: string): ChannelStateEntry[] {
  const corrupt = (why: string): StorageError =>
    new StorageError('CORRUPT', `Channel state file ${file} is damaged: ${why}`);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.byteLength < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC))
    throw corrupt('it does not start with WCS1');
  const entries: ChannelStateEntry[] = [];
  let p = MAGIC.length;
  while (p < buf.byteLength) {
    if (p + ENTRY_HEADER > buf.byteLength) throw corrupt(`truncated entry header at byte ${p}`);
    const side = buf[p]!;
    const kind = buf[p + 7]!;
    if (side > 1 || kind > 1) throw corrupt(`unknown entry type at byte ${p}`);
    const len = buf.readUInt32BE(p + 8);
    const start = p + ENTRY_HEADER;
    if (start + len > buf.byteLength) throw corrupt(`entry at byte ${p} is longer than the file`);
    entries.push({
      side: side === 0 ? 'input' : 'output',
      partition: buf.readUInt16BE(p + 1),
      index: buf.readUInt32BE(p + 3),
      kind: kind === 0 ? 'buffer' : 'event',
      bytes: new Uint8Array(buf.subarray(start, start + len)),
    });
    p = start + len;
  }
  return entries;
}
