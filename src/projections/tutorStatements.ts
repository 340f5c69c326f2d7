import type { Database } from '../db/database.js';
import {
  PLATFORM_REVENUE_COMMISSION,
  PLATFORM_TAX_PAYABLE,
  tutorEarningsAvailable,
  tutorEarningsPending,
  tutorReceivable,
} from '../domain/accounts.js';
import { InvariantViolation } from '../domain/errors.js';
import { queryAsTenant } from './readTransaction.js';
import { LIVE_SCHEMA } from './schema.js';

/**
 * A tutor's statement for a period [from, to), from the read models: opening and closing balances of
 * the tutor's three accounts (pending and available earnings, receivable: clawbacks owed) and every
 * entry that moved one of them, classified by what caused it, with the commission and tax the platform
 * took on each capture. A pure function of the entries with occurredAt in the period, so the statement
 * of a past period is the same whenever it is asked for (docs/documents.md, "Tutor statements").
 *
 * "Net" is what the platform owes the tutor: pending + available - receivable.
 */
const S = LIVE_SCHEMA;

/** At most this many entries in one statement (a month of a very busy tutor fits; more is refused). */
export const MAX_STATEMENT_ENTRIES = 20_000;

export type StatementCategory =
  | 'earnings'
  | 'cancellation_fee'
  | 'cleared'
  | 'refund'
  | 'clawback'
  | 'payout'
  | 'adjustment'
  | 'other';

export interface AccountBalances {
  pending: number;
  available: number;
  receivable: number;
  net: number;
}

export interface TutorStatementLine {
  occurredAt: string;
  position: string;
  entryId: string;
  eventType: string;
  category: StatementCategory;
  description: string;
  /** Changes of each account's balance (receivable: what is owed by the tutor), and of the net. */
  change: AccountBalances;
  /** For captures and fees: what the student paid, the commission and the tax on it. */
  charged: number;
  commission: number;
  tax: number;
}

export interface TutorStatement {
  tutorId: string;
  currency: string;
  from: string;
  to: string;
  opening: AccountBalances;
  closing: AccountBalances;
  lines: TutorStatementLine[];
  totals: {
    /** Tutor shares earned (captures and late-cancellation fees). */
    earnings: number;
    /** What students paid for them (tutor share + commission + tax). */
    gross: number;
    commission: number;
    tax: number;
    refunds: number;
    clawbacks: number;
    payouts: number;
    adjustments: number;
    other: number;
  };
}

const ZERO = (): AccountBalances => ({ pending: 0, available: 0, receivable: 0, net: 0 });

function categoryOf(eventType: string, change: AccountBalances): StatementCategory {
  switch (eventType) {
    case 'WalletHoldCaptured':
      return 'earnings';
    case 'WalletHoldReleased':
      return 'cancellation_fee';
    case 'TutorEarningsCleared':
      return 'cleared';
    case 'TutorEarningsReversed':
      return change.receivable > 0 ? 'clawback' : 'refund';
    case 'TutorPayoutHoldPosted':
      return 'payout';
    case 'TutorAdjusted':
      return 'adjustment';
    default:
      return 'other';
  }
}

interface Row {
  position: string | number;
  occurred_at: Date | string;
  entry_id: string;
  account: string;
  side: 'debit' | 'credit';
  amount: string | number;
  event_type: string;
  description: string;
}

const iso = (value: Date | string) => (value instanceof Date ? value : new Date(value)).toISOString();

export class TutorStatementQueries {
  constructor(private readonly db: Database) {}

  /** The currencies the tutor's accounts ever held, in order. */
  async currencies(tenantId: string, tutorId: string, before: Date): Promise<string[]> {
    const accounts = [
      tutorEarningsPending(tutorId),
      tutorEarningsAvailable(tutorId),
      tutorReceivable(tutorId),
    ];
    const [rows] = await queryAsTenant(this.db, tenantId, [
      {
        sql: `SELECT DISTINCT currency FROM ${S}.postings
               WHERE tenant_id = ? AND account IN (?, ?, ?) AND occurred_at < ?::timestamptz ORDER BY currency`,
        bindings: [tenantId, ...accounts, before.toISOString()],
      },
    ]);
    return rows!.map((r) => String(r.currency));
  }

