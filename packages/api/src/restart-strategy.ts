/**
 * How a job restarts after a failure, with the meanings and defaults of Flink's restart
 * strategies. Serializable: it travels in the job graph and in the cluster configuration.
 */
export type RestartStrategyConfiguration =
  | { type: 'none' }
  | { type: 'fixed-delay'; attempts: number; delayMs: number }
  | {
      type: 'exponential-delay';
      initialBackoffMs: number;
      maxBackoffMs: number;
      multiplier: number;
      /** the delay varies by up to this fraction either way, so restarts of many jobs spread out */
      jitterFactor: number;
      /** running this long without a failure resets the backoff to its initial value */
      resetBackoffThresholdMs: number;
      /** restarts allowed before the job fails; unlimited (MAX_SAFE_INTEGER, JSON-safe) by default */
      attempts: number;
    }
  | { type: 'failure-rate'; maxFailuresPerInterval: number; failureRateIntervalMs: number; delayMs: number };

export type RestartStrategyType = RestartStrategyConfiguration['type'];

/** Flink's defaults for each strategy's settings. */
export const RESTART_STRATEGY_DEFAULTS = {
  'fixed-delay': { type: 'fixed-delay', attempts: 1, delayMs: 1_000 },
  'exponential-delay': {
    type: 'exponential-delay',
    initialBackoffMs: 1_000,
    maxBackoffMs: 60_000,
    multiplier: 1.5,
    jitterFactor: 0.1,
    resetBackoffThresholdMs: 3_600_000,
    attempts: Number.MAX_SAFE_INTEGER,
  },
  'failure-rate': {
    type: 'failure-rate',
    maxFailuresPerInterval: 1,
    failureRateIntervalMs: 60_000,
    delayMs: 1_000,
  },
  none: { type: 'none' },
} as const satisfies Record<RestartStrategyType, RestartStrategyConfiguration>;

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

const nonNegative = (v: number): boolean => Number.isFinite(v) && v >= 0;

/** Throws a message naming the setting when a strategy is out of range. */
export function validateRestartStrategy(s: RestartStrategyConfiguration): RestartStrategyConfiguration {
  switch (s.type) {
    case 'none':
      break;
    case 'fixed-delay':
      check(
        Number.isInteger(s.attempts) && s.attempts >= 0,
        `Restart attempts must be an integer >= 0, got ${s.attempts}`,
      );
      check(nonNegative(s.delayMs), `Restart delay must be >= 0 ms, got ${s.delayMs}`);
      break;
    case 'exponential-delay':
      check(nonNegative(s.initialBackoffMs), `Initial backoff must be >= 0 ms, got ${s.initialBackoffMs}`);
      check(
        nonNegative(s.maxBackoffMs) && s.maxBackoffMs >= s.initialBackoffMs,
        `Max backoff must be >= the initial backoff, got ${s.maxBackoffMs}`,
      );
      check(
        Number.isFinite(s.multiplier) && s.multiplier >= 1,
        `Backoff multiplier must be >= 1, got ${s.multiplier}`,
      );
      check(
        Number.isFinite(s.jitterFactor) && s.jitterFactor >= 0 && s.jitterFactor <= 1,
        `Jitter factor must be within 0..1, got ${s.jitterFactor}`,
      );
      check(
        nonNegative(s.resetBackoffThresholdMs),
        `Reset-backoff threshold must be >= 0 ms, got ${s.resetBackoffThresholdMs}`,
      );
      check(
        Number.isInteger(s.attempts) && s.attempts >= 0,
        `Restart attempts must be an integer >= 0, got ${s.attempts}`,
      );
      break;
    case 'failure-rate':
      check(
        Number.isInteger(s.maxFailuresPerInterval) && s.maxFailuresPerInterval >= 1,
        `Max failures per interval must be an integer >= 1, got ${s.maxFailuresPerInterval}`,
      );
      check(
        Number.isFinite(s.failureRateIntervalMs) && s.failureRateIntervalMs > 0,
        `Failure-rate interval must be > 0 ms, got ${s.failureRateIntervalMs}`,
      );
      check(nonNegative(s.delayMs), `Restart delay must be >= 0 ms, got ${s.delayMs}`);
      break;
    default:
      throw new Error(
        `Unknown restart strategy ${JSON.stringify((s as { type: unknown }).type)}; expected none, fixed-delay, exponential-delay or failure-rate`,
      );
  }
  return s;
}

/** Factories shaped after Flink's RestartStrategies. */
export const RestartStrategies = {
  noRestart(): RestartStrategyConfiguration {
    return { type: 'none' };
  },
  fixedDelayRestart(attempts: number, delayMs: number): RestartStrategyConfiguration {
    return validateRestartStrategy({ type: 'fixed-delay', attempts, delayMs });
  },
  exponentialDelayRestart(
    initialBackoffMs: number,
    maxBackoffMs: number,
    multiplier: number,
    resetBackoffThresholdMs: number,
    jitterFactor: number,
    attempts = Number.MAX_SAFE_INTEGER,
  ): RestartStrategyConfiguration {
    return validateRestartStrategy({
      type: 'exponential-delay',
      initialBackoffMs,
      maxBackoffMs,
      multiplier,
      resetBackoffThresholdMs,
      jitterFactor,
      attempts,
    });
  },
  failureRateRestart(
    maxFailuresPerInterval: number,
    failureRateIntervalMs: number,
    delayMs: number,
  ): RestartStrategyConfiguration {
    return validateRestartStrategy({
      type: 'failure-rate',
      maxFailuresPerInterval,
      failureRateIntervalMs,
      delayMs,
    });
  },
};
