/**
 * The client-side model of what the soak's clients were told: every acknowledged command and its
 * effect on a wallet. At the end the server's wallets must equal this model exactly; it is built only
 * from acknowledgements (2xx answers), never from reads, so it is an independent witness.
 */
export type BookingStatus = 'held' | 'completed' | 'cancelled';

export interface TopUpModel {
  topUpId: string;
  studentId: string;
  amount: number;
  /** Test card used: visa must succeed, a declined card must fail. */
  expect: 'succeed' | 'fail';
}

export interface BookingModel {
  bookingId: string;
  studentId: string;
  tutorId: string;
  price: number;
  status: BookingStatus;
  captured: number;
  cancellationFee: number;
  /** Acknowledged refunds by idempotency key (a replay of the same key is one refund). */
  refunds: Map<string, number>;
  /** A client is operating on it (avoids pointless complete/cancel races between our own clients). */
  busy: boolean;
}

export interface PayoutModel {
  payoutId: string;
  tutorId: string;
  amount: number;
}

export interface TenantModel {
  tenantId: string;
  currency: string;
  studentIds: string[];
  tutorIds: string[];
  topUps: Map<string, TopUpModel>;
  bookings: Map<string, BookingModel>;
  payouts: Map<string, PayoutModel>;
  /** Tutors whose payout account (Stripe Express account) was opened: payouts need one. */
  payoutAccounts: Set<string>;
  /** Top-up ids (as the API derives them) of top-ups whose request was definitively refused, with why. */
  refusedTopUps: Map<string, string>;
  /** Highest position acknowledged by any command in this tenant. */
  lastPosition: bigint;
}

export function createTenantModel(
  tenantId: string,
  currency: string,
  students: number,
  tutors: number,
): TenantModel {
  return {
    tenantId,
    currency,
    studentIds: Array.from({ length: students }, (_, i) => `s${i}`),
    tutorIds: Array.from({ length: tutors }, (_, i) => `t${i}`),
    topUps: new Map(),
    bookings: new Map(),
    payouts: new Map(),
    payoutAccounts: new Set(),
    refusedTopUps: new Map(),
    lastPosition: -1n,
  };
}

export function refundedTotal(b: BookingModel): number {
  let sum = 0;
  for (const v of b.refunds.values()) sum += v;
  return sum;
}

export interface WalletExpectation {
  available: number;
  pending: number;
  posted: number;
}

/**
 * Expected wallet balances from acknowledged commands, given which top-ups the ledger credited.
 * A hold reserves the price (pending); completion captures `captured` (the hold released, the capture
 * posted); a cancellation releases the hold and posts the fee; refunds credit the wallet back.
 */
export function expectedWallet(
  tenant: TenantModel,
  studentId: string,
  creditedTopUps: ReadonlySet<string>,
): WalletExpectation {
  let posted = 0;
  let pending = 0;
  for (const t of tenant.topUps.values()) {
    if (t.studentId === studentId && creditedTopUps.has(t.topUpId)) posted += t.amount;
  }
  for (const b of tenant.bookings.values()) {
    if (b.studentId !== studentId) continue;
    if (b.status === 'held') pending += b.price;
    else if (b.status === 'completed') posted -= b.captured;
    else posted -= b.cancellationFee;
    posted += refundedTotal(b);
  }
  return { available: posted - pending, pending, posted };
}

/** Parses a position as the API returns it (string, or number for small values). */
export function parsePosition(value: unknown): bigint | null {
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  return null;
}
