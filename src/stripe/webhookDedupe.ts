import type { Database } from '../db/database.js';
import { invariant } from '../domain/errors.js';

/**
 * Which Stripe webhook events were already handled, by Stripe event id. A fast path only: every command
 * a webhook runs has an idempotency key derived from the Stripe object id (e.g. `pi-succeeded:pi_...`),
 * so a duplicate that slips past (two deliveries at once, or a crash between the command and `record`)
 * still appends nothing. `record` runs after the command, so a failed attempt is retried in full.
 */
export interface WebhookDedupeStore {
  seen(eventId: string): Promise<boolean>;
  record(entry: { eventId: string; tenantId: string; type: string; outcome: string }): Promise<void>;
}

/** In-process store for tests and the embedded default: remembers the newest `maxEntries` ids. */
export class MemoryWebhookDedupeStore implements WebhookDedupeStore {
  private readonly ids = new Map<string, string>();
  constructor(private readonly maxEntries = 100_000) {
    invariant(maxEntries > 0, 'maxEntries must be > 0');
  }
  async seen(eventId: string): Promise<boolean> {
    return this.ids.has(eventId);
  }
  async record(entry: { eventId: string; outcome: string }): Promise<void> {
    this.ids.set(entry.eventId, entry.outcome);
    if (this.ids.size > this.maxEntries) {
      const oldest = this.ids.keys().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
  }
}

/** Postgres-backed store (table stripe_webhook_events, migration 0040), shared by every API process. */
export class PostgresWebhookDedupeStore implements WebhookDedupeStore {
  constructor(private readonly db: Database) {}

  async seen(eventId: string): Promise<boolean> {
    const row = await this.db.knex('stripe_webhook_events').where({ event_id: eventId }).first('event_id');
    return row !== undefined;
  }

  async record(entry: { eventId: string; tenantId: string; type: string; outcome: string }): Promise<void> {
    await this.db
      .knex('stripe_webhook_events')
      .insert({
        event_id: entry.eventId,
        tenant_id: entry.tenantId,
        event_type: entry.type,
        outcome: entry.outcome,
      })
      .onConflict('event_id')
      .ignore();
  }

  /** Deletes records older than `olderThanMs`, at most `limit` per call; returns how many went. */
  async prune(olderThanMs: number, limit = 10_000): Promise<number> {
    const cutoff = new Date(Date.now() - olderThanMs);
    const result = await this.db.knex.raw(
      `DELETE FROM stripe_webhook_events WHERE event_id IN (
         SELECT event_id FROM stripe_webhook_events WHERE processed_at < ? LIMIT ?)`,
      [cutoff, limit],
    );
    return (result as { rowCount?: number }).rowCount ?? 0;
  }
}
