import { CombinedWatermark } from './combined-watermark.js';

/** Where a valve or combiner sends what it decides. */
export interface WatermarkSink {
  emitWatermark(timestamp: number): void;
  /** the whole input turned idle (true) or active again (false) */
  emitWatermarkStatus(idle: boolean): void;
}

interface ChannelStatus {
  watermark: number;
  idle: boolean;
  /** active and caught up with the last output watermark: only aligned channels make the minimum */
  aligned: boolean;
}

/**
 * The watermark of one input of a task (Flink's StatusWatermarkValve): each input channel
 * reports watermarks and idleness; the valve emits the minimum over the active channels,
 * only ever forwards, and turns idle when every channel is idle. A channel that comes back
 * from idleness behind the output watermark takes part again only once it caught up, so the
 * output never goes back.
 */
export class StatusWatermarkValve {
  private readonly channels: ChannelStatus[];
  private lastOutputWatermark = -Infinity;
  private idle = false;

  constructor(
    numChannels: number,
    private readonly sink: WatermarkSink,
  ) {
    if (!Number.isInteger(numChannels) || numChannels < 1) {
      throw new Error(`A watermark valve needs >= 1 input channel, got ${numChannels}`);
    }
    this.channels = [];
    for (let i = 0; i < numChannels; i++)
      this.channels.push({ watermark: -Infinity, idle: false, aligned: true });
  }

  getOutputWatermark(): number {
    return this.lastOutputWatermark;
  }

  isIdle(): boolean {
    return this.idle;
  }

  channelWatermark(channel: number): number {
    return this.channel(channel).watermark;
  }

  /** A watermark arrived on a channel (in band, after the channel's earlier records). */
  inputWatermark(timestamp: number, channel: number): void {
    const c = this.channel(channel);
    // an idle channel's (or idle input's) watermarks do not count until it is active again
    if (this.idle || c.idle) return;
    if (!(timestamp > c.watermark)) return;
    c.watermark = timestamp;
    if (!c.aligned && timestamp >= this.lastOutputWatermark) c.aligned = true;
    this.emitNewMinOfAligned();
  }

  /** A channel turned idle (true) or active (false). */
  inputWatermarkStatus(idle: boolean, channel: number): void {
    const c = this.channel(channel);
    if (idle && !c.idle) {
      c.idle = true;
      c.aligned = false;
      if (!this.channels.some((ch) => !ch.idle)) {
        // nothing will advance any more: flush the highest watermark any channel reached
        if (c.watermark === this.lastOutputWatermark) this.emitMaxOfAll();
        this.idle = true;
        this.sink.emitWatermarkStatus(true);
      } else if (c.watermark === this.lastOutputWatermark) {
        // the channel that held the minimum left: the others may allow a higher one
        this.emitNewMinOfAligned();
      }
    } else if (!idle && c.idle) {
      c.idle = false;
      if (c.watermark >= this.lastOutputWatermark) c.aligned = true;
      if (this.idle) {
        this.idle = false;
        this.sink.emitWatermarkStatus(false);
      }
    }
  }

  private channel(index: number): ChannelStatus {
    const c = this.channels[index];
    if (!c)
      throw new Error(`Watermark from input channel ${index}, but the valve has ${this.channels.length}`);
    return c;
  }

  private emitNewMinOfAligned(): void {
    let min = Infinity;
    let any = false;
    for (const c of this.channels) {
      if (!c.aligned) continue;
      any = true;
      if (c.watermark < min) min = c.watermark;
    }
    if (any && min > this.lastOutputWatermark) {
      this.lastOutputWatermark = min;
      this.sink.emitWatermark(min);
    }
  }

  private emitMaxOfAll(): void {
    let max = -Infinity;
    for (const c of this.channels) if (c.watermark > max) max = c.watermark;
    if (max > this.lastOutputWatermark) {
      this.lastOutputWatermark = max;
      this.sink.emitWatermark(max);
    }
  }
}

/**
 * The watermark of a two-input operator (join, connect): the minimum of both inputs'
 * watermarks, an idle input left out, idle when both are idle. Each input first goes
 * through its own StatusWatermarkValve; their outputs feed `inputWatermark(i, ...)`.
 */
export class TwoInputWatermarkCombiner {
  private readonly combined = new CombinedWatermark(2);
  private idle = false;

  constructor(private readonly sink: WatermarkSink) {}

  getCombinedWatermark(): number {
    return this.combined.getCombinedWatermark();
  }

  inputWatermark(input: 0 | 1, timestamp: number): void {
    this.combined.setWatermark(input, timestamp);
    if (this.combined.update()) this.sink.emitWatermark(this.combined.getCombinedWatermark());
  }

  inputWatermarkStatus(input: 0 | 1, idle: boolean): void {
    this.combined.setIdle(input, idle);
    if (this.combined.update()) this.sink.emitWatermark(this.combined.getCombinedWatermark());
    const nowIdle = this.combined.isIdle();
    if (nowIdle !== this.idle) {
      this.idle = nowIdle;
      this.sink.emitWatermarkStatus(nowIdle);
    }
  }
}
