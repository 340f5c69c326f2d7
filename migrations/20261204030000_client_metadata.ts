import type { Knex } from 'knex';
import { clientMetadataIndexStatement, LIVE_SCHEMA, SHADOW_SCHEMA } from '../src/projections/schema.js';

/**
 * The caller's metadata on journal entries (src/domain/clientMetadata.ts): a nullable jsonb column and
 * its GIN index in the live schema; fresh databases get both from 0010. Entries projected before this
 * migration came from events without metadata, so NULL is their true value and nothing needs a rebuild.
 * A shadow schema of a rebuild in progress gets the column too, so the rebuild resumes with this code.
 */
export async function up(knex: Knex): Promise<void> {
  for (const schema of [LIVE_SCHEMA, SHADOW_SCHEMA]) {
    await knex.raw(
      `ALTER TABLE IF EXISTS ${schema}.journal_entries ADD COLUMN IF NOT EXISTS client_metadata jsonb`,
    );
  }
  await knex.raw(clientMetadataIndexStatement(LIVE_SCHEMA));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX IF EXISTS ${LIVE_SCHEMA}.journal_entries_client_metadata`);
  await knex.raw(
    `ALTER TABLE IF EXISTS ${LIVE_SCHEMA}.journal_entries DROP COLUMN IF EXISTS client_metadata`,
  );
}
