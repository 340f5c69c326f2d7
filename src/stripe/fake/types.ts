import type Stripe from 'stripe';

/**
 * The objects the fake serves are the SDK's own types for the API version it pins, whole: the compiler
 * holds the fake to every field Stripe always sends, and the contract tests
 * (test/stripe/contract/) check the JSON on the wire against schemas generated from the same types.
 * Expandable fields hold ids; `expand[]` replaces them with the objects (expand.ts).
 */
export type FakePaymentIntent = Stripe.PaymentIntent;
export type FakeCharge = Stripe.Charge;
export type FakeRefund = Stripe.Refund;
export type FakeAccount = Stripe.Account;
export type FakeAccountLink = Stripe.AccountLink;
export type FakeTransfer = Stripe.Transfer;
export type FakePayout = Stripe.Payout;
export type FakeDispute = Stripe.Dispute;
export type FakeBalanceTransaction = Stripe.BalanceTransaction;
export type FakeBalance = Stripe.Balance;
export type FakeSetupIntent = Stripe.SetupIntent;
export type FakePaymentMethod = Stripe.PaymentMethod;
export type FakeCustomer = Stripe.Customer;

export type FakeObject =
  | FakePaymentIntent
  | FakeCharge
  | FakeRefund
  | FakeAccount
  | FakeTransfer
  | FakePayout
  | FakeDispute
  | FakeBalanceTransaction
  | FakeSetupIntent
  | FakePaymentMethod
  | FakeCustomer;

export interface FakeEvent {
  id: string;
  object: 'event';
  /** Set on events of a connected account (Stripe sends those to Connect endpoints). */
  account?: string;
  api_version: string;
  created: number;
  data: { object: FakeObject; previous_attributes?: Record<string, unknown> };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

/** Stripe's error body (`{ error: {...} }`) with the HTTP status it travels with. */
export interface StripeErrorBody {
  type:
    | 'invalid_request_error'
    | 'card_error'
    | 'api_error'
    | 'idempotency_error'
    | 'rate_limit_error'
    | 'authentication_error';
  code?: string;
  decline_code?: string;
  message: string;
  param?: string;
  doc_url?: string;
  request_log_url?: string;
  payment_intent?: FakePaymentIntent;
  setup_intent?: FakeSetupIntent;
  charge?: string;
}

export class FakeStripeError extends Error {
  constructor(
    readonly status: number,
    readonly body: StripeErrorBody,
    /** Validation failures are not stored under the idempotency key (Stripe's rule). */
    readonly storeForIdempotency: boolean,
  ) {
    super(body.message);
    this.name = 'FakeStripeError';
  }
}

/** Stripe links every error code to its page: `https://docs.stripe.com/error-codes/resource-missing`. */
export function withDocUrl(body: StripeErrorBody, requestId: string): StripeErrorBody {
  return {
    ...body,
    ...(body.code
      ? { doc_url: `https://docs.stripe.com/error-codes/${body.code.replaceAll('_', '-')}` }
      : {}),
    request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}`,
  };
}
