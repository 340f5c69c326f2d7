import type { Knex } from 'knex';
import { LIVE_SCHEMA, SHADOW_SCHEMA } from '../src/projections/schema.js';

/**
 * A booking's discounts in its read model (src/domain/bookingPrice.ts: kind, reference, amount): a jsonb
 * array, `[]` for every booking projected before discounts existed (their true value, so nothing needs a
 * rebuild); fresh databases get it from 0010. A shadow schema of a rebuild in progress gets it too.
 */
export async function up(knex: Knex): Promise<void> {
  for (const schema of [LIVE_SCHEMA, SHADOW_SCHEMA]) {
    await knex.raw(
      `ALTER TABLE IF EXISTS ${schema}.bookings ADD COLUMN IF NOT EXISTS discounts jsonb NOT NULL DEFAULT '[]'::jsonb`,
    );
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE IF EXISTS ${LIVE_SCHEMA}.bookings DROP COLUMN IF EXISTS discounts`);
}
