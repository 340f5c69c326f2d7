import Fastify, { type FastifyInstance } from 'fastify';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore, RecordedEvent } from '../../src/eventstore/port.js';
import type { FakeStripeServer } from '../../src/stripe/fake/server.js';
import type { StripeGateway } from '../../src/stripe/stripeGateway.js';
import { MemoryWebhookDedupeStore, type WebhookDedupeStore } from '../../src/stripe/webhookDedupe.js';
import { stripeWebhookRoutes } from '../../src/stripe/webhookRoute.js';
import { startFakeStripe } from './support.js';

export const WEBHOOK_SECRET = 'whsec_test_secret_for_the_fake';
export const TENANT = 't1';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

export interface LedgerHarness {
  store: MemoryEventStore;
  service: LedgerService;
  fake: FakeStripeServer;
  gateway: StripeGateway;
  app: FastifyInstance;
  dedupe: WebhookDedupeStore;
  webhookUrl: string;
  ctx(key: string, role?: string): CommandContext;
  close(): Promise<void>;
}

/**
 * The real command layer (createLedgerService on MemoryEventStore) with the Stripe adapter pointed at
 * the fake, and the webhook route served by a real fastify listening on loopback, which the fake
 * delivers signed webhooks to.
 */
export async function startLedgerHarness(
  options: { dedupe?: WebhookDedupeStore } = {},
): Promise<LedgerHarness> {
  const store = new MemoryEventStore();
  const app = Fastify({ logger: false });
  const { fake, gateway, stop } = await startFakeStripe({ fake: { webhookRetryBaseDelayMs: 5 } });
  const service = createLedgerService({ store, clock: () => new Date(), gateway });
  const dedupe = options.dedupe ?? new MemoryWebhookDedupeStore();
  await app.register(
    stripeWebhookRoutes({
      commands: service,
      webhookSecret: WEBHOOK_SECRET,
      dedupe,
      logger: quiet,
      lookup: gateway,
    }),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const webhookUrl = `http://127.0.0.1:${port}/v1/webhooks/stripe`;
  fake.webhooks.setTarget({ url: webhookUrl, secret: WEBHOOK_SECRET });
  return {
    store,
    service,
    fake,
    gateway,
    app,
    dedupe,
    webhookUrl,
    ctx: (key, role = 'service') => ({
      tenantId: TENANT,
      actor: { id: 'test', role },
      idempotencyKey: key,
      correlationId: key,
      causationId: key,
    }),
    async close() {
      await stop();
      await app.close();
    },
  };
}

export async function allEvents(store: EventStore): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  let after: bigint | undefined;
  for (;;) {
    const page = await store.readAll({ maxCount: 500, ...(after !== undefined ? { after } : {}) });
    out.push(...page);
    const last = page[page.length - 1];
    if (!last || page.length < 500) return out;
    after = last.position;
  }
}

/** Posted balance (debits - credits) per `account|currency`, folded from every event's entry. */
export async function postedBalances(store: EventStore): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const e of await allEvents(store)) {
    const entry = e.data.entry as
      | {
          postings?: Array<{
            account: string;
            side: string;
            effect: string;
            amount: number;
            currency: string;
          }>;
        }
      | undefined;
    for (const p of entry?.postings ?? []) {
      if (p.effect !== 'post') continue;
      const key = `${p.account}|${p.currency}`;
      out[key] = (out[key] ?? 0) + (p.side === 'debit' ? p.amount : -p.amount);
    }
  }
  for (const [k, v] of Object.entries(out)) if (v === 0) delete out[k];
  return out;
}

export async function countEvents(store: EventStore, type: string): Promise<number> {
  return (await allEvents(store)).filter((e) => e.type === type).length;
}
