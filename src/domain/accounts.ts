import { DomainError } from './errors.js';
import { ENTITY_ID_PATTERN } from './ids.js';
import type { Side } from './journal.js';

/**
 * Account paths inside a tenant (the tenant is a separate field, never part of the path), their kind,
 * normal side and constraint (docs/architecture.md, "Accounts, and who may post where"; docs/ledger-flows.md).
 *
 * A constrained account is owned by exactly one stream category (the wallet stream for a student wallet,
 * the tutor stream for tutor available earnings) and only that stream posts to it.
 */
export type AccountKind = 'asset' | 'liability' | 'revenue' | 'expense' | 'clearing';

export type AccountRef =
  | { kind: 'student_wallet'; studentId: string }
  | { kind: 'student_credits'; studentId: string }
  | { kind: 'tutor_earnings_pending'; tutorId: string }
  | { kind: 'tutor_earnings_available'; tutorId: string }
  | { kind: 'tutor_receivable'; tutorId: string }
  | { kind: 'platform_revenue_commission' }
  | { kind: 'platform_revenue_subscriptions' }
  | { kind: 'platform_deferred_revenue_subscriptions' }
  | { kind: 'platform_expense_vip_discounts' }
  | { kind: 'platform_expense_promotions' }
  | { kind: 'platform_expense_stripe_fees' }
  | { kind: 'platform_expense_disputes' }
  | { kind: 'platform_adjustments' }
  | { kind: 'platform_tax_payable' }
  | { kind: 'stripe_balance' }
  | { kind: 'clearing'; flow: string; id: string };

export interface AccountConstraint {
  /** available(totals) must stay >= this after every entry. */
  minAvailable: number;
  /** The only stream category allowed to post to the account. */
  ownerCategory: 'wallet' | 'tutor' | 'referral';
}

export interface AccountInfo {
  path: string;
  ref: AccountRef;
  kind: AccountKind;
  normalSide: Side;
  /** null: unconstrained, any stream may post. */
  constraint: AccountConstraint | null;
}

const CLEARING_FLOW_PATTERN = /^[a-z]{1,32}$/;

function entityId(value: string, what: string): string {
  if (!ENTITY_ID_PATTERN.test(value)) {
    throw new DomainError('validation_failed', `${what} must be 1-64 characters of [A-Za-z0-9_-]`, {
      field: what,
    });
  }
  return value;
}

export const PLATFORM_REVENUE_COMMISSION = 'platform:revenue:commission';
export const PLATFORM_REVENUE_SUBSCRIPTIONS = 'platform:revenue:subscriptions';
/** Subscription payments not yet earned: the platform owes the service (subscription.ts). */
export const PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS = 'platform:deferred-revenue:subscriptions';
/** What VIP booking discounts cost the platform: the tutor still earns on the list price. */
export const PLATFORM_EXPENSE_VIP_DISCOUNTS = 'platform:expense:vip-discounts';
export const PLATFORM_EXPENSE_PROMOTIONS = 'platform:expense:promotions';
export const PLATFORM_EXPENSE_STRIPE_FEES = 'platform:expense:stripe-fees';
export const PLATFORM_EXPENSE_DISPUTES = 'platform:expense:disputes';
export const PLATFORM_ADJUSTMENTS = 'platform:adjustments';
/** Tax on the platform's commission, owed to the tax authority (tax.ts). */
export const PLATFORM_TAX_PAYABLE = 'platform:tax:payable';
export const STRIPE_BALANCE = 'stripe:balance';

export const studentWallet = (studentId: string): string =>
  `student:${entityId(studentId, 'studentId')}:wallet`;
/** A student's referral credits (referral.ts): promotional money, never withdrawable. */
export const studentCredits = (studentId: string): string =>
  `student:${entityId(studentId, 'studentId')}:credits`;
export const tutorEarningsPending = (tutorId: string): string =>
  `tutor:${entityId(tutorId, 'tutorId')}:earnings:pending`;
