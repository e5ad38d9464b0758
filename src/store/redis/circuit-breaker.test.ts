import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './circuit-breaker.js';

/** A breaker (threshold 3, cooldown 1 s) on a clock the test moves. */
function breaker(threshold = 3, cooldownMs = 1_000) {
  const clock = { t: 1_000_000 };
  return { b: new CircuitBreaker(threshold, cooldownMs, () => clock.t), clock };
}

/** Reports `n` failures, each for a call the breaker allowed. */
function fail(b: CircuitBreaker, n: number): void {
  for (let i = 0; i < n; i++) {
    b.allow();
    b.failure();
  }
}

describe('CircuitBreaker', () => {
  it('starts closed and lets every call through', () => {
    const { b } = breaker();
    expect(b.open).toBe(false);
    for (let i = 0; i < 10; i++) expect(b.allow()).toBe(true);
  });

  it('stays closed below the threshold of consecutive failures', () => {
    const { b } = breaker();
    fail(b, 2);
    expect(b.open).toBe(false);
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(true);
  });

  it('opens after `threshold` consecutive failures and refuses calls during the cooldown', () => {
    const { b, clock } = breaker();
    fail(b, 3);
    expect(b.open).toBe(true);
    expect(b.allow()).toBe(false);
    clock.t += 999;
    expect(b.open).toBe(true);
    expect(b.allow()).toBe(false);
  });

  it('honours a custom threshold', () => {
    const { b } = breaker(1);
    fail(b, 1);
    expect(b.allow()).toBe(false);
  });

  it('a success resets the count of consecutive failures', () => {
    const { b } = breaker();
    fail(b, 2);
    b.success();
    fail(b, 2);
    expect(b.open).toBe(false);
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.open).toBe(true);
  });

  it('after the cooldown lets exactly one trial call through (half-open)', () => {
    const { b, clock } = breaker();
    fail(b, 3);
    clock.t += 1_000;
    expect(b.open).toBe(false);
    expect(b.allow()).toBe(true);
    // A second call while the trial is in flight is refused.
    expect(b.allow()).toBe(false);
    expect(b.allow()).toBe(false);
    clock.t += 10_000;
    expect(b.allow()).toBe(false);
  });

  it('closes when the trial succeeds', () => {
    const { b, clock } = breaker();
    fail(b, 3);
    clock.t += 1_000;
    expect(b.allow()).toBe(true);
    b.success();
    expect(b.open).toBe(false);
    for (let i = 0; i < 5; i++) expect(b.allow()).toBe(true);
    // Closed again means a full threshold of failures is needed to reopen.
    fail(b, 2);
    expect(b.allow()).toBe(true);
  });

  it('reopens for another full cooldown when the trial fails', () => {
    const { b, clock } = breaker();
    fail(b, 3);
    clock.t += 1_500;
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.open).toBe(true);
    expect(b.allow()).toBe(false);
    clock.t += 999;
    expect(b.allow()).toBe(false);
    clock.t += 1;
    // Half-open again: one new trial, and only one.
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(false);
    b.success();
    expect(b.allow()).toBe(true);
  });

  it('measures the cooldown from the last failure', () => {
    const { b, clock } = breaker(3, 500);
    fail(b, 2);
    clock.t += 10_000;
    fail(b, 1);
    expect(b.allow()).toBe(false);
    clock.t += 499;
    expect(b.allow()).toBe(false);
    clock.t += 1;
    expect(b.allow()).toBe(true);
  });
});
