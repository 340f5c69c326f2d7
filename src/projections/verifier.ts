import type { Database } from '../db/database.js';
import { invariant } from '../domain/errors.js';
import { decodeEvent, entryOf } from '../domain/events.js';
import type { EventStore } from '../eventstore/port.js';
import {
  applyPosting,
  availableOf,
  balanceKey,
  normalSideOf,
  pendingOf,
  postedOf,
  type Totals,
  ZERO_TOTALS,
} from './balances.js';
import { type MetricDelta, metricDeltasOf, metricKey, sumDeltas } from './dailyMetrics.js';
import { type BalanceRow, balanceRowOf } from './ledgerProjection.js';
import { LIVE_SCHEMA } from './schema.js';
import { readStalls, tenantOfEvent } from './stalls.js';

export type DifferenceKind =
  | 'balance_mismatch'
  | 'missing_in_read_model'
  | 'extra_in_read_model'
  | 'trial_balance_not_zero'
  | 'clearing_not_zero'
  | 'version_gap'
  | 'daily_metric_mismatch'
  /** A tenant's read models are stopped at an event they cannot apply (stalls.ts). */
  | 'projection_stalled'
  /** The read models are further behind the event store's head than the bound. */
  | 'behind_head';

export interface Difference {
  kind: DifferenceKind;
  tenantId: string;
  account?: string;
  currency: string;
  detail: string;
}

export interface VerifyOptions {
  db: Database;
  store: EventStore;
  /** Events per readAll page (≤ 10 000). */
  pageSize?: number;
  /** Differences kept in the result (all are counted). */
  maxDifferences?: number;
  /** A clearing account non-zero for longer than this (since its last posting) is reported. */
  clearingMaxAgeMs?: number;
  /** …or for more than this many positions behind the checkpoint (off when undefined). */
  clearingMaxAgePositions?: number;
  now?: () => Date;
  /** The read models may be at most this many positions behind the event store's head (default 1,000). */
  maxBehindPositions?: number;
}

export interface VerifyResult {
  ok: boolean;
  /** The read models' checkpoint; events were folded up to it, so both sides describe the same instant. */
  position: bigint;
  /** The event store's head when the check ended. */
  head: bigint;
  eventsFolded: number;
  accountsChecked: number;
  totalDifferences: number;
  differences: Difference[];
}

interface Folded extends Totals {
  tenantId: string;
  account: string;
  currency: string;
  version: number;
  lastPosition: bigint;
}

/**
 * Recomputes every balance by folding the events (the source of truth) and compares it with the read
 * models: the four totals, available, version and last position of every account; the trial balance per
 * tenant and currency (posted and pending); clearing accounts left non-zero too long; and version gaps
 * in the posting history. Read-only.
 */
