import { type Static, Type } from '@sinclair/typebox';
import { invariant } from './errors.js';
import { CURRENCY_CODE_PATTERN } from './money.js';
import {
  CurrencySchema,
  EffectSchema,
  PositiveAmountSchema,
  SideSchema,
  strictObject,
  UuidSchema,
} from './schema.js';

/**
 * Double-entry journal entries with two-phase (TigerBeetle-style) holds.
 *
 * Every line moves exactly one of an account's four totals up:
 *  - effect 'post':    debits_posted  or credits_posted  += amount
 *  - effect 'hold':    debits_pending or credits_pending += amount   (reserve)
 *  - effect 'release': debits_pending or credits_pending -= amount   (resolve a hold: post/void/expire)
 * Capturing a hold is one entry with 'release' lines for the whole hold and 'post' lines for what is
 * captured (possibly less, possibly split across accounts). Posted totals therefore never decrease.
 *
 * An entry balances when, per currency and per effect, debits equal credits.
 */
export type Side = Static<typeof SideSchema>;
export type Effect = Static<typeof EffectSchema>;

export const PostingSchema = strictObject({
  /** Account path inside the tenant, e.g. `student:s1:wallet` (see accounts.ts). */
  account: Type.String({ minLength: 1, maxLength: 300 }),
  side: SideSchema,
  effect: EffectSchema,
  /** Positive integer in minor units. */
  amount: PositiveAmountSchema,
  /** Lowercase ISO 4217 code. */
  currency: CurrencySchema,
});
export type Posting = Static<typeof PostingSchema>;

export const JournalEntrySchema = strictObject({
  /** Deterministic UUID (derived from the event id), unique across the tenant. */
  entryId: UuidSchema,
  /** Set on entries that place, or resolve, a hold; the hold's id (one hold resolves exactly once). */
  holdId: Type.Optional(UuidSchema),
  /** Human-readable reason shown in statements and audits. */
  description: Type.String({ maxLength: 2_000 }),
  postings: Type.Array(PostingSchema, { minItems: 2, maxItems: 100 }),
});
export type JournalEntry = Static<typeof JournalEntrySchema>;

// Messages are built lazily: the projection runs this for every entry it replays.
export function assertBalanced(entry: JournalEntry): void {
  invariant(
    entry.postings.length >= 2,
    () => `entry ${entry.entryId} has ${entry.postings.length} postings, needs >= 2`,
  );
  const sums = new Map<string, number>();
  for (const p of entry.postings) {
    invariant(
      Number.isSafeInteger(p.amount) && p.amount > 0,
      () =>
        `entry ${entry.entryId}: posting amount ${p.amount} on ${p.account} is not a positive safe integer`,
    );
    invariant(
      CURRENCY_CODE_PATTERN.test(p.currency),
      () => `entry ${entry.entryId}: bad currency ${p.currency}`,
    );
    const key = `${p.currency}/${p.effect}`;
    const signed = p.side === 'debit' ? p.amount : -p.amount;
    const next = (sums.get(key) ?? 0) + signed;
    invariant(Number.isSafeInteger(next), () => `entry ${entry.entryId}: sum overflow`);
    sums.set(key, next);
  }
  for (const [key, sum] of sums) {
    invariant(sum === 0, () => `entry ${entry.entryId} is unbalanced for ${key}: debits - credits = ${sum}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Builders. Each constructs one entry and asserts it balanced, so no unbalanced entry can leave the
// domain. Zero-amount lines are dropped (a zero commission on a small amount is not a posting).

/** One line of an entry before its effect is chosen. */
export interface Line {
  account: string;
  side: Side;
  amount: number;
}

/** The two accounts and the amount of a hold: the debit side reserves, the credit side receives. */
export interface HoldLeg {
  debitAccount: string;
  creditAccount: string;
  amount: number;
}

interface EntryBase {
  entryId: string;
  description: string;
  currency: string;
}

function lines(effect: Effect, currency: string, input: readonly Line[]): Posting[] {
  return input
    .filter((l) => l.amount !== 0)
    .map((l) => ({ account: l.account, side: l.side, effect, amount: l.amount, currency }));
}

function holdLines(effect: 'hold' | 'release', currency: string, leg: HoldLeg): Posting[] {
  return lines(effect, currency, [
    { account: leg.debitAccount, side: 'debit', amount: leg.amount },
    { account: leg.creditAccount, side: 'credit', amount: leg.amount },
  ]);
}

function build(base: EntryBase, postings: Posting[], holdId?: string): JournalEntry {
  const entry: JournalEntry = { entryId: base.entryId, description: base.description, postings };
  if (holdId !== undefined) entry.holdId = holdId;
  assertBalanced(entry);
  return entry;
}

/** A plain posted transfer: `lines` must balance per currency. */
export function postEntry(input: EntryBase & { lines: readonly Line[] }): JournalEntry {
  return build(input, lines('post', input.currency, input.lines));
}

/** Phase one of a two-phase transfer: reserves `hold.amount` (pending totals move, posted do not). */
export function holdEntry(input: EntryBase & { holdId: string; hold: HoldLeg }): JournalEntry {
  return build(input, holdLines('hold', input.currency, input.hold), input.holdId);
}

/**
 * Posts a hold: releases the whole hold and posts `lines` (what is captured, possibly less than the
 * hold and split across accounts; the rest is simply released).
 */
export function captureEntry(
  input: EntryBase & { holdId: string; hold: HoldLeg; lines: readonly Line[] },
): JournalEntry {
  return build(
    input,
    [...holdLines('release', input.currency, input.hold), ...lines('post', input.currency, input.lines)],
    input.holdId,
  );
}

/**
 * Voids (or expires) a hold: releases it. `lines`, when given, post a fee out of the released money
 * in the same atomic entry (a late-cancellation fee).
 */
export function releaseEntry(
  input: EntryBase & { holdId: string; hold: HoldLeg; lines?: readonly Line[] },
): JournalEntry {
  return build(
    input,
    [
      ...holdLines('release', input.currency, input.hold),
      ...lines('post', input.currency, input.lines ?? []),
    ],
    input.holdId,
  );
}
