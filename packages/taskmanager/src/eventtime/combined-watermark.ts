/**
 * The minimum of several partial watermarks, leaving idle ones out (Flink's
 * CombinedWatermarkStatus). Used for the splits of a source, the inputs of a two-input
 * operator, and anything else that merges watermarks. Monotonic: the combined watermark
 * never goes back, even when an input that was ahead becomes idle and a slower one
 * becomes active again.
 */
export class CombinedWatermark {
  private readonly watermarks: number[];
  private readonly idle: boolean[];
  private combined = -Infinity;
  private allIdle = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`CombinedWatermark needs >= 1 input, got ${size}`);
    this.watermarks = new Array<number>(size).fill(-Infinity);
    this.idle = new Array<boolean>(size).fill(false);
  }

  get size(): number {
    return this.watermarks.length;
  }

  /** Adds an input (a new split); it starts active at -Infinity, holding the minimum back until it reports. */
  addInput(): number {
    this.watermarks.push(-Infinity);
    this.idle.push(false);
    return this.watermarks.length - 1;
  }

  getCombinedWatermark(): number {
    return this.combined;
  }

  isIdle(): boolean {
    return this.allIdle;
  }

  partialWatermark(index: number): number {
    return this.watermarks[index]!;
  }

  isInputIdle(index: number): boolean {
    return this.idle[index]!;
  }

  /** A partial watermark that goes back is ignored (watermarks of one input are monotonic). */
  setWatermark(index: number, watermark: number): void {
    if (watermark > this.watermarks[index]!) this.watermarks[index] = watermark;
  }

  setIdle(index: number, idle: boolean): void {
    this.idle[index] = idle;
  }

  /** Recomputes; true when the combined watermark advanced (then emit it). */
  update(): boolean {
    let min = Infinity;
    let allIdle = true;
    for (let i = 0; i < this.watermarks.length; i++) {
      if (this.idle[i]) continue;
      allIdle = false;
      const w = this.watermarks[i]!;
      if (w < min) min = w;
    }
    this.allIdle = allIdle;
    if (!allIdle && min > this.combined) {
      this.combined = min;
      return true;
    }
    return false;
  }
}