export async function verifyReadModels(options: VerifyOptions): Promise<VerifyResult> {
  const { db, store } = options;
  const pageSize = options.pageSize ?? 5_000;
  invariant(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 10_000, 'pageSize must be 1..10000');
  const maxDifferences = options.maxDifferences ?? 50;
  const clearingMaxAgeMs = options.clearingMaxAgeMs ?? 30 * 24 * 3_600_000;
  const now = (options.now ?? (() => new Date()))();

  // One snapshot of the read models: checkpoint, balances and version gaps agree with each other.
  const snapshot = await db.knex.transaction(async (trx) => {
    await trx.raw('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const cp = (
      await trx.raw(`SELECT position::text AS p FROM ${LIVE_SCHEMA}.checkpoint WHERE name = 'ledger'`)
    ).rows as Array<{ p: string }>;
    const balances = (await trx.raw(`SELECT * FROM ${LIVE_SCHEMA}.balances`)).rows as Array<
      Record<string, unknown>
    >;
    const gaps = (
      await trx.raw(`
        SELECT p.tenant_id, p.account, p.currency, count(DISTINCT p.version)::int8 AS n, min(p.version) AS lo,
               max(p.version) AS hi, max(b.version) AS current
          FROM ${LIVE_SCHEMA}.postings p
          LEFT JOIN ${LIVE_SCHEMA}.balances b
            ON b.tenant_id = p.tenant_id AND b.account = p.account AND b.currency = p.currency
         GROUP BY p.tenant_id, p.account, p.currency
        HAVING min(p.version) <> 1 OR max(p.version) <> count(DISTINCT p.version)
            OR max(p.version) IS DISTINCT FROM max(b.version)
         LIMIT 1000`)
    ).rows as Array<Record<string, unknown>>;
    const metrics = (
      await trx.raw(
        `SELECT tenant_id, day::text AS day, currency, metric, amount, count FROM ${LIVE_SCHEMA}.daily_metrics`,
      )
    ).rows as Array<Record<string, unknown>>;
    const stalls = await readStalls(trx, LIVE_SCHEMA);
    return { position: BigInt(cp[0]?.p ?? '-1'), balances, gaps, metrics, stalls };
  });
  // A stalled tenant's read models stop at its stalled event: the fold stops there for it too, and the
  // stall itself is a difference.
  const stalledFrom = new Map(snapshot.stalls.map((st) => [st.tenantId, st.position]));

  const differences: Difference[] = [];
  let totalDifferences = 0;
  const report = (d: Difference) => {
    totalDifferences++;
    if (differences.length < maxDifferences) differences.push(d);
  };

  // Fold the events up to the snapshot's checkpoint.
  const folded = new Map<string, Folded>();
  // The analytics' daily aggregates carry money: folded from the same events by the same rule.
  const foldedMetrics = new Map<string, MetricDelta>();
  let eventsFolded = 0;
  let after = -1n;
  while (after < snapshot.position) {
    const page = await store.readAll({ ...(after >= 0n ? { after } : {}), maxCount: pageSize });
    if (page.length === 0) break;
    for (const event of page) {
      if (event.position > snapshot.position) break;
      after = event.position;
      const stalledAt = stalledFrom.size === 0 ? undefined : stalledFrom.get(tenantOfEvent(event));
      if (stalledAt !== undefined && event.position >= stalledAt) continue;
      eventsFolded++;
      const decoded = decodeEvent(event);
      const entry = entryOf(decoded);
      if (!entry) continue;
      const tenantId = decoded.tenantId;
      sumDeltas(metricDeltasOf(decoded), foldedMetrics);
      const bumped = new Set<string>();
      for (const p of entry.postings) {
        const key = balanceKey(tenantId, p.account, p.currency);
        const cur = folded.get(key) ?? {
          ...ZERO_TOTALS,
          tenantId,
          account: p.account,
          currency: p.currency,
          version: 0,
          lastPosition: -1n,
        };
        const version = bumped.has(key) ? cur.version : cur.version + 1;
        bumped.add(key);
        folded.set(key, { ...cur, ...applyPosting(cur, p), version, lastPosition: event.position });
      }
    }
    if (page[page.length - 1]!.position >= snapshot.position) break;
  }

  const model = new Map<string, BalanceRow>();
  for (const r of snapshot.balances) {
    const row = balanceRowOf(r);
    model.set(balanceKey(row.tenantId, row.account, row.currency), row);
  }

  const fields = ['debitsPending', 'debitsPosted', 'creditsPending', 'creditsPosted', 'version'] as const;
  for (const [key, f] of folded) {
    const m = model.get(key);
    const where = { tenantId: f.tenantId, account: f.account, currency: f.currency };
    if (!m) {
      report({
        kind: 'missing_in_read_model',
        ...where,
        detail: `events give version ${f.version}, read model has no row`,
      });
      continue;
    }
    const wrong = fields.filter((k) => m[k] !== f[k]).map((k) => `${k}: read model ${m[k]}, events ${f[k]}`);
    const available = availableOf(f, normalSideOf(f.account));
    if (m.available !== available) wrong.push(`available: read model ${m.available}, events ${available}`);
    if (m.lastPosition !== f.lastPosition)
      wrong.push(`lastPosition: read model ${m.lastPosition}, events ${f.lastPosition}`);
    if (wrong.length > 0) report({ kind: 'balance_mismatch', ...where, detail: wrong.join('; ') });
  }
  for (const [key, m] of model) {
    if (!folded.has(key)) {
      report({
        kind: 'extra_in_read_model',
        tenantId: m.tenantId,
        account: m.account,
        currency: m.currency,
        detail: `read model has version ${m.version}, events have no posting`,
      });
    }
  }

  // Trial balance per tenant and currency, on both sides.
  for (const [source, rows] of [
    ['events', [...folded.values()]],
    ['read model', [...model.values()]],
  ] as const) {
    const sums = new Map<string, { tenantId: string; currency: string; posted: number; pending: number }>();
    for (const r of rows) {
      const k = `${r.tenantId}/${r.currency}`;
      const s = sums.get(k) ?? { tenantId: r.tenantId, currency: r.currency, posted: 0, pending: 0 };
      s.posted += r.debitsPosted - r.creditsPosted;
      s.pending += r.debitsPending - r.creditsPending;
      sums.set(k, s);
    }
    for (const s of sums.values()) {
      if (s.posted !== 0 || s.pending !== 0) {
        report({
          kind: 'trial_balance_not_zero',
          tenantId: s.tenantId,
          currency: s.currency,
          detail: `${source}: posted debits - credits = ${s.posted}, pending debits - credits = ${s.pending}`,
        });
      }
    }
  }

  for (const m of model.values()) {
    if (!m.account.startsWith('clearing:')) continue;
    const posted = postedOf(m, 'credit');
    const pending = pendingOf(m, 'credit');
    if (posted === 0 && pending === 0) continue;
    const ageMs = now.getTime() - Date.parse(m.lastOccurredAt);
    const agePositions = snapshot.position - m.lastPosition;
    const tooOld =
      ageMs > clearingMaxAgeMs ||
      (options.clearingMaxAgePositions !== undefined &&
        agePositions > BigInt(options.clearingMaxAgePositions));
    if (tooOld) {
      report({
        kind: 'clearing_not_zero',
        tenantId: m.tenantId,
        account: m.account,
        currency: m.currency,
        detail: `posted ${posted}, pending ${-pending} for ${Math.round(ageMs / 1000)} s (${agePositions} positions) since position ${m.lastPosition}`,
      });
    }
  }

  compareDailyMetrics(foldedMetrics, snapshot.metrics, model, report);

  for (const g of snapshot.gaps) {
    report({
      kind: 'version_gap',
      tenantId: String(g.tenant_id),
      account: String(g.account),
      currency: String(g.currency),
      detail: `posting versions ${g.lo}..${g.hi} over ${g.n} distinct values; balance version ${g.current ?? 'missing'}`,
    });
  }

  for (const st of snapshot.stalls) {
    report({
      kind: 'projection_stalled',
      tenantId: st.tenantId,
      currency: '',
      detail: `${st.projection} stopped at position ${st.position} (${st.eventType} ${st.eventId} in ${st.streamName}) since ${st.stalledAt.toISOString()}: ${st.reason}`,
    });
  }
  const maxBehind = options.maxBehindPositions ?? 1_000;
  const head = await store.headPosition();
  if (head - snapshot.position > BigInt(maxBehind)) {
    report({
      kind: 'behind_head',
      tenantId: '*',
      currency: '',
      detail: `read models at position ${snapshot.position}, the event store's head at ${head}: ${head - snapshot.position} behind (bound ${maxBehind})`,
    });
  }

  return {
    ok: totalDifferences === 0,
    position: snapshot.position,
    head,
    eventsFolded,
    accountsChecked: folded.size,
    totalDifferences,
    differences,
  };
}

