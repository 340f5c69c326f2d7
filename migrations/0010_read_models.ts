import type { Knex } from 'knex';
import {
  createReadModelTables,
  ensureAppRole,
  finalizeReadModelSchema,
  LIVE_SCHEMA,
  SHADOW_SCHEMA,
} from '../src/projections/schema.js';

/**
 * Read models (src/projections/schema.ts). The DDL is shared with the rebuild, which creates the same
 * tables in a shadow schema; a later change to it needs a new migration that alters the live schema too.
 * `ledger_app` is cluster-wide and may be used by other databases, so `down` leaves it in place.
 */
export async function up(knex: Knex): Promise<void> {
  await ensureAppRole(knex);
  await createReadModelTables(knex, LIVE_SCHEMA);
  await finalizeReadModelSchema(knex, LIVE_SCHEMA);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP SCHEMA IF EXISTS ${SHADOW_SCHEMA} CASCADE`);
  await knex.raw(`DROP SCHEMA IF EXISTS ${LIVE_SCHEMA} CASCADE`);
}
