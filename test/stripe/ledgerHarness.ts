import pino from 'pino';
import { buildApp, type LedgerApp } from '../../src/api/app.js';
import { createMetrics } from '../../src/api/metrics.js';
import { MemoryRateLimiter } from '../../src/api/rateLimit.js';
import { stripeWebhookRoutes } from '../../src/api/routes/stripeWebhook.js';
import type { CommandContext } from '../../src/commands/context.js';
import {
  createLedgerService,
  type LedgerService,
  type PayoutRetryOptions,
} from '../../src/commands/ledgerService.js';
import { decodeEventOf } from '../../src/domain/events.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore, RecordedEvent } from '../../src/eventstore/port.js';
import type { FakeStripeServer, FakeStripeServerOptions } from '../../src/stripe/fake/server.js';
import type { StripeGateway } from '../../src/stripe/stripeGateway.js';
import { MemoryWebhookDedupeStore, type WebhookDedupeStore } from '../../src/stripe/webhookDedupe.js';
import { FakeLedger } from '../api/support/fakeLedger.js';
import { JWT_SECRET, LOOSE_LIMITS } from '../api/support/harness.js';
import { MemoryIdempotencyStore } from '../api/support/memoryIdempotencyStore.js';
import { startFakeStripe } from './support.js';

export const WEBHOOK_SECRET = 'whsec_test_secret_for_the_fake';
export const CONNECT_WEBHOOK_SECRET = 'whsec_test_connect_secret_for_the_fake';
export const TENANT = 't1';
/** Where Stripe's onboarding sends tutors back to in these tests (the tenant's settings would say). */
export const ONBOARDING_URLS = {
  returnUrl: 'https://tutors.example/payouts/done',
  refreshUrl: 'https://tutors.example/payouts/again',
};

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

export interface LedgerHarness {
  store: MemoryEventStore;
  service: LedgerService;
  fake: FakeStripeServer;
  gateway: StripeGateway;
  app: LedgerApp;
  dedupe: WebhookDedupeStore;
  webhookUrl: string;
  /** The Connect endpoint (events of connected accounts, signed with CONNECT_WEBHOOK_SECRET). */
  connectWebhookUrl: string;
  ctx(key: string, role?: string): CommandContext;
  close(): Promise<void>;
}

/**
 * The real command layer (createLedgerService on MemoryEventStore) with the Stripe adapter pointed at
 * the fake, and the API (its /v1 context with the webhook route module, as src/server.ts wires it)
 * listening on loopback, which the fake delivers signed webhooks to. Nothing here reads the read
 * models, so the queries are the API test double's.
 */
