import type { FastifyPluginAsync } from 'fastify';
import Stripe from 'stripe';
import { PROBLEM_CONTENT_TYPE, problem } from '../api/problem.js';
import type { LedgerCommands } from '../commands/ledgerCommands.js';
import type { Logger } from '../commands/logger.js';
import type { WebhookDedupeStore } from './webhookDedupe.js';
import { handleStripeEvent, type PaymentIntentLookup } from './webhookHandler.js';

export interface StripeWebhookOptions {
  commands: LedgerCommands;
  /** The endpoint's signing secret (whsec_...). */
  webhookSecret: string;
  dedupe: WebhookDedupeStore;
  logger: Logger;
  /** Optional Stripe lookups (current PaymentIntent status/metadata) for late or sparse events. */
  lookup?: PaymentIntentLookup;
  /** Signature age accepted, in seconds (Stripe's default: 300). */
  toleranceSeconds?: number;
  /** Largest webhook body accepted. */
  bodyLimitBytes?: number;
  /** Clock for the tolerance check (tests). */
  nowSeconds?: () => number;
}

/**
 * `POST /v1/webhooks/stripe`: verifies `Stripe-Signature` on the raw body (HMAC-SHA256 with the
 * endpoint secret, timestamp within tolerance) with the SDK's constructEvent, dedupes by event id, and
 * maps the event to ledger commands (webhookHandler.ts). Forged, expired or re-signed-with-a-wrong-secret
 * requests get 400 problem+json and change nothing. Ours-but-not-yet-applicable facts get 503 so Stripe
 * redelivers; everything else gets 200.
 *
 * Encapsulated plugin: its JSON parser keeps the raw Buffer (signatures are over exact bytes) and does
 * not affect other routes.
 */
export function stripeWebhookRoutes(options: StripeWebhookOptions): FastifyPluginAsync {
  const tolerance = options.toleranceSeconds ?? 300;
  const webhooks = Stripe.webhooks;
  return async (app) => {
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
      done(null, body);
    });

    app.post(
      '/v1/webhooks/stripe',
      {
        bodyLimit: options.bodyLimitBytes ?? 512 * 1024,
        config: { public: true },
        schema: { hide: true },
      },
      async (request, reply) => {
        const signature = request.headers['stripe-signature'];
        const raw = request.body;
        if (typeof signature !== 'string' || !Buffer.isBuffer(raw)) {
          return reply
            .code(400)
            .type(PROBLEM_CONTENT_TYPE)
            .send(problem('validation_failed', 'missing Stripe-Signature header or JSON body'));
        }
        let event: Stripe.Event;
        try {
          event = webhooks.constructEvent(
            raw,
            signature,
            options.webhookSecret,
            tolerance,
            undefined,
            options.nowSeconds?.(),
          );
        } catch (error) {
          options.logger.warn(
            { err: String(error), requestId: request.id },
            'stripe webhook signature rejected',
          );
          return reply
            .code(400)
            .type(PROBLEM_CONTENT_TYPE)
            .send(problem('validation_failed', 'invalid Stripe signature (forged, expired or wrong secret)'));
        }
        if (await options.dedupe.seen(event.id)) {
          return reply.code(200).send({ received: true, outcome: 'duplicate' });
        }
        const result = await handleStripeEvent(event, {
          commands: options.commands,
          ...(options.lookup ? { lookup: options.lookup } : {}),
        });
        const log = { eventId: event.id, type: event.type, account: event.account, ...result };
        if (result.outcome === 'retry') {
          options.logger.warn(log, 'stripe webhook not applicable yet; asking Stripe to retry');
          return reply
            .code(503)
            .header('retry-after', '60')
            .type(PROBLEM_CONTENT_TYPE)
            .send(problem('unavailable', result.detail ?? 'not applicable yet'));
        }
        if (result.outcome === 'rejected') options.logger.error(log, 'stripe webhook rejected by the ledger');
        else options.logger.info(log, 'stripe webhook handled');
        await options.dedupe.record({
          eventId: event.id,
          tenantId: result.tenantId,
          type: event.type,
          outcome: result.outcome,
        });
        return reply.code(200).send({ received: true, outcome: result.outcome });
      },
    );
  };
}