export const tutorEarningsAvailable = (tutorId: string): string =>
  `tutor:${entityId(tutorId, 'tutorId')}:earnings:available`;
export const tutorReceivable = (tutorId: string): string =>
  `tutor:${entityId(tutorId, 'tutorId')}:receivable`;
export function clearingAccount(flow: string, id: string): string {
  if (!CLEARING_FLOW_PATTERN.test(flow)) {
    throw new DomainError('validation_failed', 'clearing flow must be 1-32 lowercase letters', {
      field: 'flow',
    });
  }
  return `clearing:${flow}:${entityId(id, 'clearing id')}`;
}
export const bookingClearing = (bookingId: string): string => clearingAccount('booking', bookingId);
export const refundClearing = (refundId: string): string => clearingAccount('refund', refundId);
export const payoutClearing = (payoutId: string): string => clearingAccount('payout', payoutId);

const FIXED_ACCOUNTS: Record<string, AccountRef> = {
  [PLATFORM_REVENUE_COMMISSION]: { kind: 'platform_revenue_commission' },
  [PLATFORM_REVENUE_SUBSCRIPTIONS]: { kind: 'platform_revenue_subscriptions' },
  [PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS]: { kind: 'platform_deferred_revenue_subscriptions' },
  [PLATFORM_EXPENSE_VIP_DISCOUNTS]: { kind: 'platform_expense_vip_discounts' },
  [PLATFORM_EXPENSE_PROMOTIONS]: { kind: 'platform_expense_promotions' },
  [PLATFORM_EXPENSE_STRIPE_FEES]: { kind: 'platform_expense_stripe_fees' },
  [PLATFORM_EXPENSE_DISPUTES]: { kind: 'platform_expense_disputes' },
  [PLATFORM_ADJUSTMENTS]: { kind: 'platform_adjustments' },
  [PLATFORM_TAX_PAYABLE]: { kind: 'platform_tax_payable' },
  [STRIPE_BALANCE]: { kind: 'stripe_balance' },
};

/** Parses an account path, or returns null when it is not one the ledger knows. */
export function parseAccount(path: unknown): AccountRef | null {
  if (typeof path !== 'string' || path.length > 200) return null;
  if (Object.hasOwn(FIXED_ACCOUNTS, path)) return { ...FIXED_ACCOUNTS[path]! };
  const parts = path.split(':');
  const [head, id, a, b] = parts;
  if (head === 'student' && parts.length === 3 && a === 'wallet' && ENTITY_ID_PATTERN.test(id ?? '')) {
    return { kind: 'student_wallet', studentId: id! };
  }
  if (head === 'student' && parts.length === 3 && a === 'credits' && ENTITY_ID_PATTERN.test(id ?? '')) {
    return { kind: 'student_credits', studentId: id! };
  }
  if (head === 'tutor' && ENTITY_ID_PATTERN.test(id ?? '')) {
    if (parts.length === 4 && a === 'earnings' && b === 'pending') {
      return { kind: 'tutor_earnings_pending', tutorId: id! };
    }
    if (parts.length === 4 && a === 'earnings' && b === 'available') {
      return { kind: 'tutor_earnings_available', tutorId: id! };
    }
    if (parts.length === 3 && a === 'receivable') return { kind: 'tutor_receivable', tutorId: id! };
  }
  if (
    head === 'clearing' &&
    parts.length === 3 &&
    CLEARING_FLOW_PATTERN.test(id ?? '') &&
    ENTITY_ID_PATTERN.test(a ?? '')
  ) {
    return { kind: 'clearing', flow: id!, id: a! };
  }
  return null;
}

/** Like parseAccount, but an unknown path is a validation error. */
export function requireAccount(path: unknown, field = 'account'): AccountRef {
  const ref = parseAccount(path);
  if (!ref) {
    throw new DomainError('validation_failed', `${field}: unknown account ${JSON.stringify(path)}`, {
      field,
    });
  }
  return ref;
}

