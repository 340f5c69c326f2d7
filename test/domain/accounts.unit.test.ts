import { describe, expect, it } from 'vitest';
import {
  accountInfo,
  accountPath,
  bookingClearing,
  isConstrained,
  PLATFORM_ADJUSTMENTS,
  PLATFORM_EXPENSE_DISPUTES,
  PLATFORM_EXPENSE_PROMOTIONS,
  PLATFORM_EXPENSE_STRIPE_FEES,
  PLATFORM_REVENUE_COMMISSION,
  PLATFORM_REVENUE_SUBSCRIPTIONS,
  parseAccount,
  payoutClearing,
  refundClearing,
  requireAccount,
  STRIPE_BALANCE,
  studentWallet,
  tutorEarningsAvailable,
  tutorEarningsPending,
  tutorReceivable,
} from '../../src/domain/accounts.js';
import { DomainError } from '../../src/domain/errors.js';

describe('account paths', () => {
  const table: Array<[string, string, string, string | null]> = [
    [studentWallet('s1'), 'liability', 'credit', 'wallet'],
    [tutorEarningsPending('t1'), 'liability', 'credit', null],
    [tutorEarningsAvailable('t1'), 'liability', 'credit', 'tutor'],
    [tutorReceivable('t1'), 'asset', 'debit', null],
    [PLATFORM_REVENUE_COMMISSION, 'revenue', 'credit', null],
    [PLATFORM_REVENUE_SUBSCRIPTIONS, 'revenue', 'credit', null],
    [PLATFORM_EXPENSE_PROMOTIONS, 'expense', 'debit', null],
    [PLATFORM_EXPENSE_STRIPE_FEES, 'expense', 'debit', null],
    [PLATFORM_EXPENSE_DISPUTES, 'expense', 'debit', null],
    [PLATFORM_ADJUSTMENTS, 'expense', 'debit', null],
    [STRIPE_BALANCE, 'asset', 'debit', null],
    [bookingClearing('b-1'), 'clearing', 'credit', null],
    [refundClearing('r_1'), 'clearing', 'credit', null],
    [payoutClearing('p1'), 'clearing', 'credit', null],
  ];

  it.each(table)('%s is %s, %s-normal, owned by %s', (path, kind, side, owner) => {
    const info = accountInfo(path);
    expect(info.kind).toBe(kind);
    expect(info.normalSide).toBe(side);
    expect(info.constraint?.ownerCategory ?? null).toBe(owner);
    if (owner) expect(info.constraint?.minAvailable).toBe(0);
    expect(isConstrained(path)).toBe(owner !== null);
    expect(accountPath(requireAccount(path))).toBe(path);
  });

  it('builds the paths of the conventions', () => {
    expect(studentWallet('s1')).toBe('student:s1:wallet');
    expect(tutorEarningsPending('t1')).toBe('tutor:t1:earnings:pending');
    expect(tutorEarningsAvailable('t1')).toBe('tutor:t1:earnings:available');
    expect(tutorReceivable('t1')).toBe('tutor:t1:receivable');
    expect(bookingClearing('b1')).toBe('clearing:booking:b1');
    expect(parseAccount('clearing:refund:r1')).toEqual({ kind: 'clearing', flow: 'refund', id: 'r1' });
  });

  it.each([
    'student:s1',
    'student:s1:wallet:x',
    'student::wallet',
    'student:s 1:wallet',
    'tutor:t1:earnings',
    'tutor:t1:earnings:frozen',
    'platform:revenue',
    'platform:revenue:other',
    'clearing:Booking:b1',
    'clearing:booking',
    'stripe:balance:x',
    'constructor',
    '__proto__',
    '',
  ])('does not know %j', (path) => {
    expect(parseAccount(path)).toBeNull();
    expect(() => requireAccount(path)).toThrow(DomainError);
  });

  it('refuses ids that would break the path', () => {
    expect(() => studentWallet('a:b')).toThrow(DomainError);
    expect(() => tutorEarningsAvailable('')).toThrow(DomainError);
  });
});
