import { invariant } from './errors.js';
import type { JournalEntry, Posting, Side } from './journal.js';

/**
 * The four TigerBeetle totals of one account in one currency. Posted totals only ever rise; pending
 * totals rise with a hold and fall by exactly the hold when it resolves, so they never go negative.
 */
export interface AccountTotals {
  debitsPending: number;
  debitsPosted: number;
  creditsPending: number;
  creditsPosted: number;
}

export const emptyTotals = (): AccountTotals => ({
  debitsPending: 0,
  debitsPosted: 0,
  creditsPending: 0,
  creditsPosted: 0,
});

/** Applies one posting to an account's totals, returning new totals (the input is not changed). */
export function applyPosting(totals: AccountTotals, posting: Posting): AccountTotals {
  invariant(
    Number.isSafeInteger(posting.amount) && posting.amount > 0,
    () => `posting on ${posting.account}: amount ${posting.amount} is not a positive safe integer`,
  );
  const next = { ...totals };
  const debit = posting.side === 'debit';
  switch (posting.effect) {
    case 'post':
      if (debit) next.debitsPosted += posting.amount;
      else next.creditsPosted += posting.amount;
      break;
    case 'hold':
      if (debit) next.debitsPending += posting.amount;
      else next.creditsPending += posting.amount;
      break;
    case 'release':
      if (debit) next.debitsPending -= posting.amount;
      else next.creditsPending -= posting.amount;
      break;
  }
  invariant(
    next.debitsPending >= 0 && next.creditsPending >= 0,
    () => `posting on ${posting.account}: releasing ${posting.amount} more than is pending`,
  );
  invariant(
    next.debitsPosted >= totals.debitsPosted && next.creditsPosted >= totals.creditsPosted,
    () => `posting on ${posting.account}: posted totals decreased`,
  );
  invariant(
    Number.isSafeInteger(next.debitsPosted) &&
      Number.isSafeInteger(next.creditsPosted) &&
      Number.isSafeInteger(next.debitsPending) &&
      Number.isSafeInteger(next.creditsPending),
    () => `posting on ${posting.account}: totals overflow Number.MAX_SAFE_INTEGER`,
  );
  return next;
}

/** Applies every posting of `entry` that touches `account` (in `currency`, when given). */
export function applyEntryToAccount(
  totals: AccountTotals,
  entry: JournalEntry,
  account: string,
  currency?: string,
): AccountTotals {
  let next = totals;
  for (const posting of entry.postings) {
    if (posting.account !== account) continue;
    invariant(
      currency === undefined || posting.currency === currency,
      () => `entry ${entry.entryId}: ${account} is in ${currency}, posting is in ${posting.currency}`,
    );
    next = applyPosting(next, posting);
  }
  return next;
}

/**
 * What can be spent: credit-normal `credits_posted - debits_posted - debits_pending`; debit-normal the
 * mirror `debits_posted - credits_posted - credits_pending`. Incoming pending money does not count,
 * outgoing pending money does.
 */
export function available(totals: AccountTotals, normalSide: Side): number {
  return normalSide === 'credit'
    ? totals.creditsPosted - totals.debitsPosted - totals.debitsPending
    : totals.debitsPosted - totals.creditsPosted - totals.creditsPending;
}

/** Posted balance on the account's normal side. */
export function postedBalance(totals: AccountTotals, normalSide: Side): number {
  return normalSide === 'credit'
    ? totals.creditsPosted - totals.debitsPosted
    : totals.debitsPosted - totals.creditsPosted;
}

/** Outgoing pending money (holds on the account's non-normal side). */
export function pendingOutgoing(totals: AccountTotals, normalSide: Side): number {
  return normalSide === 'credit' ? totals.debitsPending : totals.creditsPending;
}

/** Asserts the account constraint `available >= minAvailable` (a broken one is a bug, not a user error). */
export function assertWithinConstraint(
  totals: AccountTotals,
  normalSide: Side,
  minAvailable: number,
  account: string,
): void {
  const value = available(totals, normalSide);
  invariant(value >= minAvailable, () => `${account}: available ${value} is below its limit ${minAvailable}`);
}
