import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryWebhookDedupeStore, PostgresWebhookDedupeStore } from '../../src/stripe/webhookDedupe.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('webhook dedupe stores', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t.dispose();
  });

  it('Postgres: records once, answers seen, prunes old rows', async () => {
    const store = new PostgresWebhookDedupeStore(t.db);
    expect(await store.seen('evt_1')).toBe(false);
    await store.record({
      eventId: 'evt_1',
      tenantId: 't1',
      type: 'payment_intent.succeeded',
      outcome: 'applied',
    });
    await store.record({
      eventId: 'evt_1',
      tenantId: 't1',
      type: 'payment_intent.succeeded',
      outcome: 'applied',
    });
    expect(await store.seen('evt_1')).toBe(true);
    await t.db.knex.raw(`UPDATE stripe_webhook_events SET processed_at = now() - interval '40 days'`);
    expect(await store.prune(30 * 86_400_000)).toBe(1);
    expect(await store.seen('evt_1')).toBe(false);
  });

  it('memory: bounded, forgets the oldest', async () => {
    const store = new MemoryWebhookDedupeStore(2);
    for (const id of ['a', 'b', 'c']) await store.record({ eventId: id, outcome: 'applied' });
    expect([await store.seen('a'), await store.seen('b'), await store.seen('c')]).toEqual([
      false,
      true,
      true,
    ]);
  });
});
