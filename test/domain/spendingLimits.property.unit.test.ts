import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { LIMIT_NAMES, NO_LIMITS, type SpendingLimits } from '../../src/domain/spendingLimits.js';
import { type WalletEvent, type WalletState, walletDecider } from '../../src/domain/wallet.js';

/**
 * The guardian rule of spending limits, over random sequences of limit changes by students, guardians
 * and tenant admins with and without a guardian linked: whatever a student with a guardian asks for,
 * no limit ends up higher than it was (nor removed); every other change is applied as asked; the same
 * limits again append nothing.
 */
const limitArb = fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: null });
const changeArb = fc.record({
  role: fc.constantFrom('student', 'guardian', 'tenant_admin'),
  guardianLinked: fc.boolean(),
  limits: fc.record({ perBooking: limitArb, perDay: limitArb, perWeek: limitArb, perMonth: limitArb }),
});

const notHigher = (before: SpendingLimits, after: SpendingLimits): boolean =>
  LIMIT_NAMES.every((n) => before[n] === null || (after[n] !== null && after[n]! <= before[n]!));

describe('spending limits: the guardian rule', () => {
  it('a student with a guardian never raises or removes a limit; everyone else sets what they ask', () => {
    fc.assert(
      fc.property(fc.array(changeArb, { maxLength: 30 }), (changes) => {
        let state: WalletState = walletDecider.initialState();
        for (const [i, change] of changes.entries()) {
          const before = state.spending.limits;
          let events: WalletEvent[];
          try {
            events = walletDecider.decide(
              {
                type: 'SetSpendingLimits',
                studentId: 's1',
                currency: 'usd',
                limits: change.limits,
                actor: { id: change.role === 'student' ? 's1' : `${change.role}_1`, role: change.role },
                setAt: new Date(Date.UTC(2026, 11, 1, 0, i)).toISOString(),
                guardianLinked: change.guardianLinked,
              },
              state,
            );
          } catch (error) {
            expect(error).toBeInstanceOf(DomainError);
            expect((error as DomainError).code).toBe('forbidden');
            expect(change.role === 'student' && change.guardianLinked).toBe(true);
            expect(notHigher(before, change.limits)).toBe(false);
            continue;
          }
          state = events.reduce(walletDecider.evolve, state);
          expect(state.spending.limits).toEqual(change.limits);
          if (change.role === 'student' && change.guardianLinked) {
            expect(notHigher(before, state.spending.limits)).toBe(true);
          }
          const same = LIMIT_NAMES.every((n) => before[n] === change.limits[n]);
          expect(events.length).toBe(same ? 0 : 1);
        }
        expect(Object.keys(state.spending.limits).sort()).toEqual(Object.keys(NO_LIMITS).sort());
      }),
      { numRuns: 300 },
    );
  });
});
