import type { Database } from '../db/database.js';
import type { ReconciliationSummary } from '../reconciliation/types.js';
import { LIVE_SCHEMA } from './schema.js';

/**
 * What an operator is alerted on that only the stores know, read when /metrics is scraped (so every
 * process reports the same, whichever wrote it): clearing accounts that did not return to zero, and
 * what the latest reconciliation of each tenant found. Bounded: one row per tenant (and kind/currency).
 */

/** A clearing account still non-zero this long after its last posting needs a person. */
export const CLEARING_ALERT_AGE_HOURS = 24;

export interface ClearingNotZero {
  tenantId: string;
  accounts: number;
}

/** Per tenant, clearing accounts non-zero (posted or pending) for more than CLEARING_ALERT_AGE_HOURS. */
export async function clearingAccountsNotZero(db: Database): Promise<ClearingNotZero[]> {
  const rows = (
    (await db.knex.raw(
      `SELECT tenant_id, count(*)::int AS accounts FROM ${LIVE_SCHEMA}.balances
       WHERE account LIKE 'clearing:%'
         AND (debits_posted <> credits_posted OR debits_pending <> credits_pending)
         AND last_occurred_at < now() - make_interval(hours => ?)
       GROUP BY tenant_id ORDER BY tenant_id LIMIT 10000`,
      [CLEARING_ALERT_AGE_HOURS],
    )) as { rows: Array<{ tenant_id: string; accounts: number }> }
  ).rows;
  return rows.map((r) => ({ tenantId: r.tenant_id, accounts: r.accounts }));
}

export interface LatestReconciliation {
  tenantId: string;
  completedAt: Date;
  summary: ReconciliationSummary;
}

/** The latest completed reconciliation run of each tenant. */
export async function latestReconciliations(db: Database): Promise<LatestReconciliation[]> {
  const rows = (
    (await db.knex.raw(
      `SELECT DISTINCT ON (tenant_id) tenant_id, completed_at, summary FROM reconciliation_runs
       WHERE status = 'completed' AND summary IS NOT NULL
       ORDER BY tenant_id, completed_at DESC LIMIT 10000`,
    )) as { rows: Array<{ tenant_id: string; completed_at: Date | string; summary: unknown }> }
  ).rows;
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    completedAt: new Date(r.completed_at),
    summary: (typeof r.summary === 'string' ? JSON.parse(r.summary) : r.summary) as ReconciliationSummary,
  }));
}
