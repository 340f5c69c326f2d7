import type { Knex } from 'knex';

/**
 * Stripe webhook events already handled, by Stripe event id (src/stripe/webhookDedupe.ts). Stripe event
 * ids are global to the platform account, so the event id alone is the key; tenant_id records whose
 * event it was ('' when it was not ours). Rows older than the retention are pruned.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE stripe_webhook_events (
      event_id text PRIMARY KEY,
      tenant_id text NOT NULL,
      event_type text NOT NULL,
      outcome text NOT NULL,
      processed_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw('CREATE INDEX stripe_webhook_events_processed_at ON stripe_webhook_events (processed_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS stripe_webhook_events');
}
