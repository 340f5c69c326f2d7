import type { Knex } from 'knex';

/**
 * Reconciliation read model (src/reconciliation/readModel.ts): one row per run and one per exception
 * item (everything that is not a clean match). Written by the reconciler next to the run's events in
 * `reconciliation-{t}.{runId}`; amounts bigint minor units.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE reconciliation_runs (
      tenant_id text NOT NULL,
      run_id text NOT NULL,
      status text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
      scope jsonb NOT NULL,
      started_at timestamptz NOT NULL,
      completed_at timestamptz,
      summary jsonb,
      error text,
      PRIMARY KEY (tenant_id, run_id)
    )`);
  await knex.raw(`
    CREATE TABLE reconciliation_items (
      tenant_id text NOT NULL,
      run_id text NOT NULL,
      seq integer NOT NULL,
      classification text NOT NULL,
      stripe_object_id text,
      balance_transaction_id text,
      currency text,
      stripe_amount bigint,
      ledger_amount bigint,
      stripe_fee bigint,
      ledger_fee bigint,
      detail text NOT NULL,
      PRIMARY KEY (tenant_id, run_id, seq)
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS reconciliation_items');
  await knex.raw('DROP TABLE IF EXISTS reconciliation_runs');
}
