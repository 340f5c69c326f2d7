import type { Knex } from 'knex';
import { InvariantViolation } from '../domain/errors.js';
import type { JournalEntry } from '../domain/journal.js';
import type { JsonObject, RecordedEvent } from '../eventstore/port.js';
import type { StreamParts } from './eventShape.js';
import type { ReadModelSchema } from './schema.js';
import { type CellValue, type Column, insertRows, int8 } from './sql.js';

/**
 * Per-entity views (bookings, top-ups, payouts, tutor payout totals) folded from the events that the
 * domain defines (src/domain/{booking,topUp,payout,tutor,wallet}.ts, docs/ledger-flows.md). Each view
 * follows its entity's own stream; the constrained-account event appended first in a flow (wallet hold,
 * tutor payout hold) only creates the row early so it is visible as soon as the money is reserved.
 *
 * Same shape as the ledger projection: load every touched row once, fold in memory, upsert once.
 */
export interface ProjectedEvent {
  event: RecordedEvent;
  entry: JournalEntry | null;
  tenantId: string;
  stream: StreamParts;
}

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

const str = (d: JsonObject, k: string): string | undefined => {
  const v = d[k];
  return typeof v === 'string' ? v : undefined;
};
const num = (d: JsonObject, k: string): number | undefined => {
  const v = d[k];
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
};
/** Money fields appear as flat `amount` + `currency` or as `{amount, currency}` objects. */
function money(d: JsonObject, k: string): { amount: number; currency: string } | undefined {
  const v = d[k];
  if (typeof v === 'number') {
    const currency = str(d, 'currency');
    return currency ? { amount: v, currency } : undefined;
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const amount = num(v, 'amount');
    const currency = str(v, 'currency');
    return amount !== undefined && currency ? { amount, currency } : undefined;
  }
  return undefined;
}

/** One change to a view row: the row's key and a function from the old row (or undefined) to the new. */
interface Change {
  view: ViewTable;
  key: string[];
  update: (row: Row | undefined) => Row | undefined;
}

/**
 * The event types any view follows. Checked before anything is parsed or allocated for an event (most
 * events of a money-heavy history move no view); the switch in changesFor must handle exactly these,
 * which the compiler enforces (a case outside the list does not type-check; a missing one fails the
 * exhaustive default).
 */
const VIEW_EVENT_TYPES = [
  'WalletHoldPlaced',
  'BookingPlaced',
  'BookingCompleted',
  'BookingCancelled',
  'BookingExpired',
  'BookingRefunded',
  'TopUpInitiated',
  'TopUpPaymentIntentCreated',
  'TopUpSucceeded',
  'TopUpFailed',
  'TopUpRefundedToCard',
  'TutorPayoutHoldPlaced',
  'PayoutRequested',
  'PayoutSubmitted',
  'PayoutPaid',
  'PayoutFailed',
  'TutorPayoutHoldPosted',
] as const;
type ViewEventType = (typeof VIEW_EVENT_TYPES)[number];
const VIEW_EVENT_TYPE_SET: ReadonlySet<string> = new Set(VIEW_EVENT_TYPES);

function isViewEvent(type: string): type is ViewEventType {
  return VIEW_EVENT_TYPE_SET.has(type);
}

/** Whether any view follows this event: the others can be dropped before applyEntityViews. */
export function movesAView(projected: ProjectedEvent): boolean {
  return isViewEvent(projected.event.type);
}

function changesFor(projected: ProjectedEvent): Change[] {
  const type = projected.event.type;
  return isViewEvent(type) ? viewChangesFor(projected, type) : [];
}

