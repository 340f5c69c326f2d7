import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { IDEMPOTENCY_KEY_PATTERN } from '../../domain/ids.js';
import {
  DEFAULT_LOCK_TTL_MS,
  DEFAULT_RETENTION_MS,
  type IdempotencyStore,
  idempotencyScope,
  requestFingerprint,
} from '../idempotency.js';
import { ApiError } from '../problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The Idempotency-Key claim of a money-moving request, until its response is recorded. */
    idempotency: { scope: string; token: string; key: string } | null;
  }
}

export interface IdempotentRequestsOptions {
  idempotency: IdempotencyStore;
}

/**
 * Idempotency-Key for money-moving routes (`config.money`): the key is required and claimed before the
 * handler runs (per tenant + caller + key, bound to the request's fingerprint); a repeat of a finished
 * request gets the recorded response (`idempotent-replayed: true`), a repeat while it runs a 409, the
 * same key with another request a 422. The final response of a claimed request is recorded for
 * replays; a non-final one (5xx, 409, 429) frees the key for a retry.
 */
export const idempotentRequests = fp<IdempotentRequestsOptions>(
  async (app, { idempotency }) => {
    app.decorateRequest('idempotency', null);
    app.addHook('onRoute', (route) => {
      if (route.config?.money === true && route.config.public === true) {
        throw new Error(`route ${route.method} ${route.url} moves money, so it cannot be public`);
      }
    });

    app.addHook('preHandler', async (request, reply) => {
      if (request.routeOptions.config.money !== true) return;
      const principal = request.principal!;
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
        throw new ApiError('validation_failed', 'money-moving requests require an Idempotency-Key header', {
          errors: [
            { path: 'headers/idempotency-key', message: 'required: 1-255 printable ASCII characters' },
          ],
        });
      }
      const scope = idempotencyScope(principal.tenantId, principal.sub, key);
      const fingerprint = requestFingerprint(request.method, request.url.split('?')[0]!, request.body);
      let begun: Awaited<ReturnType<IdempotencyStore['begin']>>;
      try {
        begun = await idempotency.begin(scope, fingerprint, { lockTtlMs: DEFAULT_LOCK_TTL_MS });
      } catch (error) {
        request.log.error({ err: error }, 'idempotency store unavailable');
        throw new ApiError('unavailable', 'idempotency store unavailable', { retryAfterSeconds: 1 });
      }
      if (begun.kind === 'acquired') {
        request.idempotency = { scope, token: begun.token, key };
        return;
      }
      if (begun.fingerprint !== fingerprint) {
        throw new ApiError('idempotency_key_reused', 'this Idempotency-Key was used for a different request');
      }
      if (begun.kind === 'in_flight') {
        throw new ApiError('idempotency_key_in_use', 'a request with this Idempotency-Key is still running', {
          retryAfterSeconds: 1,
        });
      }
      return replay(reply, begun.response);
    });

    app.addHook('onSend', (request, reply, payload, done) => {
      // Callback style: most responses (every GET) hold no claim and go on without a promise.
      if (!request.idempotency) return done(null, payload);
      // A returned promise is settled by fastify's hook runner, which also answers a throw from what
      // follows the hook (e.g. an invalid header) as an error; calling done from a then() would not.
      return recordClaimed(request, reply, payload);
    });

    async function recordClaimed(
      request: FastifyRequest,
      reply: FastifyReply,
      payload: unknown,
    ): Promise<unknown> {
      const claim = request.idempotency!;
      request.idempotency = null;
      const status = reply.statusCode;
      const final = status < 500 && status !== 409 && status !== 429;
      try {
        if (final && typeof payload === 'string') {
          await idempotency.complete(
            claim.scope,
            claim.token,
            { statusCode: status, body: payload, contentType: String(reply.getHeader('content-type') ?? '') },
            { retentionMs: DEFAULT_RETENTION_MS },
          );
        } else {
          await idempotency.release(claim.scope, claim.token);
        }
      } catch (error) {
        // The command's deterministic event ids still make a retry append nothing; only the replay is lost.
        request.log.error({ err: error }, 'could not record the idempotent response');
      }
      return payload;
    }
  },
  { name: 'v1-idempotent-requests', dependencies: ['v1-authorization'] },
);

function replay(
  reply: FastifyReply,
  response: { statusCode: number; body: string; contentType: string },
): FastifyReply {
  return reply
    .code(response.statusCode)
    .header('content-type', response.contentType || 'application/json; charset=utf-8')
    .header('idempotent-replayed', 'true')
    .send(response.body);
}
