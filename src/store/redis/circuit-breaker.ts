/**
 * Fails fast while a dependency is known to be down. After `threshold` consecutive faults the
 * breaker opens: calls are refused at once for `cooldownMs`, then one trial call is let
 * through (half-open); its success closes the breaker, its failure opens it again.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private trialInFlight = false;

  constructor(
    private readonly threshold = 3,
    private readonly cooldownMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a call may go out now. A true answer in the half-open state claims the one trial. */
  allow(): boolean {
    if (this.failures < this.threshold) return true;
    if (this.now() < this.openUntil || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.trialInFlight = false;
  }

  failure(): void {
    this.failures++;
    this.trialInFlight = false;
    if (this.failures >= this.threshold) this.openUntil = this.now() + this.cooldownMs;
  }

  get open(): boolean {
    return this.failures >= this.threshold && this.now() < this.openUntil;
  }
}
