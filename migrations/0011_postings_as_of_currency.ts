import type { Knex } from 'knex';
import { LIVE_SCHEMA, POSTINGS_AS_OF_INDEXES, RETIRED_POSTINGS_INDEXES } from '../src/projections/schema.js';

/**
 * The as-of indexes of `postings` gain `currency` after `account` (schema.ts, POSTINGS_AS_OF_INDEXES), so
 * "balance as of position/time" is one backward seek whatever the account's currencies. Fresh databases
 * get them from 0010 (finalizeReadModelSchema); this replaces the earlier ones in an existing live schema.
 *
 * Plain CREATE INDEX, not CONCURRENTLY: knex runs every migration of this project in a transaction (the
 * static migration source in src/db/migrate.ts passes no per-migration config), and CONCURRENTLY cannot
 * run in one. The build holds a SHARE lock on postings: reads go on, the projection runner's next batch
 * waits until the migration commits (seconds per million postings). On a database too large for that
 * pause, run `npm run cli -- projections rebuild` with the new version instead: it builds the new indexes
 * in the shadow schema and swaps them in, and this migration then finds them in place.
 */
export async function up(knex: Knex): Promise<void> {
  for (const { name, columns } of POSTINGS_AS_OF_INDEXES) {
    await knex.raw(`CREATE INDEX IF NOT EXISTS ${name} ON ${LIVE_SCHEMA}.postings ${columns}`);
  }
  for (const { name } of RETIRED_POSTINGS_INDEXES)
    await knex.raw(`DROP INDEX IF EXISTS ${LIVE_SCHEMA}.${name}`);
  await knex.raw(`ANALYZE ${LIVE_SCHEMA}.postings`);
}

export async function down(knex: Knex): Promise<void> {
  for (const { name, columns } of RETIRED_POSTINGS_INDEXES) {
    await knex.raw(`CREATE INDEX IF NOT EXISTS ${name} ON ${LIVE_SCHEMA}.postings ${columns}`);
  }
  for (const { name } of POSTINGS_AS_OF_INDEXES)
    await knex.raw(`DROP INDEX IF EXISTS ${LIVE_SCHEMA}.${name}`);
}
