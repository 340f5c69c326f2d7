import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { GatewayError, type PaymentsGateway } from '../../src/stripe/gateway.js';
import { LedgerFold } from '../property/ledgerFold.js';
import { startFakeStripe } from '../stripe/support.js';

/**
 * Regression for a race the soak found: with a card that confirms at once, Stripe's
 * payment_intent.succeeded (or payment_failed) webhook can settle the top-up before the request that
 * created the PaymentIntent records it. The request must then report the top-up as it stands (201 with
 * status succeeded/failed), not refuse with invalid_state, and the wallet is credited exactly once.
 */
const T = 'race';
const ctx = (key: string, role = 'student'): CommandContext => ({
  tenantId: T,
  actor: { id: 's1', role },
  idempotencyKey: key,
  correlationId: key,
  causationId: key,
});

/** A top-up of 25.00 usd for student s1, paid with `paymentMethod`. */
const topUp = (service: LedgerService, key: string, topUpId: string, paymentMethod: string) =>
  service.initiateTopUp(ctx(key), {
    topUpId,
    studentId: 's1',
    amount: { amount: 2_500, currency: 'usd' },
    paymentMethod,
  });

const eventsOf = async (store: MemoryEventStore, type: string) =>
  (await store.readAll({ maxCount: 1_000 })).filter((e) => e.type === type);

describe('top-up settled by the webhook before the request records its PaymentIntent', () => {
  let stripe: Awaited<ReturnType<typeof startFakeStripe>>;
  beforeAll(async () => {
    stripe = await startFakeStripe();
  });
  afterAll(async () => {
    await stripe.stop();
  });

  /** The real Stripe adapter, with the webhook's command run before createPaymentIntent returns. */
  function webhookFirst(service: () => LedgerService): PaymentsGateway {
    const real = stripe.gateway;
    return {
      ...real,
      ping: () => real.ping(),
      refundPaymentIntent: (input) => real.refundPaymentIntent(input),
      createTransfer: (input) => real.createTransfer(input),
      createPayout: (input) => real.createPayout(input),
      createConnectedAccount: (input) => real.createConnectedAccount(input),
      retrieveConnectedAccount: (id) => real.retrieveConnectedAccount(id),
      createAccountLink: (input) => real.createAccountLink(input),
      async createPaymentIntent(input) {
        try {
          const intent = await real.createPaymentIntent(input);
          const { topUpId } = input.metadata;
          const webhookCtx = ctx(`pi-${intent.status}:${intent.paymentIntentId}`, 'service');
          if (intent.status === 'succeeded') {
            await service().succeedTopUp(webhookCtx, {
              topUpId,
              paymentIntentId: intent.paymentIntentId,
              amountReceived: intent.amountReceived,
              currency: input.currency,
            });
          }
          return intent;
        } catch (error) {
          // A decline: the payment_failed webhook lands first, then the request sees the decline.
          await service().failTopUp(ctx(`pi-failed:${input.metadata.topUpId}`, 'service'), {
            topUpId: input.metadata.topUpId,
            paymentIntentId: `pi_declined_${input.metadata.topUpId}`,
            reason: 'card_declined',
          });
          throw error;
        }
      },
    };
  }

  it('a successful card: the request answers succeeded and the wallet is credited once', async () => {
    const store = new MemoryEventStore();
    let service: LedgerService | undefined;
    service = createLedgerService({ store, clock: () => new Date(), gateway: webhookFirst(() => service!) });
    const out = await topUp(service, 'k-ok', 'tu1', 'pm_card_visa');
    expect(out.topUp.status).toBe('succeeded');
    const fold = new LedgerFold();
    await fold.catchUp(store);
    const credits = await eventsOf(store, 'WalletToppedUp');
    expect(credits).toHaveLength(1);
    expect(out.position).toBeGreaterThanOrEqual(credits[0]!.position);
    // The same request retried changes nothing.
    const again = await topUp(service, 'k-ok', 'tu1', 'pm_card_visa');
    expect(again.topUp.status).toBe('succeeded');
    expect(await eventsOf(store, 'WalletToppedUp')).toHaveLength(1);
  });

  it('a declined card: the request answers failed instead of invalid_state, nothing is credited', async () => {
    const store = new MemoryEventStore();
    let service: LedgerService | undefined;
    service = createLedgerService({ store, clock: () => new Date(), gateway: webhookFirst(() => service!) });
    const out = await topUp(service, 'k-declined', 'tu2', 'pm_card_chargeDeclined');
    expect(out.topUp.status).toBe('failed');
    expect(await eventsOf(store, 'WalletToppedUp')).toHaveLength(0);
    expect(await eventsOf(store, 'TopUpFailed')).toHaveLength(1);
  });

  it('a refusal meeting a top-up the webhook already succeeded is invalid_state, credited once', async () => {
    // Only possible once Stripe has forgotten the top-up's idempotency key (a retry creates a second
    // intent): the refusal contradicts the recorded success, so the request must not claim either.
    const store = new MemoryEventStore();
    let service: LedgerService | undefined;
    const webhook = webhookFirst(() => service!);
    const gateway: PaymentsGateway = {
      ...webhook,
      async createPaymentIntent(input) {
        await webhook.createPaymentIntent(input);
        throw new GatewayError('card_declined', 'a second intent was declined');
      },
    };
    service = createLedgerService({ store, clock: () => new Date(), gateway });
    await expect(topUp(service, 'k-late-refusal', 'tu3', 'pm_card_visa')).rejects.toMatchObject({
      code: 'invalid_state',
    });
    expect(await eventsOf(store, 'WalletToppedUp')).toHaveLength(1);
    expect(await eventsOf(store, 'TopUpFailed')).toHaveLength(0);
  });
});
