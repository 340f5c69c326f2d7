import type { Knex } from 'knex';

/** Idempotency-Key records of the HTTP API when Redis is not configured (src/api/idempotency.ts). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE api_idempotency_keys (
      scope text PRIMARY KEY,
      fingerprint text NOT NULL,
      state text NOT NULL CHECK (state IN ('in_flight', 'completed')),
      token text NOT NULL,
      response_status integer,
      response_body text,
      response_content_type text,
      locked_until timestamptz NOT NULL,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK (state = 'in_flight' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
    )`);
  await knex.raw('CREATE INDEX api_idempotency_keys_expires_at ON api_idempotency_keys (expires_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS api_idempotency_keys');
}