function viewChangesFor({ event, entry, tenantId, stream }: ProjectedEvent, type: ViewEventType): Change[] {
  const d = event.data;
  const pos = int8(event.position);
  const booking = (id: string | undefined, update: Change['update']): Change[] =>
    id ? [{ view: BOOKINGS, key: [tenantId, id], update }] : [];
  const topUp = (id: string | undefined, update: Change['update']): Change[] =>
    id ? [{ view: TOP_UPS, key: [tenantId, id], update }] : [];
  const payout = (id: string | undefined, update: Change['update']): Change[] =>
    id ? [{ view: PAYOUTS, key: [tenantId, id], update }] : [];
  const existing = (patch: Row) => (row: Row | undefined) =>
    row ? { ...row, ...patch, last_position: pos } : row;

  const bookingId = str(d, 'bookingId') ?? (stream.category === 'booking' ? stream.entityId : undefined);
  const topUpId = str(d, 'topUpId') ?? (stream.category === 'topup' ? stream.entityId : undefined);
  const payoutId = str(d, 'payoutId') ?? (stream.category === 'payout' ? stream.entityId : undefined);
  const newBooking = (status: string): Row | undefined => {
    const m = money(d, 'price') ?? money(d, 'amount');
    if (!bookingId || !m) return undefined;
    return {
      tenant_id: tenantId,
      booking_id: bookingId,
      student_id: str(d, 'studentId') ?? '',
      tutor_id: str(d, 'tutorId') ?? '',
      currency: m.currency,
      price: m.amount,
      scheduled_at: str(d, 'scheduledAt') ?? '',
      status,
      hold_id: str(d, 'holdId') ?? entry?.holdId ?? '',
      captured: 0,
      refunded: 0,
      tutor_share: 0,
      commission: 0,
      cancellation_fee: 0,
      last_position: pos,
    };
  };

  switch (type) {
    // Bookings: the booking stream records the booking; the wallet's hold (appended first) makes it
    // visible as soon as the money is reserved.
    case 'WalletHoldPlaced':
      return booking(bookingId, (row) => row ?? newBooking('held'));
    case 'BookingPlaced':
      return booking(bookingId, (row) => {
        const placed = newBooking('held');
        return row && placed ? { ...placed, status: row.status ?? 'held' } : (placed ?? row);
      });
    case 'BookingCompleted':
      return booking(
        bookingId,
        existing({
          status: 'completed',
          captured: num(d, 'captured') ?? 0,
          tutor_share: num(d, 'tutorShare') ?? 0,
          commission: num(d, 'commission') ?? 0,
        }),
      );
    case 'BookingCancelled':
      return booking(
        bookingId,
        existing({
          status: 'cancelled',
          cancellation_fee: num(d, 'fee') ?? 0,
          tutor_share: num(d, 'tutorShare') ?? 0,
          commission: num(d, 'commission') ?? 0,
        }),
      );
    case 'BookingExpired':
      return booking(bookingId, existing({ status: 'expired' }));
    case 'BookingRefunded':
      // refundedTotal is absolute, so the view does not depend on counting refunds.
      return booking(bookingId, (row) =>
        row
          ? {
              ...row,
              refunded: num(d, 'refundedTotal') ?? Number(row.refunded) + (num(d, 'amount') ?? 0),
              last_position: pos,
            }
          : row,
      );

    // Top-ups: their own stream.
    case 'TopUpInitiated': {
      const m = money(d, 'amount');
      return topUp(topUpId, (row) =>
        row || !m
          ? row
          : {
              tenant_id: tenantId,
              top_up_id: topUpId!,
              student_id: str(d, 'studentId') ?? '',
              currency: m.currency,
              amount: m.amount,
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
        topUpId,
        existing({
          payment_intent_id: str(d, 'paymentIntentId') ?? null,
          client_secret: str(d, 'clientSecret') ?? null,
        }),
      );
    case 'TopUpSucceeded':
      return topUp(
        topUpId,
        existing({
          status: 'succeeded',
          payment_intent_id: str(d, 'paymentIntentId') ?? null,
          // The card step is over: the client secret is no longer served.
          client_secret: null,
        }),
      );
    case 'TopUpFailed':
      return topUp(
        topUpId,
        existing({ status: 'failed', client_secret: null, failure_reason: str(d, 'reason') ?? null }),
      );
    case 'TopUpRefundedToCard':
      return topUp(topUpId, (row) => {
        if (!row) return row;
        const refunded = num(d, 'refundedTotal') ?? Number(row.refunded) + (num(d, 'amount') ?? 0);
        return {
          ...row,
          refunded,
          status: refunded >= Number(row.amount) ? 'refunded' : 'partially_refunded',
          last_position: pos,
        };
      });

    // Payouts: the tutor's hold (appended first) makes the payout visible; the payout stream moves it on.
    case 'TutorPayoutHoldPlaced':
    case 'PayoutRequested': {
      const m = money(d, 'amount');
      const tutorId = str(d, 'tutorId') ?? (stream.category === 'tutor' ? stream.entityId : '');
      return payout(payoutId, (row) =>
        row || !m
          ? row
          : {
              tenant_id: tenantId,
              payout_id: payoutId!,
              tutor_id: tutorId,
              currency: m.currency,
              amount: m.amount,
              status: 'requested',
              stripe_transfer_id: null,
              stripe_payout_id: null,
              failure_reason: null,
              last_position: pos,
            },
      );
    }
    case 'PayoutSubmitted':
    case 'PayoutPaid':
      return payout(
        payoutId,
        (row) =>
          row && {
            ...row,
            status: event.type === 'PayoutPaid' ? 'paid' : (row.status ?? 'requested'),
            stripe_transfer_id: str(d, 'stripeTransferId') ?? row.stripe_transfer_id ?? null,
            stripe_payout_id: str(d, 'stripePayoutId') ?? row.stripe_payout_id ?? null,
            last_position: pos,
          },
      );
    case 'PayoutFailed':
      return payout(
        payoutId,
        (row) =>
          row && { ...row, status: 'failed', failure_reason: str(d, 'reason') ?? null, last_position: pos },
      );
    case 'TutorPayoutHoldPosted': {
      // Paid out = what left the tutor's available earnings in posted payout entries.
      const tutorId = str(d, 'tutorId') ?? stream.entityId;
      const account = `tutor:${tutorId}:earnings:available`;
      return (entry?.postings ?? [])
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
      const unhandled: never = type;
      throw new InvariantViolation(`entity views list ${String(unhandled)} but do not handle it`);
    }
  }
}

export async function applyEntityViews(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  events: readonly ProjectedEvent[],
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
    const upserts = [...touched].map((k) => view.columns.map(([name]) => rows.get(k)![name] ?? null));
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
