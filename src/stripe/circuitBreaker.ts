import { invariant } from '../domain/errors.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before one trial call is let through (half-open). */
  cooldownMs: number;
  now?: () => number;
  onStateChange?: (from: CircuitState, to: CircuitState) => void;
}

export class CircuitOpenError extends Error {
  constructor(readonly retryAfterMs: number) {
    super(`circuit open; next trial in ${retryAfterMs} ms`);
    this.name = 'CircuitOpenError';
  }
}

/**
 * Closed -> (failureThreshold consecutive failures) -> open: calls fail fast for cooldownMs ->
 * half-open: exactly one trial call; success closes the circuit, failure opens it for another cooldown.
 * Only failures the caller classifies as "the dependency is down" count (not declines or bad requests).
 */
export class CircuitBreaker {
  private current: CircuitState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    invariant(
      Number.isInteger(options.failureThreshold) && options.failureThreshold >= 1,
      'failureThreshold must be >= 1',
    );
    invariant(options.cooldownMs > 0, 'cooldownMs must be > 0');
    this.now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.options.cooldownMs) return 'half_open';
    return this.current;
  }

  async run<T>(fn: () => Promise<T>, countsAsFailure: (error: unknown) => boolean): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half_open' && this.trialInFlight)) {
      throw new CircuitOpenError(Math.max(0, this.options.cooldownMs - (this.now() - this.openedAt)));
    }
    const isTrial = state === 'half_open';
    if (isTrial) {
      this.transition('half_open');
      this.trialInFlight = true;
    }
    try {
      const result = await fn();
      this.failures = 0;
      if (this.current !== 'closed') this.transition('closed');
      return result;
    } catch (error) {
      if (countsAsFailure(error)) {
        this.failures++;
        if (isTrial || this.failures >= this.options.failureThreshold) {
          this.openedAt = this.now();
          this.transition('open');
        }
      } else if (isTrial) {
        // The dependency answered (e.g. a decline): it is up.
        this.failures = 0;
        this.transition('closed');
      }
      throw error;
    } finally {
      if (isTrial) this.trialInFlight = false;
    }
  }

  private transition(to: CircuitState): void {
    const from = this.current;
    this.current = to;
    if (from !== to) this.options.onStateChange?.(from, to);
  }
}
