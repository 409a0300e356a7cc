import { Packr } from 'msgpackr';

/**
 * Records cross task boundaries in batches: one msgpack array per network buffer, so the
 * codec runs once per buffer, not once per record. Records inside a chain are never encoded.
 */
const packr = new Packr({ useRecords: false, moreTypes: true });

export function encodeRecords(records: unknown[]): Uint8Array {
  return packr.pack(records);
}

export function decodeRecords(buffer: Uint8Array): unknown[] {
  const out = packr.unpack(buffer);
  if (!Array.isArray(out)) throw new Error('Corrupt network buffer: expected a record batch');
  return out;
}

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
  | { type: 'CancelCheckpointMarker'; checkpointId: number };

export function encodeEvent(event: ChannelEvent): Uint8Array {
  return packr.pack(event);
}

export function decodeEvent(buffer: Uint8Array): ChannelEvent {
  const e = packr.unpack(buffer) as ChannelEvent;
  if (!e || typeof e !== 'object' || typeof e.type !== 'string') throw new Error('Corrupt channel event');
  return e;
}