  async statement(
    tenantId: string,
    tutorId: string,
    currency: string,
    from: Date,
    to: Date,
  ): Promise<TutorStatement> {
    const pending = tutorEarningsPending(tutorId);
    const available = tutorEarningsAvailable(tutorId);
    const receivable = tutorReceivable(tutorId);
    const accounts = [pending, available, receivable];
    const balanceAt = (at: Date) => ({
      // The account's totals after its last posting before `at` (the as-of index: one seek per account).
      sql: `SELECT DISTINCT ON (account) account, debits_posted, credits_posted
              FROM ${S}.postings
             WHERE tenant_id = ? AND account IN (?, ?, ?) AND currency = ? AND occurred_at < ?::timestamptz
             ORDER BY account, occurred_at DESC, position DESC, line DESC`,
      bindings: [tenantId, ...accounts, currency, at.toISOString()],
    });
    const [openingRows, closingRows, lineRows, platformRows] = await queryAsTenant(this.db, tenantId, [
      balanceAt(from),
      balanceAt(to),
      {
        sql: `SELECT p.position, p.occurred_at, p.entry_id, p.account, p.side, p.amount, a.event_type, e.description
                FROM ${S}.postings p
                JOIN ${S}.audit_events a ON a.tenant_id = p.tenant_id AND a.position = p.position
                JOIN ${S}.journal_entries e ON e.tenant_id = p.tenant_id AND e.entry_id = p.entry_id
               WHERE p.tenant_id = ? AND p.account IN (?, ?, ?) AND p.currency = ? AND p.effect = 'post'
                 AND p.occurred_at >= ?::timestamptz AND p.occurred_at < ?::timestamptz
               ORDER BY p.occurred_at, p.position, p.line
               LIMIT ?`,
        bindings: [
          tenantId,
          ...accounts,
          currency,
          from.toISOString(),
          to.toISOString(),
          MAX_STATEMENT_ENTRIES * 3 + 1,
        ],
      },
      {
        // The commission and tax booked by the same events (captures and fees) as the tutor's share.
        sql: `WITH t AS (
                SELECT DISTINCT position FROM ${S}.postings
                 WHERE tenant_id = ? AND account = ? AND currency = ? AND effect = 'post' AND side = 'credit'
                   AND occurred_at >= ?::timestamptz AND occurred_at < ?::timestamptz)
              SELECT p.position, p.account, p.side, p.amount FROM ${S}.postings p JOIN t ON t.position = p.position
               WHERE p.tenant_id = ? AND p.account IN (?, ?) AND p.effect = 'post'`,
        bindings: [
          tenantId,
          pending,
          currency,
          from.toISOString(),
          to.toISOString(),
          tenantId,
          PLATFORM_REVENUE_COMMISSION,
          PLATFORM_TAX_PAYABLE,
        ],
      },
    ]);
    const balances = (rows: Array<Record<string, unknown>>): AccountBalances => {
      const b = ZERO();
      for (const r of rows) {
        const net = Number(r.credits_posted) - Number(r.debits_posted);
        if (r.account === pending) b.pending = net;
        if (r.account === available) b.available = net;
        // An asset: what the tutor owes is its debit balance.
        if (r.account === receivable) b.receivable = -net;
      }
      b.net = b.pending + b.available - b.receivable;
      return b;
    };
    const opening = balances(openingRows!);
    const closing = balances(closingRows!);
    const platformByPosition = new Map<string, { commission: number; tax: number }>();
    for (const r of platformRows!) {
      const key = String(r.position);
      const cur = platformByPosition.get(key) ?? { commission: 0, tax: 0 };
      const signed = r.side === 'credit' ? Number(r.amount) : -Number(r.amount);
      if (r.account === PLATFORM_REVENUE_COMMISSION) cur.commission += signed;
      else cur.tax += signed;
      platformByPosition.set(key, cur);
    }
    const rows = lineRows as unknown as Row[];
    if (rows.length > MAX_STATEMENT_ENTRIES * 3) {
      throw new InvariantViolation(
        `statement of tutor ${tutorId}: more than ${MAX_STATEMENT_ENTRIES} entries`,
      );
    }
    const lines: TutorStatementLine[] = [];
    for (const r of rows) {
      const position = String(r.position);
      let line = lines.at(-1);
      if (!line || line.position !== position) {
        const platform = platformByPosition.get(position) ?? { commission: 0, tax: 0 };
        line = {
          occurredAt: iso(r.occurred_at),
          position,
          entryId: r.entry_id,
          eventType: r.event_type,
          category: 'other',
          description: r.description,
          change: ZERO(),
          charged: 0,
          commission: platform.commission,
          tax: platform.tax,
        };
        lines.push(line);
      }
      const signed = r.side === 'credit' ? Number(r.amount) : -Number(r.amount);
      if (r.account === pending) line.change.pending += signed;
      else if (r.account === available) line.change.available += signed;
      else line.change.receivable -= signed;
      line.change.net = line.change.pending + line.change.available - line.change.receivable;
    }
    const totals = {
      earnings: 0,
      gross: 0,
      commission: 0,
      tax: 0,
      refunds: 0,
      clawbacks: 0,
      payouts: 0,
      adjustments: 0,
      other: 0,
    };
    for (const line of lines) {
      line.category = categoryOf(line.eventType, line.change);
      switch (line.category) {
        case 'earnings':
        case 'cancellation_fee':
          line.charged = line.change.net + line.commission + line.tax;
          totals.earnings += line.change.net;
          totals.gross += line.charged;
          totals.commission += line.commission;
          totals.tax += line.tax;
          break;
        case 'refund':
          totals.refunds += -line.change.net;
          break;
        case 'clawback':
          totals.clawbacks += -line.change.net;
          break;
        case 'payout':
          totals.payouts += -line.change.net;
          break;
        case 'adjustment':
          totals.adjustments += line.change.net;
          break;
        case 'other':
          totals.other += line.change.net;
          break;
        case 'cleared':
          break;
      }
    }
    const moved = lines.reduce((sum, l) => sum + l.change.net, 0);
    if (opening.net + moved !== closing.net) {
      throw new InvariantViolation(
        `statement of tutor ${tutorId} (${currency}): opening ${opening.net} + movements ${moved} != closing ${closing.net}`,
      );
    }
    return {
      tutorId,
      currency,
      from: from.toISOString(),
      to: to.toISOString(),
      opening,
      closing,
      lines,
      totals,
    };
  }
}
