import type { Knex } from 'knex';
import { tutorEarningsAvailable } from '../domain/accounts.js';
import { InvariantViolation } from '../domain/errors.js';
import type { DecodedEvent, LedgerEventType } from '../domain/events.js';
import type { ReadModelSchema } from './schema.js';
import { type CellValue, type Column, insertRows, int8 } from './sql.js';

/**
 * Per-entity views (bookings, top-ups, payouts, tutor payout totals) folded from the events the domain
 * defines (src/domain/{booking,topUp,payout,tutor,wallet}.ts, docs/ledger-flows.md). Each view follows
 * its entity's own stream; the constrained-account event appended first in a flow (wallet hold, tutor
 * payout hold) only creates the row early so it is visible as soon as the money is reserved.
 *
 * Same shape as the ledger projection: load every touched row once, fold in memory, upsert once.
 */
type Row = Record<string, CellValue>;

interface ViewTable {
  table: 'bookings' | 'top_ups' | 'payouts' | 'tutor_payouts';
  keyColumns: string[];
  columns: readonly Column[];
}

const BOOKINGS: ViewTable = {
  table: 'bookings',
  keyColumns: ['tenant_id', 'booking_id'],
  columns: [
    ['tenant_id', 'text'],
    ['booking_id', 'text'],
    ['student_id', 'text'],
    ['tutor_id', 'text'],
    ['currency', 'text'],
    ['price', 'int8'],
    ['scheduled_at', 'text'],
    ['status', 'text'],
    ['hold_id', 'text'],
    ['captured', 'int8'],
    ['refunded', 'int8'],
    ['tutor_share', 'int8'],
    ['commission', 'int8'],
    ['cancellation_fee', 'int8'],
    ['last_position', 'int8'],
    ['discounts', 'jsonb'],
  ],
};
const TOP_UPS: ViewTable = {
  table: 'top_ups',
  keyColumns: ['tenant_id', 'top_up_id'],
  columns: [
    ['tenant_id', 'text'],
    ['top_up_id', 'text'],
    ['student_id', 'text'],
    ['currency', 'text'],
    ['amount', 'int8'],
    ['status', 'text'],
    ['payment_intent_id', 'text'],
    ['client_secret', 'text'],
    ['failure_reason', 'text'],
    ['refunded', 'int8'],
    ['last_position', 'int8'],
  ],
};
const PAYOUTS: ViewTable = {
  table: 'payouts',
  keyColumns: ['tenant_id', 'payout_id'],
  columns: [
    ['tenant_id', 'text'],
    ['payout_id', 'text'],
    ['tutor_id', 'text'],
    ['currency', 'text'],
    ['amount', 'int8'],
    ['status', 'text'],
    ['stripe_transfer_id', 'text'],
    ['stripe_payout_id', 'text'],
    ['failure_reason', 'text'],
    ['last_position', 'int8'],
  ],
};
const TUTOR_PAYOUTS: ViewTable = {
  table: 'tutor_payouts',
  keyColumns: ['tenant_id', 'tutor_id', 'currency'],
  columns: [
    ['tenant_id', 'text'],
    ['tutor_id', 'text'],
    ['currency', 'text'],
    ['paid_out', 'int8'],
    ['last_position', 'int8'],
  ],
};
const TABLES = [BOOKINGS, TOP_UPS, PAYOUTS, TUTOR_PAYOUTS];

/** One change to a view row: the row's key and a function from the old row (or undefined) to the new. */
interface Change {
  view: ViewTable;
  key: string[];
  update: (row: Row | undefined) => Row | undefined;
}

/**
 * The event types any view follows. Checked before anything is allocated for an event (most events of
 * a money-heavy history move no view); the switch in viewChangesFor handles exactly these, which the
 * compiler enforces (a type outside the union does not type-check; a missing case fails the
 * exhaustive default).
 */
const VIEW_EVENT_TYPES = [
  'WalletHoldPlaced',
  'BookingPlaced',
  'BookingCompleted',
  'BookingCancelled',
  'BookingExpired',
  'BookingRefunded',
  'WalletHoldReleased',
  'TopUpInitiated',
  'TopUpPaymentIntentCreated',
  'TopUpSucceeded',
  'TopUpFailed',
  'TopUpRefundedToCard',
  'TopUpCardRefundFailed',
  'TutorPayoutHoldPlaced',
  'PayoutRequested',
  'PayoutSubmitted',
  'PayoutPaid',
  'PayoutFailed',
  'TutorPayoutHoldPosted',
] as const satisfies readonly LedgerEventType[];
type ViewEventType = (typeof VIEW_EVENT_TYPES)[number];
const VIEW_EVENT_TYPE_SET: ReadonlySet<string> = new Set(VIEW_EVENT_TYPES);