/**
 * daily_metrics against the fold of the events (every row, both ways), and the stock it keeps of money
 * held for students against the wallets' balances: the running sum of its daily changes must be what
 * the student wallets hold now, per tenant and currency.
 */
function compareDailyMetrics(
  folded: Map<string, MetricDelta>,
  rows: Array<Record<string, unknown>>,
  balances: Map<string, BalanceRow>,
  report: (d: Difference) => void,
): void {
  const stored = new Map<string, MetricDelta>();
  for (const r of rows) {
    const d: MetricDelta = {
      tenantId: String(r.tenant_id),
      day: String(r.day),
      currency: String(r.currency),
      metric: String(r.metric) as MetricDelta['metric'],
      amount: Number(r.amount),
      count: Number(r.count),
    };
    stored.set(metricKey(d), d);
  }
  for (const [key, f] of folded) {
    const s = stored.get(key);
    if (!s || s.amount !== f.amount || s.count !== f.count) {
      report({
        kind: 'daily_metric_mismatch',
        tenantId: f.tenantId,
        currency: f.currency,
        detail: `${f.metric} on ${f.day}: read model ${s ? `${s.amount} (${s.count})` : 'missing'}, events ${f.amount} (${f.count})`,
      });
    }
  }
  for (const [key, s] of stored) {
    if (!folded.has(key)) {
      report({
        kind: 'daily_metric_mismatch',
        tenantId: s.tenantId,
        currency: s.currency,
        detail: `${s.metric} on ${s.day}: read model ${s.amount} (${s.count}), events have none`,
      });
    }
  }
  const held = new Map<string, { tenantId: string; currency: string; metrics: number; wallets: number }>();
  const entry = (tenantId: string, currency: string) => {
    const k = `${tenantId}\u0000${currency}`;
    let h = held.get(k);
    if (!h) {
      h = { tenantId, currency, metrics: 0, wallets: 0 };
      held.set(k, h);
    }
    return h;
  };
  for (const s of stored.values())
    if (s.metric === 'held_for_students') entry(s.tenantId, s.currency).metrics += s.amount;
  for (const b of balances.values()) {
    if (b.account.startsWith('student:') && b.account.endsWith(':wallet'))
      entry(b.tenantId, b.currency).wallets += postedOf(b, 'credit');
  }
  for (const h of held.values()) {
    if (h.metrics !== h.wallets) {
      report({
        kind: 'daily_metric_mismatch',
        tenantId: h.tenantId,
        currency: h.currency,
        detail: `money held for students: daily metrics sum to ${h.metrics}, student wallets hold ${h.wallets}`,
      });
    }
  }
}
