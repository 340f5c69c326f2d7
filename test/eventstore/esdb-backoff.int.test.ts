import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../src/eventstore/esdbSubscription.js';

describe('esdb resubscribe backoff', () => {
  it('is jittered within [base/2, base] where base doubles from the initial delay up to the cap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 60_000 }),
        (attempt, initialBackoffMs, extraMs) => {
          const policy = {
            maxConsecutiveFailures: 10,
            initialBackoffMs,
            maxBackoffMs: initialBackoffMs + extraMs,
          };
          const base = Math.min(policy.maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempt - 1, 20));
          const delay = backoffMs(attempt, policy);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(base / 2));
          expect(delay).toBeLessThanOrEqual(Math.ceil(base));
          expect(delay).toBeLessThanOrEqual(policy.maxBackoffMs);
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 200) },
    );
  });
});
