import type { Knex } from 'knex';
import { APP_ROLE, LIVE_SCHEMA, SHADOW_SCHEMA, stallsTableStatement } from '../src/projections/schema.js';

/**
 * The projection's per-tenant quarantine (src/projections/stalls.ts): fresh databases and rebuilds get
 * the table with the other read models; this adds it to a live schema (and a rebuild in progress).
 */
export async function up(knex: Knex): Promise<void> {
  for (const schema of [LIVE_SCHEMA, SHADOW_SCHEMA] as const) {
    const exists = (await knex.raw('SELECT 1 FROM pg_namespace WHERE nspname = ?', [schema])) as {
      rows: unknown[];
    };
    if (exists.rows.length === 0) continue;
    await knex.raw(stallsTableStatement(schema));
    await knex.raw(`GRANT SELECT ON ${schema}.projection_stalls TO ${APP_ROLE}`);
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE IF EXISTS ${LIVE_SCHEMA}.projection_stalls`);
}
