import type { RestartStrategyConfiguration } from '@weir/api';

/**
 * Decides, failure by failure, whether a job may restart and after how long, after Flink's
 * RestartBackoffTimeStrategy implementations. One instance lives as long as its job.
 */
export class RestartBackoff {
  private restarts = 0;
  private backoffMs: number;
  private lastFailure = 0;
  private readonly failures: number[] = [];

  constructor(readonly strategy: RestartStrategyConfiguration) {
    this.backoffMs = strategy.type === 'exponential-delay' ? strategy.initialBackoffMs : 0;
  }

  /** Records a failure at `now`; the delay before the restart, or undefined when the job must fail. */
  onFailure(now = Date.now()): number | undefined {
    const s = this.strategy;
    switch (s.type) {
      case 'none':
        return undefined;
      case 'fixed-delay':
        if (this.restarts >= s.attempts) return undefined;
        this.restarts++;
        return s.delayMs;
      case 'failure-rate': {
        this.failures.push(now);
        while (this.failures.length > 0 && this.failures[0]! <= now - s.failureRateIntervalMs)
          this.failures.shift();
        if (this.failures.length > s.maxFailuresPerInterval) return undefined;
        this.restarts++;
        return s.delayMs;
      }
      case 'exponential-delay': {
        // a job that ran long enough without failing starts over with the initial backoff
        if (this.lastFailure > 0 && now - this.lastFailure >= s.resetBackoffThresholdMs + this.backoffMs) {
          this.backoffMs = s.initialBackoffMs;
          this.restarts = 0;
        } else if (this.lastFailure > 0) {
          this.backoffMs = Math.min(this.backoffMs * s.multiplier, s.maxBackoffMs);
        }
        this.lastFailure = now;
        if (this.restarts >= s.attempts) return undefined;
        this.restarts++;
        const jitter = this.backoffMs * s.jitterFactor * (Math.random() * 2 - 1);
        return Math.max(0, Math.round(this.backoffMs + jitter));
      }
    }
  }

  /** What the strategy allows, in words, for the cause of a job that could not restart. */
  describe(): string {
    const s = this.strategy;
    switch (s.type) {
      case 'none':
        return 'the restart strategy is none';
      case 'fixed-delay':
        return `fixed-delay restart strategy: ${s.attempts} attempt(s) used up`;
      case 'failure-rate':
        return `failure-rate restart strategy: more than ${s.maxFailuresPerInterval} failure(s) within ${s.failureRateIntervalMs} ms`;
      case 'exponential-delay':
        return `exponential-delay restart strategy: ${s.attempts} attempt(s) used up`;
    }
  }
}