function isViewEvent(event: DecodedEvent): event is DecodedEvent<ViewEventType> {
  return VIEW_EVENT_TYPE_SET.has(event.type);
}

/** Whether any view follows this event: the others can be dropped before applyEntityViews. */
export function movesAView(event: DecodedEvent): boolean {
  return isViewEvent(event);
}

function changesFor(event: DecodedEvent): Change[] {
  return isViewEvent(event) ? viewChangesFor(event) : [];
}

function viewChangesFor(event: DecodedEvent<ViewEventType>): Change[] {
  const { tenantId } = event;
  const pos = int8(event.position);
  const booking = (bookingId: string, update: Change['update']): Change[] => [
    { view: BOOKINGS, key: [tenantId, bookingId], update },
  ];
  const topUp = (topUpId: string, update: Change['update']): Change[] => [
    { view: TOP_UPS, key: [tenantId, topUpId], update },
  ];
  const payout = (payoutId: string, update: Change['update']): Change[] => [
    { view: PAYOUTS, key: [tenantId, payoutId], update },
  ];
  const existing = (patch: Row) => (row: Row | undefined) =>
    row ? { ...row, ...patch, last_position: pos } : row;
  const newBooking = (b: {
    bookingId: string;
    studentId: string;
    tutorId: string;
    price: number;
    currency: string;
    scheduledAt: string;
    holdId: string;
    discounts?: readonly unknown[] | undefined;
  }): Row => ({
    tenant_id: tenantId,
    booking_id: b.bookingId,
    student_id: b.studentId,
    tutor_id: b.tutorId,
    currency: b.currency,
    price: b.price,
    scheduled_at: b.scheduledAt,
    status: 'held',
    hold_id: b.holdId,
    captured: 0,
    refunded: 0,
    tutor_share: 0,
    commission: 0,
    cancellation_fee: 0,
    last_position: pos,
    discounts: JSON.stringify(b.discounts ?? []),
  });
  const newPayout = (p: { payoutId: string; tutorId: string; amount: number; currency: string }): Row => ({
    tenant_id: tenantId,
    payout_id: p.payoutId,
    tutor_id: p.tutorId,
    currency: p.currency,
    amount: p.amount,
    status: 'requested',
    stripe_transfer_id: null,
    stripe_payout_id: null,
    failure_reason: null,
    last_position: pos,
  });

  switch (event.type) {
    // Bookings: the booking stream records the booking; the wallet's hold (appended first) makes it
    // visible as soon as the money is reserved.
    case 'WalletHoldPlaced': {
      const d = event.data;
      return booking(d.bookingId, (row) => row ?? newBooking({ ...d, price: d.listPrice ?? d.amount }));
    }
    case 'BookingPlaced': {
      const placed = newBooking(event.data);
      return booking(event.data.bookingId, (row) =>
        row ? { ...placed, status: row.status ?? 'held' } : placed,
      );
    }
    case 'BookingCompleted': {
      const d = event.data;
      return booking(
        d.bookingId,
        existing({
          status: 'completed',
          captured: d.captured,
          tutor_share: d.tutorShare,
          commission: d.commission,
        }),
      );
    }
    case 'BookingCancelled': {
      const d = event.data;
      return booking(
        d.bookingId,
        existing({
          status: 'cancelled',
          cancellation_fee: d.fee,
          tutor_share: d.tutorShare,
          commission: d.commission,
        }),
      );
    }
    case 'BookingExpired':
      return booking(event.data.bookingId, existing({ status: 'expired' }));
    case 'WalletHoldReleased':
      // A hold released without its booking ever placed (refused, e.g. its promo code ran out): the
      // row the hold made early is closed; a placed booking's own event has already set its status.
      return booking(event.data.bookingId, (row) =>
        row &&
        row.status === 'held' &&
        row.student_id === event.data.studentId &&
        row.hold_id === event.data.holdId
          ? { ...row, status: 'cancelled', last_position: pos }
          : row,
      );
    case 'BookingRefunded':
      // refundedTotal is absolute, so the view does not depend on counting refunds.
      return booking(event.data.bookingId, existing({ refunded: event.data.refundedTotal }));

    // Top-ups: their own stream.
    case 'TopUpInitiated': {
      const d = event.data;
      return topUp(
        d.topUpId,
        (row) =>
          row ?? {
            tenant_id: tenantId,
            top_up_id: d.topUpId,
            student_id: d.studentId,
            currency: d.currency,
            amount: d.amount,
            status: 'pending',
            payment_intent_id: null,
            client_secret: null,
            failure_reason: null,
            refunded: 0,
            last_position: pos,
          },
      );
    }
    case 'TopUpPaymentIntentCreated':
      return topUp(
        event.data.topUpId,
        existing({ payment_intent_id: event.data.paymentIntentId, client_secret: event.data.clientSecret }),
      );
    case 'TopUpSucceeded':
      return topUp(
        event.data.topUpId,
        // The card step is over: the client secret is no longer served.
        existing({ status: 'succeeded', payment_intent_id: event.data.paymentIntentId, client_secret: null }),
      );
    case 'TopUpFailed':
      return topUp(
        event.data.topUpId,
        existing({ status: 'failed', client_secret: null, failure_reason: event.data.reason }),
      );
    // A failed card refund gives its amount back: the top-up shows what still stands refunded.
    case 'TopUpRefundedToCard':
    case 'TopUpCardRefundFailed': {
      const refunded = event.data.refundedTotal;
      return topUp(event.data.topUpId, (row) =>
        row
          ? {
              ...row,
              refunded,
              status:
                refunded === 0
                  ? 'succeeded'
                  : refunded >= Number(row.amount)
                    ? 'refunded'
                    : 'partially_refunded',
              last_position: pos,
            }
          : row,
      );
    }

    // Payouts: the tutor's hold (appended first) makes the payout visible; the payout stream moves it on.
    case 'TutorPayoutHoldPlaced':
    case 'PayoutRequested':
      return payout(event.data.payoutId, (row) => row ?? newPayout(event.data));
    case 'PayoutSubmitted':
    case 'PayoutPaid': {
      const d = event.data;
      return payout(
        d.payoutId,
        (row) =>
          row && {
            ...row,
            status: event.type === 'PayoutPaid' ? 'paid' : (row.status ?? 'requested'),
            stripe_transfer_id: d.stripeTransferId ?? row.stripe_transfer_id ?? null,
            stripe_payout_id: d.stripePayoutId ?? row.stripe_payout_id ?? null,
            last_position: pos,
          },
      );
    }
    case 'PayoutFailed':
      return payout(event.data.payoutId, existing({ status: 'failed', failure_reason: event.data.reason }));
    case 'TutorPayoutHoldPosted': {
      // Paid out = what left the tutor's available earnings in posted payout entries.
      const { tutorId, entry } = event.data;
      const account = tutorEarningsAvailable(tutorId);
      return entry.postings
        .filter((p) => p.account === account && p.side === 'debit' && p.effect === 'post')
        .map(
          (p): Change => ({
            view: TUTOR_PAYOUTS,
            key: [tenantId, tutorId, p.currency],
            update: (row) => ({
              tenant_id: tenantId,
              tutor_id: tutorId,
              currency: p.currency,
              paid_out: Number(row?.paid_out ?? 0) + p.amount,
              last_position: pos,
            }),
          }),
        );
    }
    default: {
      const unhandled: never = event;
      throw new InvariantViolation(`entity views list ${String(unhandled)} but do not handle it`);
    }
  }
}

