/**
 * The payments gateway port: what the ledger needs from Stripe. The Stripe adapter (stripeGateway.ts)
 * implements it on the real `stripe` SDK; tests and the embedded default point that SDK at the fake
 * Stripe server under test/ and src/stripe/fake (same HTTP API). Every mutating call takes a
 * deterministic idempotency key derived from our command, so a retried job never double-charges or
 * double-pays. Failures map to GatewayError codes a caller can act on.
 */
export type GatewayErrorCode =
  | 'card_declined'
  | 'insufficient_funds'
  | 'invalid_request'
  | 'idempotency_conflict'
  | 'rate_limited'
  | 'unavailable';

export class GatewayError extends Error {
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    readonly stripeCode?: string,
    /** Extra context: the PaymentIntent a decline belongs to (so the top-up can record it), the cause. */
    readonly details: { paymentIntentId?: string; statusCode?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'GatewayError';
  }
}

export interface PaymentIntentResult {
  paymentIntentId: string;
  status:
    | 'requires_payment_method'
    | 'requires_confirmation'
    | 'requires_action'
    | 'processing'
    | 'succeeded'
    | 'canceled';
  clientSecret: string | null;
  amountReceived: number;
  lastError: string | null;
}

/** A connected (Express) account: what the ledger records of it (the tutor's PayoutAccountSnapshot). */
export interface ConnectedAccountSnapshot {
  stripeAccountId: string;
  chargesEnabled: boolean;
  payoutsEnabled: boolean;
  detailsSubmitted: boolean;
  currentlyDue: string[];
  pastDue: string[];
  disabledReason: string | null;
}

export interface PaymentsGateway {
  createPaymentIntent(input: {
    idempotencyKey: string;
    amount: number;
    currency: string;
    /** Confirm at once with this payment method (e.g. pm_card_visa); omitted: client confirms. */
    paymentMethod?: string;
    metadata: { tenantId: string; topUpId: string; studentId: string };
  }): Promise<PaymentIntentResult>;
  refundPaymentIntent(input: {
    idempotencyKey: string;
    paymentIntentId: string;
    amount: number;
    metadata: Record<string, string>;
  }): Promise<{ refundId: string; status: 'pending' | 'succeeded' | 'failed' | 'canceled'; amount: number }>;
  /** Moves money to a tutor's connected account and pays it out; returns Stripe ids. */
  createTransfer(input: {
    idempotencyKey: string;
    amount: number;
    currency: string;
    destinationAccountId: string;
    metadata: Record<string, string>;
  }): Promise<{ transferId: string }>;
  createPayout(input: {
    idempotencyKey: string;
    amount: number;
    currency: string;
    connectedAccountId: string;
    metadata: Record<string, string>;
  }): Promise<{ payoutId: string; status: 'pending' | 'in_transit' | 'paid' | 'failed' | 'canceled' }>;
  /**
   * Creates a tutor's Express account. The key only collapses concurrent or retried creations (Stripe
   * keeps keys 24 h): the caller records the returned id in the tutor's stream and never creates again.
   */
  createConnectedAccount(input: {
    idempotencyKey: string;
    tutorId: string;
    tenantId: string;
  }): Promise<ConnectedAccountSnapshot>;
  /** The account as Stripe describes it now. */
  retrieveConnectedAccount(accountId: string): Promise<ConnectedAccountSnapshot>;
  /** A one-time onboarding link (Account Links, type account_onboarding; valid a few minutes). */
  createAccountLink(input: {
    accountId: string;
    refreshUrl: string;
    returnUrl: string;
  }): Promise<{ url: string; expiresAt: number }>;
  ping(): Promise<void>;
}

/** A Stripe balance transaction as the reconciler needs it (normalised from Stripe's object). */
export interface BalanceTransactionRecord {
  id: string;
  /** Stripe's type: charge, refund, transfer, payout, payout_failure, adjustment, payment, stripe_fee... */
  type: string;
  reportingCategory: string;
  /** Signed minor units (negative: money left the balance). */
  amount: number;
  fee: number;
  net: number;
  currency: string;
  /** Unix seconds. */
  created: number;
  /** The source object's id (ch_, re_, tr_, po_, dp_, py_) or null. */
  sourceId: string | null;
  /** For charges: the PaymentIntent the charge belongs to (the ledger knows top-ups by pi_). */
  paymentIntentId: string | null;
  /** The source object's metadata (our tenantId/topUpId/payoutId), when the source was expanded. */
  metadata: Record<string, string>;
}

export interface BalanceTransactionFilter {
  /** Unix seconds, inclusive lower and exclusive upper bound. */
  created?: { gte?: number; lt?: number };
  payout?: string;
  type?: string;
  /** List a connected account's transactions instead of the platform's. */
  connectedAccountId?: string;
  /** 1..100 (Stripe's maximum). */
  pageSize?: number;
}

export interface BalanceAmount {
  amount: number;
  currency: string;
}

/** The read side of Stripe the reconciler uses; the Stripe adapter implements it next to PaymentsGateway. */
export interface StripeBalanceSource {
  /** Streams balance transactions newest first, one page (<= pageSize) in memory at a time. */
  listBalanceTransactions(filter: BalanceTransactionFilter): AsyncIterable<BalanceTransactionRecord>;
  retrieveBalance(
    connectedAccountId?: string,
  ): Promise<{ available: BalanceAmount[]; pending: BalanceAmount[] }>;
}
