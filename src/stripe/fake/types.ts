import type Stripe from 'stripe';

/**
 * The object shapes the fake serves: subsets of the SDK's own types (Pick), so every field the fake
 * emits has exactly Stripe's name and type, and the SDK's callers read them as they would from Stripe.
 */
export type FakePaymentIntent = Pick<
  Stripe.PaymentIntent,
  | 'id'
  | 'object'
  | 'amount'
  | 'amount_received'
  | 'currency'
  | 'status'
  | 'client_secret'
  | 'created'
  | 'livemode'
  | 'metadata'
  | 'latest_charge'
  | 'payment_method'
  | 'payment_method_types'
  | 'capture_method'
  | 'confirmation_method'
  | 'description'
  | 'canceled_at'
> & { last_payment_error: FakeLastPaymentError | null };

export type FakeLastPaymentError = Pick<
  Stripe.PaymentIntent.LastPaymentError,
  'type' | 'code' | 'decline_code' | 'message' | 'charge'
>;

export type FakeCharge = Pick<
  Stripe.Charge,
  | 'id'
  | 'object'
  | 'amount'
  | 'amount_captured'
  | 'amount_refunded'
  | 'currency'
  | 'created'
  | 'livemode'
  | 'metadata'
  | 'paid'
  | 'captured'
  | 'refunded'
  | 'status'
  | 'balance_transaction'
  | 'payment_intent'
  | 'payment_method'
  | 'failure_code'
  | 'failure_message'
  | 'disputed'
> & { outcome: { type: string; network_status: string; reason: string | null } };

export type FakeRefund = Pick<
  Stripe.Refund,
  | 'id'
  | 'object'
  | 'amount'
  | 'currency'
  | 'created'
  | 'metadata'
  | 'status'
  | 'charge'
  | 'payment_intent'
  | 'reason'
  | 'balance_transaction'
>;

export type FakeAccount = Pick<
  Stripe.Account,
  | 'id'
  | 'object'
  | 'type'
  | 'country'
  | 'email'
  | 'created'
  | 'metadata'
  | 'charges_enabled'
  | 'payouts_enabled'
  | 'details_submitted'
  | 'default_currency'
>;

export type FakeTransfer = Pick<
  Stripe.Transfer,
  | 'id'
  | 'object'
  | 'amount'
  | 'amount_reversed'
  | 'currency'
  | 'created'
  | 'livemode'
  | 'metadata'
  | 'destination'
  | 'destination_payment'
  | 'reversed'
  | 'transfer_group'
  | 'balance_transaction'
  | 'description'
>;

export type FakePayout = Pick<
  Stripe.Payout,
  | 'id'
  | 'object'
  | 'amount'
  | 'currency'
  | 'created'
  | 'arrival_date'
  | 'livemode'
  | 'metadata'
  | 'status'
  | 'method'
  | 'type'
  | 'automatic'
  | 'failure_code'
  | 'failure_message'
  | 'balance_transaction'
  | 'failure_balance_transaction'
  | 'description'
>;

export type FakeDispute = Pick<
  Stripe.Dispute,
  | 'id'
  | 'object'
  | 'amount'
  | 'currency'
  | 'created'
  | 'livemode'
  | 'metadata'
  | 'status'
  | 'reason'
  | 'charge'
  | 'payment_intent'
  | 'is_charge_refundable'
> & { balance_transactions: string[] };

export type FakeBalanceTransaction = Pick<
  Stripe.BalanceTransaction,
  | 'id'
  | 'object'
  | 'amount'
  | 'available_on'
  | 'created'
  | 'currency'
  | 'description'
  | 'fee'
  | 'net'
  | 'reporting_category'
  | 'status'
  | 'type'
> & {
  /** Id of the object that caused it (ch_, re_, tr_, po_, dp_, py_), expandable like Stripe's. */
  source: string | null;
  fee_details: Array<
    Pick<Stripe.BalanceTransaction.FeeDetail, 'amount' | 'currency' | 'description' | 'type'>
  >;
};

export type FakeBalance = Pick<Stripe.Balance, 'object' | 'livemode'> & {
  available: Array<{ amount: number; currency: string; source_types: { card: number } }>;
  pending: Array<{ amount: number; currency: string; source_types: { card: number } }>;
};

export type FakeEvent = Pick<
  Stripe.Event,
  'id' | 'object' | 'api_version' | 'created' | 'livemode' | 'pending_webhooks'
> & {
  type: string;
  account?: string;
  data: { object: FakeObject; previous_attributes?: Record<string, unknown> };
  request: { id: string | null; idempotency_key: string | null };
};

export type FakeObject =
  | FakePaymentIntent
  | FakeCharge
  | FakeRefund
  | FakeAccount
  | FakeTransfer
  | FakePayout
  | FakeDispute
  | FakeBalanceTransaction;

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
  payment_intent?: FakePaymentIntent;
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

export function invalidParam(param: string, message: string, code = 'parameter_invalid'): FakeStripeError {
  return new FakeStripeError(400, { type: 'invalid_request_error', code, message, param }, false);
}
