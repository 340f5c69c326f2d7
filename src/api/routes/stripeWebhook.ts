import Stripe from 'stripe';
import type { LedgerCommands } from '../../commands/ledgerCommands.js';
import type { Logger } from '../../commands/logger.js';
import type { WebhookDedupeStore } from '../../stripe/webhookDedupe.js';
import { handleStripeEvent, type PaymentIntentLookup } from '../../stripe/webhookHandler.js';
import { ApiError } from '../problem.js';
import type { RouteModule } from '../v1/routeKit.js';

/** Which of Stripe's two endpoints an event came to. */
export type StripeEndpoint = 'platform' | 'connect';

export const STRIPE_WEBHOOK_PATHS: Record<StripeEndpoint, string> = {
  platform: '/webhooks/stripe',
  connect: '/webhooks/stripe/connect',
};

export interface StripeWebhookOptions {
  commands: LedgerCommands;
  /**
   * Each endpoint's signing secret (whsec_...): `platform` for the platform account's events,
   * `connect` for connected accounts' events (Stripe's Connect endpoint).
   */
  secrets: Record<StripeEndpoint, string>;
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

const EVENT_ID = /^[\x21-\x7e]{1,255}$/;
const EVENT_TYPE = /^[a-z0-9_.]{1,100}$/;

/** What is wrong with a verified body as a Stripe event envelope, or null when it is one. */
export function envelopeProblem(event: unknown): string | null {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return 'the body is not an object';
  const { id, type, data } = event as { id?: unknown; type?: unknown; data?: unknown };
  if (typeof id !== 'string' || !EVENT_ID.test(id))
    return 'id must be a string of 1-255 printable characters';
  if (typeof type !== 'string' || !EVENT_TYPE.test(type))
    return 'type must be an event type such as payment_intent.succeeded';
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return 'data must be an object';
  const object = (data as { object?: unknown }).object;
  if (object === null || typeof object !== 'object' || Array.isArray(object))
    return 'data.object must be an object';
  return null;
}

/**
 * `POST /v1/webhooks/stripe` (platform events) and `POST /v1/webhooks/stripe/connect` (events of
 * connected accounts: tutors' Express accounts), a route module of the /v1 context (pass it in
 * AppDeps.routes): public (no bearer token, no rate limit; the signature is the authentication). Each
 * verifies `Stripe-Signature` on the raw body with its own endpoint's secret (HMAC-SHA256, timestamp
 * within tolerance) with the SDK's constructEvent, so an event signed for the other endpoint is
 * refused; a correctly signed event of the wrong kind (a platform event at the Connect endpoint, or one
 * naming a connected `account` at the platform endpoint) means the Stripe endpoints are misconfigured
 * and is refused too, loudly. Then it dedupes by event id and maps the event to ledger commands
 * (webhookHandler.ts). Forged, expired or wrongly signed requests get 400 problem+json and change
 * nothing. Ours-but-not-yet-applicable facts get 503 so Stripe redelivers; everything else gets 200.
 *
 * Its JSON parser keeps the raw Buffer (signatures are over exact bytes); a route module is a plugin of
 * its own, so the parser does not affect other routes.
 */
export function stripeWebhookRoutes(options: StripeWebhookOptions): RouteModule {
  const tolerance = options.toleranceSeconds ?? 300;
  const webhooks = Stripe.webhooks;
  return async (app) => {
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
      done(null, body);
    });

    for (const endpoint of ['platform', 'connect'] as const) {
      app.post(
        STRIPE_WEBHOOK_PATHS[endpoint],
        {
          bodyLimit: options.bodyLimitBytes ?? 512 * 1024,
          config: { public: true },
          schema: { hide: true },
        },
        async (request, reply) => {
          const signature = request.headers['stripe-signature'];
          const raw = request.body;
          if (typeof signature !== 'string' || !Buffer.isBuffer(raw)) {
            throw new ApiError('validation_failed', 'missing Stripe-Signature header or JSON body');
          }
          let event: Stripe.Event;
          try {
            event = webhooks.constructEvent(
              raw,
              signature,
              options.secrets[endpoint],
              tolerance,
              undefined,
              options.nowSeconds?.(),
            );
          } catch (error) {
            options.logger.warn(
              { err: String(error), requestId: request.id, endpoint },
              'stripe webhook signature rejected',
            );
            throw new ApiError(
              'validation_failed',
              `invalid Stripe signature for the ${endpoint} endpoint (forged, expired or another endpoint's secret)`,
            );
          }
          // Signed with our secret, but still input: an envelope the handler cannot read is the sender's
          // mistake (400), not ours (500). Stripe always sends an id, a type and data.object.
          const envelope = envelopeProblem(event as unknown);
          if (envelope) {
            options.logger.warn(
              { requestId: request.id, endpoint, problem: envelope },
              'stripe webhook envelope rejected',
            );
            throw new ApiError('validation_failed', `not a Stripe event: ${envelope}`);
          }
          const connected = typeof event.account === 'string' && event.account.length > 0;
          if (connected !== (endpoint === 'connect')) {
            options.logger.error(
              { eventId: event.id, type: event.type, account: event.account, endpoint },
              'stripe webhook of the wrong kind for this endpoint: check the endpoints configured at Stripe',
            );
            throw new ApiError(
              'validation_failed',
              endpoint === 'connect'
                ? 'the Connect endpoint takes only events of connected accounts (event.account missing)'
                : `the platform endpoint takes only the platform's events (this one is of ${String(event.account)})`,
            );
          }
          if (await options.dedupe.seen(event.id)) {
            return reply.code(200).send({ received: true, outcome: 'duplicate' });
          }
          const result = await handleStripeEvent(event, {
            commands: options.commands,
            ...(options.lookup ? { lookup: options.lookup } : {}),
          });
          const log = { eventId: event.id, type: event.type, account: event.account, endpoint, ...result };
          if (result.outcome === 'retry') {
            options.logger.warn(log, 'stripe webhook not applicable yet; asking Stripe to retry');
            throw new ApiError('unavailable', result.detail ?? 'not applicable yet', {
              retryAfterSeconds: 60,
            });
          }
          if (result.outcome === 'rejected')
            options.logger.error(log, 'stripe webhook rejected by the ledger');
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
    }
  };
}
