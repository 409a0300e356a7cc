import { TARGET_BUFFER_BYTES } from './buffer-format.js';

/** taskmanager.network.memory.buffer-debloat.* and the buffer size bounds (Flink's names). */
export interface BufferDebloatSettings {
  enabled: boolean;
  /** how long the data queued before a subtask should take it to process */
  targetMs: number;
  /** how often throughput is sampled and the buffer size recalculated */
  periodMs: number;
  /** throughput samples the moving average spans */
  samples: number;
  /** a new size differing from the announced one by less than this (percent) is not announced */
  thresholdPercentages: number;
  /** the smallest buffer a producer is asked for (taskmanager.memory.min-segment-size) */
  minBufferSize: number;
  /** the largest (the network buffer size) */
  maxBufferSize: number;
}

export const DEFAULT_BUFFER_DEBLOAT: BufferDebloatSettings = {
  enabled: true,
  targetMs: 100,
  periodMs: 200,
  samples: 10,
  thresholdPercentages: 25,
  minBufferSize: 16,
  maxBufferSize: TARGET_BUFFER_BYTES,
};

/**
 * Buffer debloating (Flink's BufferDebloater, FLIP-183) for one input gate: from the bytes the
 * task consumed and the time it was not waiting for input, it estimates how fast the task
 * takes data, and sizes the buffers producers fill for it so that everything that may be queued
 * ahead of a checkpoint barrier (`buffersPerChannel` buffers on each active channel) takes about
 * `targetMs` to process. A slow subtask so gets small buffers and a barrier that reaches it soon;
 * a fast one gets full-size buffers and loses nothing.
 *
 * Throughput counts busy time only (time waiting for input is left out), so a task that is fast
 * but starved is not mistaken for a slow one. A period without input and without work tells
 * nothing and changes nothing; a busy period without input (the task stuck on output or on one
 * long record) counts as zero throughput.
 */
export class BufferDebloater {
  /** the size producers were last told; they start with it */
  bufferSize: number;
  /** bytes per busy second, averaged over about `samples` periods (NaN: no sample yet) */
  throughput = NaN;
  private readonly alpha: number;
  private periodStart: number;
  private idleMs = 0;
  /** since when the task has been waiting for input (NaN: it is not) */
  private idleSince = NaN;

  constructor(
    private readonly settings: BufferDebloatSettings,
    /** buffers that can queue per channel before the barrier: producer backlog, open buffer, credits, the one in hand */
    private readonly buffersPerChannel: number,
    now: number,
  ) {
    if (!(settings.minBufferSize >= 16 && settings.minBufferSize <= settings.maxBufferSize))
      throw new Error(
        `taskmanager.memory.min-segment-size must be from 16 bytes to the network buffer size ${settings.maxBufferSize}; got ${settings.minBufferSize}`,
      );
    this.alpha = 2 / (Math.max(1, settings.samples) + 1);
    // a fresh gate knows nothing about its task's speed: start small, so a slow task is not
    // flooded before the first measurement; a fast one grows to full buffers after one period
    this.bufferSize = settings.minBufferSize;
    this.periodStart = now;
  }

  /** The task has nothing to read (no data, or only channels blocked for alignment). */
  idle(now: number): void {
    if (this.idleSince !== this.idleSince) this.idleSince = now;
  }

  /** Input arrived or the task has work again. */
  busy(now: number): void {
    const since = this.idleSince;
    if (since === since) {
      this.idleMs += now - since;
      this.idleSince = NaN;
    }
  }

  /**
   * The end of a period in which the task consumed `bytes`, over `activeChannels` channels that
   * carried data: the new buffer size when it should be announced, else undefined.
   */
  recalculate(now: number, bytes: number, activeChannels: number): number | undefined {
    const since = this.idleSince;
    let idle = this.idleMs;
    if (since === since) {
      idle += now - since;
      this.idleSince = now;
    }
    const periodMs = now - this.periodStart;
    const busyMs = periodMs - idle;
    this.periodStart = now;
    this.idleMs = 0;
    // waiting for input the whole period, or a timer that fired early: nothing learnt
    if (bytes === 0 && busyMs < 1) return undefined;
    const sample = (bytes * 1000) / Math.max(1, busyMs);
    const t = this.throughput;
    this.throughput = t === t ? t + this.alpha * (sample - t) : sample;
    const s = this.settings;
    const buffers = Math.max(1, activeChannels) * this.buffersPerChannel;
    // a task that waited for input most of the period while data came is starved: nothing queues
    // ahead of its barriers, so its buffers are not what delays a checkpoint, and small ones would
    // only slow the producers down (a fast pipeline reaches full buffers after one period)
    const starved = bytes > 0 && idle * 2 > periodMs;
    const desired = starved ? s.maxBufferSize : Math.floor((this.throughput * s.targetMs) / 1000 / buffers);
    const size = Math.max(s.minBufferSize, Math.min(s.maxBufferSize, desired));
    if (size === this.bufferSize) return undefined;
    // a small change is not worth a message to every producer (Flink's threshold); the bounds always are
    const change = Math.abs(1 - this.bufferSize / size) * 100;
    if (change < s.thresholdPercentages && size !== s.minBufferSize && size !== s.maxBufferSize)
      return undefined;
    this.bufferSize = size;
    return size;
  }

  /** How long what may be queued now would take to process (metrics). */
  estimatedTimeToConsumeMs(activeChannels: number): number {
    const t = this.throughput;
    if (!(t > 0)) return 0;
    return (this.bufferSize * Math.max(1, activeChannels) * this.buffersPerChannel * 1000) / t;
  }
}
