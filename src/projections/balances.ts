import { describeAccount, parseAccount } from '../domain/accounts.js';
import { InvariantViolation } from '../domain/errors.js';
import type { Posting, Side } from '../domain/journal.js';

/** An account's four totals (TigerBeetle style), all non-negative safe integers. */
export interface Totals {
  debitsPending: number;
  debitsPosted: number;
  creditsPending: number;
  creditsPosted: number;
}

export const ZERO_TOTALS: Totals = Object.freeze({
  debitsPending: 0,
  debitsPosted: 0,
  creditsPending: 0,
  creditsPosted: 0,
});

/**
 * Normal side of an account path. Paths the domain does not know (none should reach the store; the
 * deciders validate them) are treated as credit-normal so a projection never stalls on them; the
 * verifier folds with the same rule.
 */
export function normalSideOf(account: string): Side {
  const ref = parseAccount(account);
  return ref ? describeAccount(ref).normalSide : 'credit';
}

/** One posting line moves exactly one total: post adds to posted, hold adds to pending, release subtracts. */
export function applyPosting(t: Totals, p: Posting): Totals {
  const next = { ...t };
  applyPostingInPlace(next, p);
  return next;
}

/** applyPosting on `t` itself, for folds that own their totals (no copy per posting line). */
export function applyPostingInPlace(t: Totals, p: Posting): void {
  if (p.effect === 'post') {
    if (p.side === 'debit') t.debitsPosted += p.amount;
    else t.creditsPosted += p.amount;
  } else {
    const delta = p.effect === 'hold' ? p.amount : -p.amount;
    if (p.side === 'debit') t.debitsPending += delta;
    else t.creditsPending += delta;
  }
  // Thrown directly on this per-posting path: no message closure is allocated unless it fails.
  if (!Number.isSafeInteger(t.debitsPosted + t.creditsPosted + t.debitsPending + t.creditsPending)) {
    throw new InvariantViolation(`totals of ${p.account} overflow`);
  }
}

/** Credit-normal: credits_posted - debits_posted - debits_pending; debit-normal: the mirror. */
export function availableOf(t: Totals, side: Side): number {
  return side === 'credit'
    ? t.creditsPosted - t.debitsPosted - t.debitsPending
    : t.debitsPosted - t.creditsPosted - t.creditsPending;
}

/** Net posted balance in the account's normal direction. */
export function postedOf(t: Totals, side: Side): number {
  return side === 'credit' ? t.creditsPosted - t.debitsPosted : t.debitsPosted - t.creditsPosted;
}

/** Net pending amount reserved against the account (held debits of a credit-normal account, and mirror). */
export function pendingOf(t: Totals, side: Side): number {
  return side === 'credit' ? t.debitsPending - t.creditsPending : t.creditsPending - t.debitsPending;
}

export function balanceKey(tenantId: string, account: string, currency: string): string {
  return `${tenantId}\u0000${account}\u0000${currency}`;
}
