import { type DecodedEvent, entryOf } from '../domain/events.js';
import type { Posting } from '../domain/journal.js';

/**
 * Finance analytics as a projection of daily aggregates: each event adds to the day (UTC) it occurred
 * on, per currency, so a week, a month or a year is a sum over a few hundred rows rather than a scan of
 * the journal. Two sorts of metric:
 *  - flows (money that moved that day, with how many events moved it): gross booking value, revenue
 *    by source, refunds, promotions, payouts, top-ups, Stripe fees;
 *  - stocks, kept as the day's net change so that the running sum to a day is the balance at its end:
 *    money held for students (wallets' posted balances) and deferred revenue (held bookings: money taken
 *    for sessions not yet delivered, the `clearing:booking:*` accounts).
 * Active wallets are counted distinct per period from a separate row per wallet and day it moved.
 *
 * Pure: the projection and the verifier fold events through the same function.
 */
export type MetricKind = 'flow' | 'stock';

export const METRICS = {
  gross_booking_value: { kind: 'flow', label: 'Gross booking value (captured)' },
  cancellation_fees: { kind: 'flow', label: 'Late-cancellation fees charged' },
  net_revenue: { kind: 'flow', label: 'Net revenue (all sources)' },
  refunds: { kind: 'flow', label: 'Booking refunds' },
  card_refunds: { kind: 'flow', label: 'Wallet refunds to card' },
  card_refunds_failed: { kind: 'flow', label: 'Card refunds that failed (back in the wallet)' },
  promotions: { kind: 'flow', label: 'Promotions spent' },
  payouts: { kind: 'flow', label: 'Payouts paid' },
  top_ups: { kind: 'flow', label: 'Wallet top-ups' },
  stripe_fees: { kind: 'flow', label: 'Stripe fees' },
  adjustments: { kind: 'flow', label: 'Manual adjustments (net cost)' },
  held_for_students: { kind: 'stock', label: 'Money held for students' },
  deferred_revenue: { kind: 'stock', label: 'Deferred revenue (held bookings)' },
} as const satisfies Record<string, { kind: MetricKind; label: string }>;

export type FixedMetric = keyof typeof METRICS;
/** Revenue by source: `revenue:commission`, `revenue:subscriptions`, `revenue:fees`, … */
export type Metric = FixedMetric | `revenue:${string}`;

export interface MetricDelta {
  tenantId: string;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  currency: string;
  metric: Metric;
  amount: number;
  count: number;
}

export interface ActiveWallet {
  tenantId: string;
  day: string;
  studentId: string;
}

const REVENUE_PREFIX = 'platform:revenue:';
/** Revenue an event type earns is of this source whatever account it lands on (fees kept on cancellation). */
const REVENUE_SOURCE_OF_EVENT: Readonly<Record<string, string>> = { WalletHoldReleased: 'fees' };

/** Signed change of an account's balance in the credit direction, pending included (hold/release). */
function creditChange(p: Posting): number {
  const sign = p.side === 'credit' ? 1 : -1;
  return p.effect === 'release' ? -sign * p.amount : sign * p.amount;
}

export function utcDay(iso: string): string {
  return iso.slice(0, 10);
}

/** The metric changes of one event (no I/O); several rows of one metric may come out, the caller sums. */
export function metricDeltasOf(event: DecodedEvent): MetricDelta[] {
  const entry = entryOf(event);
  const { tenantId } = event;
  if (!entry) return [];
  const day = utcDay(event.metadata.occurredAt);
  const out: MetricDelta[] = [];
  const add = (metric: Metric, currency: string, amount: number, count = 1) => {
    if (amount !== 0 || count !== 0) out.push({ tenantId, day, currency, metric, amount, count });
  };
  const currency = entry.postings[0]?.currency ?? '';
  switch (event.type) {
    case 'WalletHoldCaptured':
      add('gross_booking_value', currency, event.data.captured);
      break;
    case 'WalletHoldReleased':
      if (event.data.fee > 0) add('cancellation_fees', currency, event.data.fee);
      break;
    // The wallet's leg: the booking's own event carries no entry (docs/ledger-flows.md, Refund).
    case 'WalletRefunded':
      add('refunds', currency, event.data.amount);
      break;
    case 'WalletRefundedToCard':
      add('card_refunds', currency, event.data.amount);
      break;
    case 'WalletCardRefundFailed':
      add('card_refunds_failed', currency, event.data.amount);
      break;
    case 'WalletToppedUp':
      add('top_ups', currency, event.data.amount);
      break;
  }
  let payout = 0;
  for (const p of entry.postings) {
    const change = creditChange(p);
    if (p.account.startsWith(REVENUE_PREFIX)) {
      const source = REVENUE_SOURCE_OF_EVENT[event.type] ?? p.account.slice(REVENUE_PREFIX.length);
      add(`revenue:${source}`, p.currency, change);
      add('net_revenue', p.currency, change, 0);
    } else if (p.account === 'platform:expense:promotions') {
      add('promotions', p.currency, -change, 0);
    } else if (p.account === 'platform:expense:stripe-fees') {
      add('stripe_fees', p.currency, -change, 0);
    } else if (p.account === 'platform:adjustments') {
      add('adjustments', p.currency, -change, 0);
    } else if (p.account.startsWith('student:') && p.account.endsWith(':wallet') && p.effect === 'post') {
      // Wallet money only: referral credits (student:{id}:credits) are promotional, not money held.
      add('held_for_students', p.currency, change, 0);
    } else if (p.account.startsWith('clearing:booking:')) {
      add('deferred_revenue', p.currency, change, 0);
    } else if (
      event.type === 'TutorPayoutHoldPosted' &&
      p.account.endsWith(':earnings:available') &&
      p.effect === 'post' &&
      p.side === 'debit'
    ) {
      payout += p.amount;
    }
  }
  if (payout > 0) add('payouts', currency, payout);
  return out;
}

/** The wallet an event moved money in (its own stream's student), with the day. */
export function activeWalletOf(event: DecodedEvent): ActiveWallet | null {
  const { stream, tenantId } = event;
  if (!entryOf(event) || stream.category !== 'wallet') return null;
  return { tenantId, day: utcDay(event.metadata.occurredAt), studentId: stream.id };
}

export function metricKey(d: Pick<MetricDelta, 'tenantId' | 'day' | 'currency' | 'metric'>): string {
  return `${d.tenantId}\u0000${d.day}\u0000${d.currency}\u0000${d.metric}`;
}

/** Sums deltas per (tenant, day, currency, metric), in first-seen order. */
export function sumDeltas(deltas: Iterable<MetricDelta>, into = new Map<string, MetricDelta>()) {
  for (const d of deltas) {
    const key = metricKey(d);
    const sum = into.get(key);
    if (sum) {
      sum.amount += d.amount;
      sum.count += d.count;
    } else into.set(key, { ...d });
  }
  return into;
}
