import { describeAccount, parseAccount } from './accounts.js';
import type { AccountTotals } from './balances.js';
import { DomainError } from './errors.js';
import type { JournalEntry, Posting } from './journal.js';

/**
 * The bounds that keep every event applicable by the read side (docs/guarantees.md, "Limits").
 *
 * The read side keeps each account's four totals as JavaScript numbers and asserts that their sum is
 * a safe integer (src/projections/balances.ts); the verifier and the daily metrics add several
 * accounts of a tenant together. A command whose event would break that is refused before the append
 * with `account_limit_exceeded` (422), naming the account and the limit:
 *
 *  - every posting line is at most MAX_POSTING_AMOUNT;
 *  - an account's volume (the sum of its four totals) stays at most ACCOUNT_VOLUME_LIMIT after a
 *    command that starts something (a hold for a booking or a payout, a manual adjustment:
 *    LIMITED_COMMANDS), and at most STEP_VOLUME_LIMIT after one that carries on what was started or
 *    records a fact from Stripe (a capture, a release, a refund, a credited top-up, cleared earnings).
 *    Refusing those would strand money a flow already moved or Stripe already took, so they get the
 *    room between the two limits; everything in flight fits there, since it was admitted under the
 *    lower one.
 *
 * The stream that owns a constrained account (a wallet, a tutor's available earnings) knows its totals
 * and checks exactly in `decide`. An unconstrained account many streams post to (platform:*,
 * stripe:*, clearing:*) is checked by the command layer against the read model's totals
 * (src/commands/accountVolumeGuard.ts), which may lag: STEP_VOLUME_LIMIT is 2^52, half of
 * Number.MAX_SAFE_INTEGER, so the other half absorbs what the read model had not applied yet (some 450
 * maximum-size postings on one account) and sums over a tenant's accounts.
 */
export const MAX_POSTING_AMOUNT = 10 ** 13;
export const ACCOUNT_VOLUME_LIMIT = 2 ** 50;
export const STEP_VOLUME_LIMIT = 2 ** 52;
/** From here on the command layer reads a shared account's exact volume before posting to it. */
export const ACCOUNT_VOLUME_WATCH_FROM = ACCOUNT_VOLUME_LIMIT / 2;

/** Commands that start a movement of money on the ledger's own initiative (the lower limit applies). */
export const LIMITED_COMMANDS: ReadonlySet<string> = new Set([
  'PlaceWalletHold',
  'ChargeSubscription',
  'PlacePayoutHold',
  'AdjustWallet',
  'AdjustTutor',
  'AdjustLedger',
]);

/** The volume limit of the accounts a command of this type posts to. */
export function volumeLimitFor(commandType: string): number {
  return LIMITED_COMMANDS.has(commandType) ? ACCOUNT_VOLUME_LIMIT : STEP_VOLUME_LIMIT;
}

/** The sum of an account's four totals: what the read side requires to stay a safe integer. */
export function accountVolume(totals: AccountTotals): number {
  return totals.debitsPending + totals.debitsPosted + totals.creditsPending + totals.creditsPosted;
}

/** How an entry changes the volume of `account` in `currency`: posts and holds add, releases take away. */
export function volumeDelta(entry: JournalEntry, account: string, currency: string): number {
  let delta = 0;
  for (const p of entry.postings) {
    if (p.account === account && p.currency === currency)
      delta += p.effect === 'release' ? -p.amount : p.amount;
  }
  return delta;
}

export function accountLimitExceeded(input: {
  account: string;
  currency: string;
  volume: number;
  added: number;
  limit: number;
}): DomainError {
  const { account, currency, volume, added, limit } = input;
  return new DomainError(
    'account_limit_exceeded',
    `${account} (${currency}) would reach a volume of ${volume + added} minor units (its four totals together), above the ledger's limit of ${limit} per account`,
    { account, currency, limit, volume, amount: added },
  );
}

/** Refuses a posting line above MAX_POSTING_AMOUNT. */
export function assertPostingWithinLimit(posting: Posting): void {
  if (posting.amount > MAX_POSTING_AMOUNT) {
    throw new DomainError(
      'account_limit_exceeded',
      `a posting of ${posting.amount} minor units on ${posting.account} is above the ledger's limit of ${MAX_POSTING_AMOUNT} per posting`,
      {
        account: posting.account,
        currency: posting.currency,
        limit: MAX_POSTING_AMOUNT,
        amount: posting.amount,
      },
    );
  }
}

/**
 * The exact check of the stream that owns `account`: `totals` are the account's totals in the stream's
 * state before `entries`, the entries the command is about to append, in order.
 */
export function assertOwnedAccountWithinLimit(
  totals: AccountTotals,
  account: string,
  currency: string,
  entries: readonly JournalEntry[],
  limit: number,
): void {
  let volume = accountVolume(totals);
  for (const entry of entries) {
    for (const p of entry.postings) assertPostingWithinLimit(p);
    const delta = volumeDelta(entry, account, currency);
    if (delta > 0 && volume + delta > limit)
      throw accountLimitExceeded({ account, currency, volume, added: delta, limit });
    volume += delta;
  }
}

/** The entries of a command's events, in order (events that move no money carry none). */
export function entriesOf(events: readonly { data: unknown }[]): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const e of events) {
    const entry = (e.data as { entry?: JournalEntry } | null)?.entry;
    if (entry) out.push(entry);
  }
  return out;
}

/** What an entry does to one shared account: its exact volume change, and the part that only adds. */
export interface SharedAccountChange {
  account: string;
  currency: string;
  delta: number;
  growth: number;
}

/**
 * Accounts of an entry no single stream owns, whose totals only the read model knows (the command
 * layer checks them there): every unconstrained account, keyed `account\0currency`, with what the
 * entry does to each.
 */
export function sharedAccountsOf(entry: JournalEntry): Map<string, SharedAccountChange> {
  const out = new Map<string, SharedAccountChange>();
  for (const p of entry.postings) {
    const ref = parseAccount(p.account);
    // An account the domain does not know cannot be posted (the deciders validate paths); checking it
    // as shared is the safe side.
    if (ref && describeAccount(ref).constraint !== null) continue;
    const account = p.account;
    const key = `${account}\u0000${p.currency}`;
    const change = out.get(key) ?? { account, currency: p.currency, delta: 0, growth: 0 };
    change.delta += p.effect === 'release' ? -p.amount : p.amount;
    if (p.effect !== 'release') change.growth += p.amount;
    out.set(key, change);
  }
  return out;
}
