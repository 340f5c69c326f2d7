import type { Knex } from 'knex';
import {
  createEffectivePostingsTable,
  effectivePostingsIndexStatement,
} from '../src/projections/effectivePostings.js';
import {
  LIVE_SCHEMA,
  type ReadModelSchema,
  SHADOW_SCHEMA,
  secureReadModelSchema,
} from '../src/projections/schema.js';

/**
 * The bi-temporal as-of index (src/projections/effectivePostings.ts) in an existing database. Every
 * event projected before it has no effectiveAt (the field did not exist), so each line is effective
 * when it was recorded and known from then on: its row is its `postings` row, with effective_at and
 * known_at the recorded time. Fresh databases get the table from 0010. A shadow schema of a rebuild in
 * progress gets it too (filled from its own postings), so the rebuild resumes with this code.
 */
async function tableExists(knex: Knex, schema: string, table: string): Promise<boolean> {
  const r = (await knex.raw(
    'SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?',
    [schema, table],
  )) as { rows: unknown[] };
  return r.rows.length > 0;
}

async function addTo(knex: Knex, schema: ReadModelSchema): Promise<void> {
  // No read models there, or created by 0010 of this version (already complete).
  if (!(await tableExists(knex, schema, 'postings'))) return;
  if (await tableExists(knex, schema, 'effective_postings')) return;
  await createEffectivePostingsTable(knex, schema);
  await knex.raw(`
    INSERT INTO ${schema}.effective_postings
      (tenant_id, account, currency, effective_at, position, line, entry_id, side, effect, amount,
       debits_pending, debits_posted, credits_pending, credits_posted, version, known_at, known_position)
    SELECT tenant_id, account, currency, occurred_at, position, line, entry_id, side, effect, amount,
           debits_pending, debits_posted, credits_pending, credits_posted, version, occurred_at, position
      FROM ${schema}.postings`);
  await knex.raw(effectivePostingsIndexStatement(schema));
  await secureReadModelSchema(knex, schema);
  await knex.raw(`ANALYZE ${schema}.effective_postings`);
}

export async function up(knex: Knex): Promise<void> {
  await addTo(knex, LIVE_SCHEMA);
  await addTo(knex, SHADOW_SCHEMA);
}

export async function down(knex: Knex): Promise<void> {
  for (const schema of [LIVE_SCHEMA, SHADOW_SCHEMA]) {
    await knex.raw(`DROP TABLE IF EXISTS ${schema}.effective_postings`);
  }
}
