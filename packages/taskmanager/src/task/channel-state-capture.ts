import { decodeEvent } from '@weir/core/runtime';
import type { FrameKind } from '../worker-protocol.js';
import type { ChannelStateEntry } from './channel-state.js';

interface Frame {
  kind: FrameKind;
  bytes: Uint8Array;
}

/**
 * Whether an in-flight event is replayed on restore: watermarks and idleness, which the
 * records around them depend on. Barriers and cancel markers belong to checkpoints of the
 * old run, and the end of data or of a partition is sent again by the restored producer.
 */
function persistable(frame: Frame): boolean {
  if (frame.kind === 'buffer') return true;
  const t = decodeEvent(frame.bytes).type;
  return t === 'Watermark' || t === 'WatermarkStatus';
}

/**
 * The in-flight data of one unaligned checkpoint of one task, collected while its barriers
 * arrive: the output frames the barrier overtook, and per input channel the frames before
 * that channel's barrier (queued when the checkpoint started, then recorded as they arrive).
 * `done` resolves true once every input channel's barrier came (or the channel ended), false
 * when the checkpoint was given up first.
 */
export class ChannelStateCapture {
  private readonly inputs: Frame[][];
  private readonly output: ChannelStateEntry[] = [];
  private readonly open = new Set<number>();
  private settle!: (complete: boolean) => void;
  readonly done: Promise<boolean>;
  inputBytes = 0;
  outputBytes = 0;

  constructor(
    readonly checkpointId: number,
    numberOfChannels: number,
  ) {
    this.inputs = Array.from({ length: numberOfChannels }, () => []);
    for (let c = 0; c < numberOfChannels; c++) this.open.add(c);
    this.done = new Promise<boolean>((resolve) => (this.settle = resolve));
    if (numberOfChannels === 0) this.settle(true);
  }

  /** Frames of input channel `channel`, in order after those added before. */
  addInput(channel: number, frames: readonly Frame[]): void {
    const list = this.inputs[channel]!;
    for (const f of frames) {
      if (!persistable(f)) continue;
      list.push(f);
      this.inputBytes += f.bytes.byteLength;
    }
  }

  /** Frames an output's barrier overtook (already copies). */
  addOutput(partition: number, frames: ReadonlyArray<Frame & { subpartition: number }>): void {
    for (const f of frames) {
      if (!persistable(f)) continue;
      this.output.push({ side: 'output', partition, index: f.subpartition, kind: f.kind, bytes: f.bytes });
      this.outputBytes += f.bytes.byteLength;
    }
  }

  /** Whether input channel `channel` is still collecting. */
  isOpen(channel: number): boolean {
    return this.open.has(channel);
  }

  /** The barrier of `channel` arrived (or it ended): its last frames, and it is complete. */
  complete(channel: number, frames: readonly Frame[] = []): void {
    if (!this.open.delete(channel)) return;
    this.addInput(channel, frames);
    if (this.open.size === 0) this.settle(true);
  }

  cancel(): void {
    this.open.clear();
    this.settle(false);
  }

  /** Input channels in order, then outputs: what the channel state file holds. */
  entries(): ChannelStateEntry[] {
    const out: ChannelStateEntry[] = [];
    this.inputs.forEach((frames, index) => {
      for (const f of frames) out.push({ side: 'input', partition: 0, index, kind: f.kind, bytes: f.bytes });
    });
    return out.concat(this.output);
  }
}
