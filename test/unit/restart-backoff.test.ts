import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RESTART_STRATEGY_DEFAULTS,
  validateRestartStrategy,
} from '../../packages/api/src/restart-strategy.js';
import { RestartBackoff } from '../../packages/jobmanager/src/restart-backoff.js';

describe('RestartBackoff', () => {
  test('none never restarts', () => {
    const b = new RestartBackoff({ type: 'none' });
    assert.equal(b.onFailure(0), undefined);
    assert.match(b.describe(), /none/);
  });

  test('fixed-delay allows exactly its attempts, each after the delay', () => {
    const b = new RestartBackoff({ type: 'fixed-delay', attempts: 2, delayMs: 250 });
    assert.equal(b.onFailure(0), 250);
    assert.equal(b.onFailure(10), 250);
    assert.equal(b.onFailure(20), undefined);
    assert.match(b.describe(), /2 attempt\(s\) used up/);
  });

  test('failure-rate counts only failures inside the sliding interval', () => {
    const b = new RestartBackoff({
      type: 'failure-rate',
      maxFailuresPerInterval: 2,
      failureRateIntervalMs: 1_000,
      delayMs: 5,
    });
    assert.equal(b.onFailure(0), 5);
    assert.equal(b.onFailure(400), 5);
    // a third failure inside [0, 1000) exceeds the rate
    assert.equal(b.onFailure(900), undefined);
    const c = new RestartBackoff({
      type: 'failure-rate',
      maxFailuresPerInterval: 2,
      failureRateIntervalMs: 1_000,
      delayMs: 5,
    });
    assert.equal(c.onFailure(0), 5);
    assert.equal(c.onFailure(400), 5);
    // the failure at 0 has left the interval by 1000: two in the window, still allowed
    assert.equal(c.onFailure(1_000), 5);
    assert.equal(c.onFailure(1_300), undefined);
  });

  test('exponential-delay grows by the multiplier up to the maximum and resets after a quiet period', () => {
    const b = new RestartBackoff({
      type: 'exponential-delay',
      initialBackoffMs: 100,
      maxBackoffMs: 1_000,
      multiplier: 2,
      jitterFactor: 0,
      resetBackoffThresholdMs: 10_000,
      attempts: 100,
    });
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 6; i++) {
      now += 50;
      delays.push(b.onFailure(now)!);
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1_000, 1_000]);
    // quiet for longer than threshold + current backoff: back to the initial backoff
    assert.equal(b.onFailure(now + 11_001), 100);
  });

  test('exponential-delay jitter stays within the factor and attempts run out', () => {
    const b = new RestartBackoff({
      type: 'exponential-delay',
      initialBackoffMs: 1_000,
      maxBackoffMs: 1_000,
      multiplier: 1.5,
      jitterFactor: 0.1,
      resetBackoffThresholdMs: 1e9,
      attempts: 50,
    });
    for (let i = 1; i <= 50; i++) {
      const d = b.onFailure(i)!;
      assert.ok(d >= 900 && d <= 1_100, `delay ${d} outside 1000 ± 10%`);
    }
    assert.equal(b.onFailure(51), undefined);
  });

  test('the defaults validate, and bad settings are refused with the setting named', () => {
    for (const s of Object.values(RESTART_STRATEGY_DEFAULTS)) validateRestartStrategy(s);
    assert.throws(
      () => validateRestartStrategy({ type: 'fixed-delay', attempts: -1, delayMs: 1 }),
      /Restart attempts must be an integer >= 0, got -1/,
    );
    assert.throws(
      () => validateRestartStrategy({ ...RESTART_STRATEGY_DEFAULTS['exponential-delay'], multiplier: 0.5 }),
      /multiplier must be >= 1, got 0.5/,
    );
  });
});
