import type { TaskMetrics } from '@weir/core/runtime';
import type { InputGate } from '../network/input-gate.js';
import type { ResultPartition } from '../network/result-partition.js';

/**
 * A task's counters (Flink's TaskIOMetricGroup): plain numbers the record loop increments,
 * read by `sample()` about once a second. Nothing here allocates per record.
 *
 * Time accounting follows Flink: busy is time spent running the task's slices (reading input,
 * running the operator chain, polling a source); back-pressured is time the task waited for
 * output credit; idle is the rest of the wall-clock time (waiting for input, or for the other
 * tasks sharing the slot's thread). The JobManager turns two samples into ms per second.
 */
export class TaskIOMetrics {
  recordsIn = 0;
  recordsOut = 0;
  busyMs = 0;
  backPressuredMs = 0;
  /** when the current wait for output credit began (0: not waiting) */
  private backPressuredSince = 0;
  /**
   * Event time registers here once tasks track watermarks: records dropped as late, and the
   * smallest watermark over the task's inputs (`undefined` until one arrived).
   */
  numLateRecordsDropped = 0;
  currentInputWatermark: number | undefined = undefined;

  backPressureBegins(now: number): void {
    if (this.backPressuredSince === 0) this.backPressuredSince = now;
  }

  backPressureEnds(now: number): void {
    if (this.backPressuredSince === 0) return;
    this.backPressuredMs += now - this.backPressuredSince;
    this.backPressuredSince = 0;
  }

  sample(
    executionId: string,
    gate: InputGate | undefined,
    partitions: readonly ResultPartition[],
    creditsPerChannel: number,
  ): TaskMetrics {
    const now = performance.now();
    // a wait still under way counts up to now
    const waiting = this.backPressuredSince === 0 ? 0 : now - this.backPressuredSince;
    let bytesOut = 0;
    let outUsage = 0;
    for (const p of partitions) {
      bytesOut += p.bytesOut;
      outUsage = Math.max(outUsage, p.backlogUsage());
    }
    const channels = gate?.numberOfChannels ?? 0;
    return {
      executionId,
      recordsIn: this.recordsIn,
      recordsOut: this.recordsOut,
      bytesOut,
      bytesIn: gate?.bytesIn ?? 0,
      busyMs: this.busyMs,
      backpressuredMs: this.backPressuredMs + waiting,
      sampledAt: Date.now(),
      inputBufferUsage: channels > 0 ? Math.min(1, gate!.queuedFrames() / (channels * creditsPerChannel)) : 0,
      outputBufferUsage: outUsage,
      numLateRecordsDropped: this.numLateRecordsDropped,
      ...(this.currentInputWatermark !== undefined
        ? { currentInputWatermark: this.currentInputWatermark, hasInputWatermark: true }
        : {}),
    };
  }
}
