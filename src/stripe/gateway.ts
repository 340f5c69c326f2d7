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
  ) {
    super(message);
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
  ensureConnectedAccount(input: { idempotencyKey: string; tutorId: string; tenantId: string }): Promise<{
    accountId: string;
    payoutsEnabled: boolean;
  }>;
  ping(): Promise<void>;
}
