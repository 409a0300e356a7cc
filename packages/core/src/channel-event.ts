import { Packr } from 'msgpackr';

/** Events are small control messages, encoded as plain MessagePack. */
const packr = new Packr({ useRecords: false, moreTypes: true });

/** In-band events travel in order with the buffers of a channel. */
export type ChannelEvent =
  | { type: 'EndOfPartition' }
  /** no more records on this channel; barriers still follow until the final checkpoint (FLIP-147) */
  | { type: 'EndOfData' }
  | {
      type: 'CheckpointBarrier';
      checkpointId: number;
      timestamp: number;
      isSavepoint?: boolean;
      storage?: string;
      directory?: string;
    }
  /** the sender gave checkpoint n up (declined or aborted): consumers stop aligning it and pass it on */
  | { type: 'CancelCheckpointMarker'; checkpointId: number }
  /** no record with timestamp <= timestamp follows on this channel (+Infinity: end of a bounded input) */
  | { type: 'Watermark'; timestamp: number }
  /** the channel turned idle (true: its watermark holds nobody back) or active again */
  | { type: 'WatermarkStatus'; idle: boolean };

export function encodeEvent(event: ChannelEvent): Uint8Array {
  return packr.pack(event);
}

export function decodeEvent(buffer: Uint8Array): ChannelEvent {
  const e = packr.unpack(buffer) as ChannelEvent;
  if (!e || typeof e !== 'object' || typeof e.type !== 'string') throw new Error('Corrupt channel event');
  return e;
}
