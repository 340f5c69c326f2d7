import { type Static, Type } from '@sinclair/typebox';
import type { EventOf, EventSchemas, EventsOf } from './decider.js';
import {
  CountSchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  StripeIdSchema,
  strictObject,
} from './schema.js';

/**
 * A reconciliation run: stream `reconciliation-{t}.{runId}`, written by the reconciler (not decided by
 * an aggregate: a run records what it found, it refuses nothing). Started, then its exceptions in
 * chunks, then completed with a summary (or failed). The schemas below are the one definition of what a
 * run reports; src/reconciliation uses their types.
 */

const ClassificationSchema = Type.Union([
  Type.Literal('matched'),
  Type.Literal('missing_in_ledger'),
  Type.Literal('missing_in_stripe'),
  Type.Literal('amount_mismatch'),
  Type.Literal('unbooked_fee'),
]);
export type Classification = Static<typeof ClassificationSchema>;

/** Signed amounts as Stripe reports them (a refund or payout is negative). */
const SignedAmount = Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER });

/** An exception (anything but a clean match). Matched transactions are counted, not listed. */
export const ReconciliationItemSchema = strictObject({
  classification: Type.Union([
    Type.Literal('missing_in_ledger'),
    Type.Literal('missing_in_stripe'),
    Type.Literal('amount_mismatch'),
    Type.Literal('unbooked_fee'),
  ]),
  /** pi_/re_/tr_/po_/dp_ id the match was attempted on (null when the transaction had no source). */
  stripeObjectId: Nullable(StripeIdSchema),
  balanceTransactionId: Nullable(StripeIdSchema),
  type: Nullable(Type.String()),
  currency: Type.String(),
  stripeAmount: Nullable(SignedAmount),
  ledgerAmount: Nullable(SignedAmount),
  stripeFee: Nullable(SignedAmount),
  ledgerFee: Nullable(SignedAmount),
  /** For unbooked fees: whether this run booked it (Dr platform:expense:stripe-fees, Cr stripe:balance). */
  feeBooked: Type.Boolean(),
  detail: Type.String(),
});
export type ReconciliationItem = Static<typeof ReconciliationItemSchema>;

export const ReconciliationScopeSchema = Type.Union([
  strictObject({ kind: Type.Literal('range'), from: InstantSchema, to: InstantSchema }),
  strictObject({
    kind: Type.Literal('payout'),
    payout: StripeIdSchema,
    connectedAccountId: Nullable(StripeIdSchema),
  }),
]);
export type ReconciliationScope = Static<typeof ReconciliationScopeSchema>;

export const DriftRowSchema = strictObject({
  currency: Type.String(),
  ledger: SignedAmount,
  stripe: SignedAmount,
  /** ledger - stripe; 0 when they agree. */
  difference: SignedAmount,
  /**
   * Stripe's balance as Stripe splits it (stripe = available + pending): funds that can be paid out now,
   * and card funds not yet settled (before their available_on). The ledger's stripe:balance does not
   * split, so a payout refused for balance_insufficient is explained by a large pending part. Absent in
   * runs recorded before the split.
   */
  stripeAvailable: Type.Optional(SignedAmount),
  stripePending: Type.Optional(SignedAmount),
});
export type DriftRow = Static<typeof DriftRowSchema>;

export const ReconciliationSummarySchema = strictObject({
  scanned: CountSchema,
  matched: CountSchema,
  missingInLedger: CountSchema,
  missingInStripe: CountSchema,
  amountMismatch: CountSchema,
  unbookedFee: CountSchema,
  feesBooked: CountSchema,
  /** Transactions that are not ledger facts (e.g. a connected account's incoming payment). */
  ignored: CountSchema,
  /** Transactions whose metadata names another tenant. */
  otherTenant: CountSchema,
  itemsRecorded: CountSchema,
  /** More exceptions than maxItems: the rest are counted, not listed. */
  truncated: Type.Boolean(),
  drift: Type.Array(DriftRowSchema),
  durationMs: CountSchema,
});
export type ReconciliationSummary = Static<typeof ReconciliationSummarySchema>;

export const RECONCILIATION_EVENTS = {
  ReconciliationRunStarted: strictObject({
    runId: EntityIdSchema,
    scope: ReconciliationScopeSchema,
    startedAt: InstantSchema,
  }),
  ReconciliationItemsRecorded: strictObject({
    runId: EntityIdSchema,
    chunk: CountSchema,
    items: Type.Array(ReconciliationItemSchema),
  }),
  ReconciliationRunCompleted: strictObject({
    runId: EntityIdSchema,
    summary: ReconciliationSummarySchema,
    completedAt: InstantSchema,
  }),
  ReconciliationRunFailed: strictObject({
    runId: EntityIdSchema,
    error: Type.String(),
    failedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type ReconciliationEvent = EventsOf<typeof RECONCILIATION_EVENTS>;
export type ReconciliationRunStarted = EventOf<typeof RECONCILIATION_EVENTS, 'ReconciliationRunStarted'>;
