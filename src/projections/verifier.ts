import type { Database } from '../db/database.js';
import { invariant } from '../domain/errors.js';
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
import { entryOf, tenantOf } from './eventShape.js';
import { type BalanceRow, balanceRowOf } from './ledgerProjection.js';
import { LIVE_SCHEMA } from './schema.js';

export type DifferenceKind =
  | 'balance_mismatch'
  | 'missing_in_read_model'
  | 'extra_in_read_model'
  | 'trial_balance_not_zero'
  | 'clearing_not_zero'
  | 'version_gap';

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
}

export interface VerifyResult {
  ok: boolean;
  /** The read models' checkpoint; events were folded up to it, so both sides describe the same instant. */
  position: bigint;
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
    return { position: BigInt(cp[0]?.p ?? '-1'), balances, gaps };
  });

  const differences: Difference[] = [];
  let totalDifferences = 0;
  const report = (d: Difference) => {
    totalDifferences++;
    if (differences.length < maxDifferences) differences.push(d);
  };

  // Fold the events up to the snapshot's checkpoint.
  const folded = new Map<string, Folded>();
  let eventsFolded = 0;
  let after = -1n;
  while (after < snapshot.position) {
    const page = await store.readAll({ ...(after >= 0n ? { after } : {}), maxCount: pageSize });
    if (page.length === 0) break;
    for (const event of page) {
      if (event.position > snapshot.position) break;
      after = event.position;
      eventsFolded++;
      const entry = entryOf(event);
      if (!entry) continue;
      const tenantId = tenantOf(event);
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

  for (const g of snapshot.gaps) {
    report({
      kind: 'version_gap',
      tenantId: String(g.tenant_id),
      account: String(g.account),
      currency: String(g.currency),
      detail: `posting versions ${g.lo}..${g.hi} over ${g.n} distinct values; balance version ${g.current ?? 'missing'}`,
    });
  }

  return {
    ok: totalDifferences === 0,
    position: snapshot.position,
    eventsFolded,
    accountsChecked: folded.size,
    totalDifferences,
    differences,
  };
}
