import type { Knex } from 'knex';
import { invariant } from '../domain/errors.js';
import { LARGE_VOLUME_SQL, LIVE_SCHEMA } from './schema.js';

/** An account's volume (the sum of its four totals) in the live read model. */
export interface AccountVolumeRow {
  tenantId: string;
  account: string;
  currency: string;
  volume: number;
}

/** Bound on the accounts near the limit read at once (there are none in a healthy ledger). */
const MAX_WATCHED = 10_000;

/**
 * The read model's side of the command layer's per-account limit (src/commands/accountVolumeGuard.ts):
 * which balances are past the watch mark (the partial index balances_large_volume), and the exact
 * volumes of a few accounts. Read as the owner, like the projection and the verifier: this is the
 * ledger's own check, not a tenant's read.
 */
export function readModelAccountVolumes(knex: Knex): {
  atLeast(atLeast: number): Promise<AccountVolumeRow[]>;
  of(
    tenantId: string,
    keys: ReadonlyArray<{ account: string; currency: string }>,
  ): Promise<AccountVolumeRow[]>;
} {
  const rowsOf = (rows: Array<Record<string, unknown>>): AccountVolumeRow[] =>
    rows.map((r) => ({
      tenantId: String(r.tenant_id),
      account: String(r.account),
      currency: String(r.currency),
      volume: Number(r.volume),
    }));
  return {
    async atLeast(atLeast) {
      invariant(Number.isSafeInteger(atLeast), 'atLeast must be a safe integer');
      // Inlined, not bound: the planner uses the partial index only when it can see the constant.
      const result = (await knex.raw(
        `SELECT tenant_id, account, currency, ${LARGE_VOLUME_SQL}::text AS volume
           FROM ${LIVE_SCHEMA}.balances WHERE ${LARGE_VOLUME_SQL} >= ${atLeast} LIMIT ${MAX_WATCHED}`,
      )) as { rows: Array<Record<string, unknown>> };
      return rowsOf(result.rows);
    },
    async of(tenantId, keys) {
      if (keys.length === 0) return [];
      const result = (await knex.raw(
        `SELECT b.tenant_id, b.account, b.currency, (b.debits_pending + b.debits_posted + b.credits_pending
                + b.credits_posted)::text AS volume
           FROM ${LIVE_SCHEMA}.balances b
           JOIN unnest(?::text[], ?::text[]) AS k(account, currency)
             ON b.tenant_id = ? AND b.account = k.account AND b.currency = k.currency`,
        [keys.map((k) => k.account), keys.map((k) => k.currency), tenantId],
      )) as { rows: Array<Record<string, unknown>> };
      return rowsOf(result.rows);
    },
  };
}
