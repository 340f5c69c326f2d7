import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AccountTotals,
  applyEntryToAccount,
  applyPosting,
  available,
  emptyTotals,
  postedBalance,
} from '../../src/domain/balances.js';
import { InvariantViolation } from '../../src/domain/errors.js';
import type { Effect, Posting, Side } from '../../src/domain/journal.js';
import { holdEntry } from '../../src/domain/journal.js';
import { uuid } from './fixtures.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 200);
const posting = (side: Side, effect: Effect, amount: number): Posting => ({
  account: 'student:s1:wallet',
  side,
  effect,
  amount,
  currency: 'usd',
});

describe('account totals', () => {
  it('moves exactly one of the four totals per posting', () => {
    let t = emptyTotals();
    t = applyPosting(t, posting('credit', 'post', 1000));
    t = applyPosting(t, posting('debit', 'hold', 300));
    expect(t).toEqual({ debitsPending: 300, debitsPosted: 0, creditsPending: 0, creditsPosted: 1000 });
    expect(available(t, 'credit')).toBe(700);
    t = applyPosting(t, posting('debit', 'release', 300));
    t = applyPosting(t, posting('debit', 'post', 250));
    expect(t).toEqual({ debitsPending: 0, debitsPosted: 250, creditsPending: 0, creditsPosted: 1000 });
    expect(available(t, 'credit')).toBe(750);
    expect(postedBalance(t, 'credit')).toBe(750);
  });

  it('computes debit-normal available as the mirror', () => {
    const t: AccountTotals = { debitsPending: 5, debitsPosted: 100, creditsPending: 30, creditsPosted: 20 };
    expect(available(t, 'debit')).toBe(100 - 20 - 30);
    expect(available(t, 'credit')).toBe(20 - 100 - 5);
  });

  it('refuses to release more than is pending', () => {
    const t = applyPosting(emptyTotals(), posting('debit', 'hold', 10));
    expect(() => applyPosting(t, posting('debit', 'release', 11))).toThrow(InvariantViolation);
    expect(() => applyPosting(emptyTotals(), posting('credit', 'release', 1))).toThrow(InvariantViolation);
  });

  it('refuses non-positive amounts', () => {
    expect(() => applyPosting(emptyTotals(), posting('credit', 'post', 0))).toThrow(InvariantViolation);
    expect(() => applyPosting(emptyTotals(), posting('credit', 'post', -1))).toThrow(InvariantViolation);
  });

  it('applies only the postings of the account', () => {
    const entry = holdEntry({
      entryId: uuid('h'),
      holdId: uuid('hold'),
      description: 'hold',
      currency: 'usd',
      hold: { debitAccount: 'student:s1:wallet', creditAccount: 'clearing:booking:b1', amount: 40 },
    });
    expect(applyEntryToAccount(emptyTotals(), entry, 'student:s1:wallet').debitsPending).toBe(40);
    expect(applyEntryToAccount(emptyTotals(), entry, 'clearing:booking:b1').creditsPending).toBe(40);
    expect(applyEntryToAccount(emptyTotals(), entry, 'student:s2:wallet')).toEqual(emptyTotals());
    expect(() => applyEntryToAccount(emptyTotals(), entry, 'student:s1:wallet', 'eur')).toThrow(
      InvariantViolation,
    );
  });

  it('property: posted totals never decrease and pending never goes negative over holds and resolutions', () => {
    const op = fc.record({
      kind: fc.constantFrom('post', 'hold', 'resolve'),
      side: fc.constantFrom<Side>('debit', 'credit'),
      amount: fc.integer({ min: 1, max: 1_000_000 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        let t = emptyTotals();
        const open: Array<{ side: Side; amount: number }> = [];
        for (const o of ops) {
          const before = t;
          if (o.kind === 'post') t = applyPosting(t, posting(o.side, 'post', o.amount));
          else if (o.kind === 'hold') {
            t = applyPosting(t, posting(o.side, 'hold', o.amount));
            open.push({ side: o.side, amount: o.amount });
          } else {
            const hold = open.shift();
            if (hold) t = applyPosting(t, posting(hold.side, 'release', hold.amount));
          }
          expect(t.debitsPosted).toBeGreaterThanOrEqual(before.debitsPosted);
          expect(t.creditsPosted).toBeGreaterThanOrEqual(before.creditsPosted);
          expect(t.debitsPending).toBeGreaterThanOrEqual(0);
          expect(t.creditsPending).toBeGreaterThanOrEqual(0);
        }
        const openDebits = open.filter((h) => h.side === 'debit').reduce((a, h) => a + h.amount, 0);
        expect(t.debitsPending).toBe(openDebits);
      }),
      { numRuns: RUNS },
    );
  });
});
