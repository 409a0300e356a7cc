import type { TaskMetrics__Output } from '../rpc/types.js';

/** Per-second figures of a task between two of its samples (Flink's rates and *TimeMsPerSecond). */
export interface TaskRates {
  recordsInPerSecond: number;
  recordsOutPerSecond: number;
  bytesInPerSecond: number;
  bytesOutPerSecond: number;
  busyTimeMsPerSecond: number;
  backPressuredTimeMsPerSecond: number;
  idleTimeMsPerSecond: number;
}

export const NO_RATES: TaskRates = Object.freeze({
  recordsInPerSecond: 0,
  recordsOutPerSecond: 0,
  bytesInPerSecond: 0,
  bytesOutPerSecond: 0,
  busyTimeMsPerSecond: 0,
  backPressuredTimeMsPerSecond: 0,
  idleTimeMsPerSecond: 0,
});

/** A sample's field as a number (int64 fields may arrive as strings). */
const n = (v: number | string | undefined | null): number => Number(v ?? 0) || 0;

/**
 * Rates between an earlier and a later sample of one task; `undefined` when they were taken at
 * the same time (the same sample sent twice). Busy and back-pressured time are clamped to the
 * interval, idle is what remains, as in Flink, so the three add up to 1000.
 */
export function taskRates(prev: TaskMetrics__Output, cur: TaskMetrics__Output): TaskRates | undefined {
  const dtMs = n(cur.sampledAt) - n(prev.sampledAt);
  if (dtMs <= 0) return undefined;
  const perSecond = (a: number, b: number): number => Math.max(0, ((b - a) * 1000) / dtMs);
  // rounded before idle is derived, so the three whole numbers still add up to 1000
  const busy = Math.round(Math.min(1000, perSecond(n(prev.busyMs), n(cur.busyMs))));
  const bp = Math.round(Math.min(1000 - busy, perSecond(n(prev.backpressuredMs), n(cur.backpressuredMs))));
  return {
    recordsInPerSecond: perSecond(n(prev.recordsIn), n(cur.recordsIn)),
    recordsOutPerSecond: perSecond(n(prev.recordsOut), n(cur.recordsOut)),
    bytesInPerSecond: perSecond(n(prev.bytesIn), n(cur.bytesIn)),
    bytesOutPerSecond: perSecond(n(prev.bytesOut), n(cur.bytesOut)),
    busyTimeMsPerSecond: busy,
    backPressuredTimeMsPerSecond: bp,
    idleTimeMsPerSecond: 1000 - busy - bp,
  };
}

/**
 * The latest sample and rates of each task, fed with every sample as it arrives. A repeated
 * sample (same `sampledAt`) keeps the rates of the last real interval.
 */
export class TaskRateTracker {
  private readonly latest = new Map<string, { sample: TaskMetrics__Output; rates: TaskRates }>();

  update(cur: TaskMetrics__Output): { sample: TaskMetrics__Output; rates: TaskRates } {
    const prev = this.latest.get(cur.executionId);
    const rates = prev ? (taskRates(prev.sample, cur) ?? prev.rates) : NO_RATES;
    const entry = prev && n(prev.sample.sampledAt) === n(cur.sampledAt) ? prev : { sample: cur, rates };
    this.latest.set(cur.executionId, entry);
    return entry;
  }

  get(executionId: string): { sample: TaskMetrics__Output; rates: TaskRates } | undefined {
    return this.latest.get(executionId);
  }

  delete(executionId: string): void {
    this.latest.delete(executionId);
  }
}