export async function startLedgerHarness(
  options: {
    dedupe?: WebhookDedupeStore;
    realistic?: boolean;
    /** Fake Stripe options on top of the above (e.g. a shorter availableAfterSeconds). */
    fake?: FakeStripeServerOptions;
    payoutRetry?: PayoutRetryOptions;
  } = {},
): Promise<LedgerHarness> {
  const store = new MemoryEventStore();
  // By default onboarded accounts and funds available at once: those scenarios are about the money
  // flows, not onboarding or settlement delays. `realistic` keeps Stripe's behaviour (accounts start
  // restricted, card funds pending for days) for the suites that test exactly that.
  const { fake, gateway, stop } = await startFakeStripe({
    fake: {
      ...(options.realistic
        ? { webhookRetryBaseDelayMs: 5 }
        : { webhookRetryBaseDelayMs: 5, accountsStartEnabled: true, availableAfterSeconds: 0 }),
      ...options.fake,
    },
  });
  const service = createLedgerService({
    store,
    clock: () => new Date(),
    gateway,
    onboardingFallbackUrls: () => ONBOARDING_URLS,
    ...(options.payoutRetry ? { payoutRetry: options.payoutRetry } : {}),
  });
  const dedupe = options.dedupe ?? new MemoryWebhookDedupeStore();
  const app = buildApp({
    commands: service,
    queries: new FakeLedger().queries,
    store,
    auth: { jwtSecret: JWT_SECRET },
    idempotency: new MemoryIdempotencyStore(),
    rateLimiter: new MemoryRateLimiter({ maxKeys: 1_000 }),
    rateLimits: LOOSE_LIMITS,
    readiness: [],
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    metrics: createMetrics(),
    docsUi: false,
    routes: [
      stripeWebhookRoutes({
        commands: service,
        secrets: { platform: WEBHOOK_SECRET, connect: CONNECT_WEBHOOK_SECRET },
        dedupe,
        logger: quiet,
        lookup: gateway,
      }),
    ],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const webhookUrl = `http://127.0.0.1:${port}/v1/webhooks/stripe`;
  const connectWebhookUrl = `${webhookUrl}/connect`;
  fake.webhooks.setTarget({ url: webhookUrl, secret: WEBHOOK_SECRET });
  fake.webhooks.setConnectTarget({ url: connectWebhookUrl, secret: CONNECT_WEBHOOK_SECRET });
  return {
    store,
    service,
    fake,
    gateway,
    app,
    dedupe,
    webhookUrl,
    connectWebhookUrl,
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

/**
 * One money scenario over the real SDK, fake Stripe, webhooks and command layer: top-ups (confirmed,
 * declined then paid, declined), a partial refund to the card, two payouts (paid, failed) and a dispute
 * opened and won. `inspect` runs on the harness before it closes.
 */
export async function runScenario<T>(
  options: { reorder: boolean },
  inspect: (h: LedgerHarness) => Promise<T>,
): Promise<T> {
  const reorder = options.reorder;
  const h = await startLedgerHarness();
  try {
    h.fake.setWebhookFaults({ reorder, duplicate: reorder });
    // Top-ups: one confirmed by the client and then partly refunded to the card, one declined first and
    // then paid with another card, one declined for good.
    const a = await scenarioTopUp(h, 'a', 20_000);
    await h.gateway.stripe.paymentIntents.confirm(a.topUp.paymentIntentId as string, {
      payment_method: 'pm_card_visa',
    });
    await h.gateway.refundPaymentIntent({
      idempotencyKey: 'refund-a-1',
      paymentIntentId: a.topUp.paymentIntentId as string,
      amount: 4_000,
      metadata: { tenantId: TENANT, topUpId: 'a' },
    });
    const b = await scenarioTopUp(h, 'b', 6_000);
    await h.gateway.stripe.paymentIntents
      .confirm(b.topUp.paymentIntentId as string, { payment_method: 'pm_card_chargeDeclined' })
      .catch(() => undefined);
    await h.gateway.stripe.paymentIntents.confirm(b.topUp.paymentIntentId as string, {
      payment_method: 'pm_card_visa',
    });
    const c = await scenarioTopUp(h, 'c', 2_000);
    await h.gateway.stripe.paymentIntents
      .confirm(c.topUp.paymentIntentId as string, {
        payment_method: 'pm_card_chargeDeclinedInsufficientFunds',
      })
      .catch(() => undefined);
    // Payouts: give two tutors withdrawable earnings, pay one out, fail the other.
    for (const tutor of ['tA', 'tB']) {
      // Accounts start onboarded in this harness (see startLedgerHarness): opening one records it.
      await h.service.openPayoutAccount(h.ctx(`account-${tutor}`, 'tutor'), { tutorId: tutor });
      await h.service.adjust(h.ctx(`earn-${tutor}`, 'finance_admin'), {
        account: `tutor:${tutor}:earnings:available`,
        direction: 'credit',
        amount: { amount: 5_000, currency: 'usd' },
        reason: 'test earnings',
      });
      await h.service.requestPayout(h.ctx(`payout-${tutor}`, 'tutor'), {
        payoutId: `p-${tutor}`,
        tutorId: tutor,
        amount: { amount: 5_000, currency: 'usd' },
      });
    }
    const requested = (await allEvents(h.store)).filter((e) => e.type === 'PayoutRequested');
    for (const e of requested) await h.service.submitPayout(decodeEventOf(e, ['PayoutRequested']));
    const submitted = (await allEvents(h.store)).filter((e) => e.type === 'PayoutSubmitted');
    if (submitted.length !== 2) throw new Error(`expected 2 submitted payouts, got ${submitted.length}`);
    for (const e of submitted) {
      h.fake.state.settlePayout(
        String(e.data.stripePayoutId),
        e.data.payoutId === 'p-tA' ? 'paid' : 'failed',
      );
    }
    // A dispute opened and won on top-up b.
    const dispute = h.fake.state.openDispute({ paymentIntent: b.topUp.paymentIntentId as string });
    h.fake.state.closeDispute(dispute.id, 'won');
    await h.fake.flushWebhooks();
    // Every event was eventually acknowledged (reordered: a dispute closed before it was opened is
    // answered 503 and Stripe's retry applies it after the opening).
    const acknowledged = new Set(
      h.fake.webhooks.deliveries.filter((d) => d.status === 200).map((d) => d.eventId),
    );
    const unacknowledged = h.fake.webhooks.deliveries.filter((d) => !acknowledged.has(d.eventId));
    if (unacknowledged.length > 0)
      throw new Error(`webhooks never acknowledged: ${JSON.stringify(unacknowledged)}`);
    return await inspect(h);
  } finally {
    await h.close();
  }
}

function scenarioTopUp(h: LedgerHarness, topUpId: string, amount: number) {
  return h.service.initiateTopUp(h.ctx(`init-${topUpId}`, 'student'), {
    topUpId,
    studentId: 's1',
    amount: { amount, currency: 'usd' },
  });
}
