import type { Knex } from 'knex';
import { LIVE_SCHEMA, largeVolumeIndexStatement } from '../src/projections/schema.js';

/**
 * The partial index of balances near the ledger's per-account limit (src/domain/ledgerLimits.ts), which
 * the command layer reads before it lets more money onto a shared account; fresh databases and
 * rebuilds get it with the other read-model indexes.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(largeVolumeIndexStatement(LIVE_SCHEMA));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX IF EXISTS ${LIVE_SCHEMA}.balances_large_volume`);
}
