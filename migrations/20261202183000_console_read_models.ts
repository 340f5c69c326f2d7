import type { Knex } from 'knex';
import {
  consoleIndexStatements,
  createConsoleReadModelTables,
  LIVE_SCHEMA,
  secureReadModelSchema,
} from '../src/projections/schema.js';

/**
 * The finance console's read models (search terms, event references, daily metrics, active wallets)
 * and its lookup indexes, added to an existing live schema; fresh databases get them from 0010.
 *
 * The new tables start empty and fill from the next projected event on. Events projected before this
 * migration reach them with one `npm run cli -- projections rebuild` (it replays everything into a shadow
 * schema and swaps it in, so the app keeps serving meanwhile); until then search, stories and analytics
 * cover only what happened since the upgrade, and `npm run cli -- verify` reports the daily metrics as
 * different from the events, so the gap cannot go unnoticed.
 */
export async function up(knex: Knex): Promise<void> {
  const exists = (await knex.raw(
    `SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = 'search_terms'`,
    [LIVE_SCHEMA],
  )) as { rows: unknown[] };
  if (exists.rows.length === 0) await createConsoleReadModelTables(knex, LIVE_SCHEMA);
  for (const sql of consoleIndexStatements(LIVE_SCHEMA)) await knex.raw(sql);
  await secureReadModelSchema(knex, LIVE_SCHEMA);
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['search_terms', 'event_refs', 'daily_metrics', 'daily_active_wallets']) {
    await knex.raw(`DROP TABLE IF EXISTS ${LIVE_SCHEMA}.${table}`);
  }
  for (const index of [
    'audit_events_event_id',
    'audit_events_causation',
    'audit_events_entry_time',
    'journal_entries_prefix',
    'balances_account_prefix',
  ]) {
    await knex.raw(`DROP INDEX IF EXISTS ${LIVE_SCHEMA}.${index}`);
  }
}
