/**
 * Typed domain errors with stable codes. The API maps codes to HTTP statuses; clients act on codes.
 * A rejected command appends nothing (docs/architecture.md, invariant 8).
 */
export type DomainErrorCode =
  | 'validation_failed'
  | 'insufficient_funds'
  | 'invalid_state'
  | 'not_found'
  | 'currency_mismatch'
  | 'limit_exceeded'
  /** A posting or an account's totals would pass the ledger's bounds (ledgerLimits.ts; details: account, limit). */
  | 'account_limit_exceeded'
  | 'forbidden'
  /** A payout for a tutor whose Stripe account cannot take payouts yet (details: what is missing). */
  | 'payout_account_not_ready'
  /** A booking over a wallet's spending limit (details: which limit, what is left; spendingLimits.ts). */
  | 'spending_limit_exceeded'
  /** A promo code that cannot be redeemed on this purchase (details.reason: promoCode.ts PromoRejection). */
  | 'promo_code_rejected'
  /** A referral code that cannot be used (details.reason: referral.ts ReferralRejection). */
  | 'referral_rejected'
  /** An entry effective inside a closed accounting period (details: the period). */
  | 'period_closed';

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    /** Machine-readable details for the client (amounts, states), never secrets. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** A broken invariant: a bug, never a user error. Thrown loudly, never caught and ignored. */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'InvariantViolation';
  }
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantViolation(typeof message === 'string' ? message : message());
}
