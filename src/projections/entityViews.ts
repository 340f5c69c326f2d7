import type { Knex } from 'knex';
import type { JournalEntry } from '../domain/journal.js';
import type { JsonObject, RecordedEvent } from '../eventstore/port.js';
import { parseStreamName } from './eventShape.js';
import type { ReadModelSchema } from './schema.js';
import { type CellValue, type Column, insertRows, int8 } from './sql.js';

/**
 * Per-entity views (bookings, top-ups, payouts, tutor payout totals) folded from the events that the
 * domain defines (docs/ledger-flows.md). Bookings are folded from the wallet stream's hold events,
 * which carry every booking money fact (price, capture split, cancellation fee, refunds); top-ups and
 * payouts from their own streams plus the wallet/tutor events that move their money.
 *
 * Same shape as the ledger projection: load every touched row once, fold in memory, upsert once.
 */
export interface ProjectedEvent {
  event: RecordedEvent;
  entry: JournalEntry | null;
  tenantId: string;
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

function changesFor({ event, entry, tenantId }: ProjectedEvent): Change[] {
  const d = event.data;
  const pos = int8(event.position);
  const stream = parseStreamName(event.streamName);
  const booking = (id: string | undefined, update: Change['update']): Change[] =>
    id ? [{ view: BOOKINGS, key: [tenantId, id], update }] : [];
  const topUp = (id: string | undefined, update: Change['update']): Change[] =>
    id ? [{ view: TOP_UPS, key: [tenantId, id], update }] : [];
  const payout = (id: string | undefined, update: Change['update']): Change[] =>
    id ? [{ view: PAYOUTS, key: [tenantId, id], update }] : [];
  const existing = (patch: Row) => (row: Row | undefined) =>
    row ? { ...row, ...patch, last_position: pos } : row;

  switch (event.type) {
    case 'WalletHoldPlaced': {
      const m = money(d, 'amount');
      const studentId = str(d, 'studentId') ?? stream.entityId;
      return booking(str(d, 'bookingId'), (row) =>
        row || !m
          ? row
          : {
              tenant_id: tenantId,
              booking_id: str(d, 'bookingId')!,
              student_id: studentId,
              tutor_id: str(d, 'tutorId') ?? '',
              currency: m.currency,
              price: m.amount,
              scheduled_at: str(d, 'scheduledAt') ?? '',
              status: 'held',
              hold_id: str(d, 'holdId') ?? entry?.holdId ?? '',
              captured: 0,
              refunded: 0,
              tutor_share: 0,
              commission: 0,
              cancellation_fee: 0,
              last_position: pos,
            },
      );
    }
    case 'WalletHoldCaptured':
      return booking(
        str(d, 'bookingId'),
        existing({
          status: 'completed',
          captured: num(d, 'captured') ?? 0,
          tutor_share: num(d, 'tutorShare') ?? 0,
          commission: num(d, 'commission') ?? 0,
        }),
      );
    case 'WalletHoldReleased':
      return booking(
        str(d, 'bookingId'),
        existing({
          status: str(d, 'reason') === 'expired' ? 'expired' : 'cancelled',
          cancellation_fee: num(d, 'fee') ?? 0,
          tutor_share: num(d, 'tutorShare') ?? 0,
          commission: num(d, 'commission') ?? 0,
        }),
      );
    case 'WalletRefunded':
      return booking(str(d, 'bookingId'), (row) =>
        row ? { ...row, refunded: Number(row.refunded) + (num(d, 'amount') ?? 0), last_position: pos } : row,
      );
    case 'TopUpInitiated': {
      const m = money(d, 'amount');
      return topUp(str(d, 'topUpId') ?? stream.entityId, (row) =>
        row || !m
          ? row
          : {
              tenant_id: tenantId,
              top_up_id: str(d, 'topUpId') ?? stream.entityId,
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
        str(d, 'topUpId') ?? stream.entityId,
        existing({
          payment_intent_id: str(d, 'paymentIntentId') ?? null,
          client_secret: str(d, 'clientSecret') ?? null,
        }),
      );
    case 'TopUpSucceeded':
    case 'WalletToppedUp': {
      const id = event.type === 'WalletToppedUp' ? str(d, 'topUpId') : (str(d, 'topUpId') ?? stream.entityId);
      const m = money(d, 'amount');
      return topUp(id, (row) => {
        const base = row ?? {
          // The wallet's event can be the first the projection sees of a top-up (e.g. imported history).
          tenant_id: tenantId,
          top_up_id: id!,
          student_id: str(d, 'studentId') ?? '',
          currency: m?.currency ?? '',
          amount: m?.amount ?? 0,
          payment_intent_id: null,
          failure_reason: null,
          refunded: 0,
        };
        const succeeded =
          base.status === 'refunded' || base.status === 'partially_refunded' ? base.status : 'succeeded';
        return {
          ...base,
          status: succeeded,
          payment_intent_id: str(d, 'paymentIntentId') ?? base.payment_intent_id ?? null,
          client_secret: null,
          last_position: pos,
        };
      });
    }
    case 'TopUpFailed':
      return topUp(
        str(d, 'topUpId') ?? stream.entityId,
        existing({ status: 'failed', client_secret: null, failure_reason: str(d, 'reason') ?? null }),
      );
    case 'WalletRefundedToCard':
      return topUp(str(d, 'topUpId'), (row) => {
        if (!row) return row;
        const refunded = Number(row.refunded) + (num(d, 'amount') ?? 0);
        return {
          ...row,
          refunded,
          status: refunded >= Number(row.amount) ? 'refunded' : 'partially_refunded',
          last_position: pos,
        };
      });
    case 'TutorPayoutHoldPlaced':
    case 'PayoutRequested': {
      const m = money(d, 'amount');
      const id = str(d, 'payoutId') ?? (event.type === 'PayoutRequested' ? stream.entityId : undefined);
      const tutorId = str(d, 'tutorId') ?? (stream.category === 'tutor' ? stream.entityId : '');
      return payout(id, (row) =>
        row || !m
          ? row
          : {
              tenant_id: tenantId,
              payout_id: id!,
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
      return payout(
        stream.category === 'payout' ? stream.entityId : str(d, 'payoutId'),
        existing({
          stripe_transfer_id: str(d, 'transferId') ?? str(d, 'stripeTransferId') ?? null,
          stripe_payout_id: str(d, 'stripePayoutId') ?? str(d, 'payoutId') ?? null,
        }),
      );
    case 'TutorPayoutHoldPosted':
    case 'PayoutPaid': {
      const id =
        event.type === 'PayoutPaid' && stream.category === 'payout' ? stream.entityId : str(d, 'payoutId');
      const changes = payout(
        id,
        (row) =>
          row && {
            ...row,
            status: 'paid',
            stripe_transfer_id: str(d, 'stripeTransferId') ?? row.stripe_transfer_id ?? null,
            stripe_payout_id: str(d, 'stripePayoutId') ?? row.stripe_payout_id ?? null,
            last_position: pos,
          },
      );
      // Paid out = what left the tutor's available earnings in posted payout entries.
      if (event.type === 'TutorPayoutHoldPosted' && entry && stream.category === 'tutor') {
        const account = `tutor:${stream.entityId}:earnings:available`;
        for (const p of entry.postings) {
          if (p.account !== account || p.side !== 'debit' || p.effect !== 'post') continue;
          changes.push({
            view: TUTOR_PAYOUTS,
            key: [tenantId, stream.entityId, p.currency],
            update: (row) => ({
              tenant_id: tenantId,
              tutor_id: stream.entityId,
              currency: p.currency,
              paid_out: Number(row?.paid_out ?? 0) + p.amount,
              last_position: pos,
            }),
          });
        }
      }
      return changes;
    }
    case 'TutorPayoutHoldReleased':
    case 'PayoutFailed': {
      const id =
        event.type === 'PayoutFailed' && stream.category === 'payout' ? stream.entityId : str(d, 'payoutId');
      return payout(
        id,
        (row) =>
          row && {
            ...row,
            status: 'failed',
            failure_reason: str(d, 'reason') ?? row.failure_reason ?? null,
            last_position: pos,
          },
      );
    }
    default:
      return [];
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