export function accountPath(ref: AccountRef): string {
  switch (ref.kind) {
    case 'student_wallet':
      return studentWallet(ref.studentId);
    case 'student_credits':
      return studentCredits(ref.studentId);
    case 'tutor_earnings_pending':
      return tutorEarningsPending(ref.tutorId);
    case 'tutor_earnings_available':
      return tutorEarningsAvailable(ref.tutorId);
    case 'tutor_receivable':
      return tutorReceivable(ref.tutorId);
    case 'platform_revenue_commission':
      return PLATFORM_REVENUE_COMMISSION;
    case 'platform_revenue_subscriptions':
      return PLATFORM_REVENUE_SUBSCRIPTIONS;
    case 'platform_deferred_revenue_subscriptions':
      return PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS;
    case 'platform_expense_vip_discounts':
      return PLATFORM_EXPENSE_VIP_DISCOUNTS;
    case 'platform_expense_promotions':
      return PLATFORM_EXPENSE_PROMOTIONS;
    case 'platform_expense_stripe_fees':
      return PLATFORM_EXPENSE_STRIPE_FEES;
    case 'platform_expense_disputes':
      return PLATFORM_EXPENSE_DISPUTES;
    case 'platform_adjustments':
      return PLATFORM_ADJUSTMENTS;
    case 'platform_tax_payable':
      return PLATFORM_TAX_PAYABLE;
    case 'stripe_balance':
      return STRIPE_BALANCE;
    case 'clearing':
      return clearingAccount(ref.flow, ref.id);
  }
}

export function describeAccount(ref: AccountRef): AccountInfo {
  const path = accountPath(ref);
  switch (ref.kind) {
    case 'student_wallet':
      return {
        path,
        ref,
        kind: 'liability',
        normalSide: 'credit',
        constraint: { minAvailable: 0, ownerCategory: 'wallet' },
      };
    case 'student_credits':
      // Owned by the student's referral stream: the platform owes them promotional credit.
      return {
        path,
        ref,
        kind: 'liability',
        normalSide: 'credit',
        constraint: { minAvailable: 0, ownerCategory: 'referral' },
      };
    case 'tutor_earnings_available':
      return {
        path,
        ref,
        kind: 'liability',
        normalSide: 'credit',
        constraint: { minAvailable: 0, ownerCategory: 'tutor' },
      };
    case 'tutor_earnings_pending':
    case 'platform_tax_payable':
    case 'platform_deferred_revenue_subscriptions':
      return { path, ref, kind: 'liability', normalSide: 'credit', constraint: null };
    case 'tutor_receivable':
    case 'stripe_balance':
      return { path, ref, kind: 'asset', normalSide: 'debit', constraint: null };
    case 'platform_revenue_commission':
    case 'platform_revenue_subscriptions':
      return { path, ref, kind: 'revenue', normalSide: 'credit', constraint: null };
    case 'platform_expense_promotions':
    case 'platform_expense_vip_discounts':
    case 'platform_expense_stripe_fees':
    case 'platform_expense_disputes':
    // Manual adjustments are booked against the platform: crediting a student is a cost to us.
    case 'platform_adjustments':
      return { path, ref, kind: 'expense', normalSide: 'debit', constraint: null };
    case 'clearing':
      // Money in flight that the platform owes onward (held booking money), hence credit-normal. It
      // must return to zero when its flow completes; it is never constrained.
      return { path, ref, kind: 'clearing', normalSide: 'credit', constraint: null };
  }
}

/** Kind, normal side and constraint of an account path; throws validation_failed for unknown paths. */
export function accountInfo(path: string): AccountInfo {
  return describeAccount(requireAccount(path));
}

export function isConstrained(path: string): boolean {
  return accountInfo(path).constraint !== null;
}
