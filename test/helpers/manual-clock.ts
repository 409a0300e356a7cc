import type { ProcessingTimeService } from '../../packages/taskmanager/src/eventtime/internal-timer-service.js';

/** A processing-time clock the test moves by hand; due timers fire in time order on `advance`. */
export class ManualClock implements ProcessingTimeService {
  now = 0;
  private readonly scheduled: { time: number; cb: (t: number) => void; cancelled: boolean }[] = [];

  getCurrentProcessingTime(): number {
    return this.now;
  }

  registerTimer(time: number, cb: (t: number) => void): { cancel(): void } {
    const entry = { time, cb, cancelled: false };
    this.scheduled.push(entry);
    return { cancel: () => (entry.cancelled = true) };
  }

  advance(to: number): void {
    this.now = to;
    for (;;) {
      const due = this.scheduled
        .filter((e) => !e.cancelled && e.time <= to)
        .sort((a, b) => a.time - b.time)[0];
      if (!due) return;
      due.cancelled = true;
      due.cb(to);
    }
  }

  /** times of the timers still waiting */
  pending(): number[] {
    return this.scheduled.filter((e) => !e.cancelled).map((e) => e.time);
  }
}