export async function applyEntityViews(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  events: readonly DecodedEvent[],
): Promise<void> {
  const changes = events.flatMap(changesFor);
  if (changes.length === 0) return;
  for (const view of TABLES) {
    const mine = changes.filter((c) => c.view === view);
    if (mine.length === 0) continue;
    const keyOf = (k: readonly CellValue[]) => k.join('\u0000');
    const keys = new Map(mine.map((c) => [keyOf(c.key), c.key]));
    const rows = new Map<string, Row | undefined>();
    const loaded = (await trx.raw(
      `SELECT t.* FROM ${schema}.${view.table} t
         JOIN unnest(${view.keyColumns.map(() => '?::text[]').join(', ')}) AS k(${view.keyColumns.join(', ')})
           ON ${view.keyColumns.map((c) => `t.${c} = k.${c}`).join(' AND ')}`,
      view.keyColumns.map((_, i) => [...keys.values()].map((k) => k[i]!)),
    )) as { rows: Row[] };
    for (const r of loaded.rows) rows.set(keyOf(view.keyColumns.map((c) => r[c] ?? null)), r);
    const touched = new Set<string>();
    for (const c of mine) {
      const k = keyOf(c.key);
      const next = c.update(rows.get(k));
      if (next && next !== rows.get(k)) {
        rows.set(k, next);
        touched.add(k);
      }
    }
    // A jsonb cell read back from the table arrives parsed: it is written as its JSON text again.
    const cell = (value: unknown, type: Column[1]): CellValue =>
      type === 'jsonb' && value !== null && typeof value !== 'string'
        ? JSON.stringify(value)
        : (value as CellValue);
    const upserts = [...touched].map((k) =>
      view.columns.map(([name, type]) => cell(rows.get(k)![name] ?? null, type)),
    );
    const others = view.columns.map(([n]) => n).filter((n) => !view.keyColumns.includes(n));
    await insertRows(
      trx,
      `${schema}.${view.table}`,
      view.columns,
      upserts,
      `ON CONFLICT (${view.keyColumns.join(', ')}) DO UPDATE SET ${others.map((n) => `${n} = excluded.${n}`).join(', ')}`,
    );
  }
}
