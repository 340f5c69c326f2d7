import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { CommandContext } from '../../commands/context.js';
import type { LedgerCommands } from '../../commands/ledgerCommands.js';
import { deterministicId } from '../../domain/ids.js';
import type { EventStore } from '../../eventstore/port.js';
import type { LedgerQueries } from '../../projections/ledgerQueries.js';
import {
  type Authenticator,
  authorize,
  type Grant,
  grantsFor,
  type OwnershipLoader,
  type Policy,
  type Principal,
} from '../auth.js';
import {
  DEFAULT_LOCK_TTL_MS,
  DEFAULT_RETENTION_MS,
  type IdempotencyStore,
  idempotencyScope,
  requestFingerprint,
} from '../idempotency.js';
import type { Metrics } from '../metrics.js';
import { ApiError, toApiError } from '../problem.js';
import type { RateLimiter, RateLimitPolicy } from '../rateLimit.js';
import { ledgerRoutes } from './ledger.js';
import { moneyRoutes } from './money.js';
import { createOwnershipLoader } from './ownership.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (src/api/auth.ts). Every /v1 route must have one. */
    policy?: Policy;
    /** Money-moving: requires Idempotency-Key, stricter rate limit. */
    money?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
    grant: Grant | null;
    idempotency: { scope: string; token: string; key: string } | null;
  }
}

export interface V1Options {
  commands: LedgerCommands;
  queries: LedgerQueries;
  store: EventStore;
  authenticator: Authenticator;
  idempotency: IdempotencyStore;
  rateLimiter: RateLimiter;
  rateLimits: RateLimitPolicy;
  metrics: Metrics;
  consistencyWaitMs: number;
  /** Further route plugins, registered after the built-in ones under the same hooks. */
  plugins: FastifyPluginAsync[];
}

/** What route modules get: the dependencies and helpers that build command contexts from requests. */
export interface RouteKit {
  commands: LedgerCommands;
  queries: LedgerQueries;
  store: EventStore;
  principal(request: FastifyRequest): Principal;
  /** Command context; for money routes its idempotency key derives from tenant + caller + header. */
  commandContext(request: FastifyRequest): CommandContext;
  /** Deterministic id of a resource created by this request (same key -> same id). */
  createdId(request: FastifyRequest, kind: string): string;
  /** Runs a command, counting its outcome by code. */
  run<T>(command: string, fn: () => Promise<T>): Promise<T>;
}

export const v1Routes: FastifyPluginAsyncTypebox<V1Options> = async (app, options) => {
  const loader: OwnershipLoader = createOwnershipLoader(options.queries, options.store);
  app.decorateRequest('principal', null);
  app.decorateRequest('grant', null);
  app.decorateRequest('idempotency', null);

  app.addHook('onRoute', (route) => {
    if (!route.config?.policy) throw new Error(`route ${route.method} ${route.url} has no policy`);
  });

  // Who is calling, may their roles call this at all, and are they within their rate limit: before the
  // body is even parsed, so floods of bad requests are refused cheaply.
  app.addHook('onRequest', async (request, reply) => {
    const principal = await options.authenticator.authenticate(request.headers.authorization);
    request.principal = principal;
    const policy = request.routeOptions.config.policy!;
    if (grantsFor(policy, principal).length === 0) {
      throw new ApiError('forbidden', 'your roles do not allow this operation');
    }
    const money = request.routeOptions.config.money === true;
    const rule = money ? options.rateLimits.money : options.rateLimits.default;
    const key = `${money ? 'm' : 'd'}:${principal.tenantId}:${principal.sub}`;
    let decision: Awaited<ReturnType<RateLimiter['consume']>>;
    try {
      decision = await options.rateLimiter.consume(key, rule);
    } catch (error) {
      // Rate limiting protects capacity, not correctness: if its store is down, let the request through.
      request.log.warn({ err: error }, 'rate limiter unavailable; request not limited');
      return;
    }
    reply.header('ratelimit-limit', String(rule.limit));
    reply.header('ratelimit-remaining', String(decision.remaining));
    if (!decision.allowed) {
      options.metrics.rateLimited.inc({ class: money ? 'money' : 'default' });
      throw new ApiError('rate_limited', `rate limit of ${rule.limit} per ${rule.windowMs} ms exceeded`, {
        retryAfterSeconds: Math.max(1, Math.ceil(decision.resetMs / 1000)),
      });
    }
  });

  // After validation: ownership, then read-your-writes waits (GET) or the idempotency claim (money POST).
  app.addHook('preHandler', async (request, reply) => {
    const principal = request.principal!;
    request.grant = await authorize(
      request.routeOptions.config.policy!,
      principal,
      { params: (request.params ?? {}) as Record<string, unknown>, body: request.body },
      loader,
    );
    if (request.method === 'GET') {
      const consistentWith = (request.query as { consistentWith?: string } | undefined)?.consistentWith;
      if (consistentWith !== undefined) {
        const position = BigInt(consistentWith);
        // Every position a command returned exists in the store; one past its head cannot be waited for.
        if (position > (await options.store.headPosition())) {
          throw new ApiError(
            'validation_failed',
            `position ${consistentWith} is beyond the event store head`,
            {
              errors: [{ path: 'querystring/consistentWith', message: 'beyond the event store head' }],
            },
          );
        }
        const reached = await options.queries.waitForPosition(position, options.consistencyWaitMs);
        if (!reached) {
          throw new ApiError('unavailable', `read models have not reached position ${consistentWith} yet`, {
            retryAfterSeconds: 1,
          });
        }
      }
      return;
    }
    if (request.routeOptions.config.money !== true) return;
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(key)) {
      throw new ApiError('validation_failed', 'money-moving requests require an Idempotency-Key header', {
        errors: [{ path: 'headers/idempotency-key', message: 'required: 1-255 printable ASCII characters' }],
      });
    }
    const scope = idempotencyScope(principal.tenantId, principal.sub, key);
    const fingerprint = requestFingerprint(request.method, request.url.split('?')[0]!, request.body);
    let begun: Awaited<ReturnType<IdempotencyStore['begin']>>;
    try {
      begun = await options.idempotency.begin(scope, fingerprint, { lockTtlMs: DEFAULT_LOCK_TTL_MS });
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

  // The final response of a claimed request is kept for replays; non-final ones free the key for a retry.
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
        await options.idempotency.complete(
          claim.scope,
          claim.token,
          { statusCode: status, body: payload, contentType: String(reply.getHeader('content-type') ?? '') },
          { retentionMs: DEFAULT_RETENTION_MS },
        );
      } else {
        await options.idempotency.release(claim.scope, claim.token);
      }
    } catch (error) {
      // The command's deterministic event ids still make a retry append nothing; only the replay is lost.
      request.log.error({ err: error }, 'could not record the idempotent response');
    }
    return payload;
  }

  const kit: RouteKit = {
    commands: options.commands,
    queries: options.queries,
    store: options.store,
    principal: (request) => request.principal!,
    commandContext(request) {
      const principal = request.principal!;
      const key = request.idempotency?.key ?? request.headers['idempotency-key'];
      const idempotencyKey =
        typeof key === 'string' && key.length > 0 ? `http:${principal.sub}:${key}` : `http-req:${request.id}`;
      return {
        tenantId: principal.tenantId,
        actor: { id: principal.sub, role: request.grant?.role ?? principal.roles[0]! },
        idempotencyKey,
        correlationId: request.id,
        causationId: request.id,
      };
    },
    createdId(request, kind) {
      const principal = request.principal!;
      const key = request.idempotency?.key;
      if (!key) throw new Error('createdId needs an idempotent request');
      return deterministicId('api', kind, principal.tenantId, principal.sub, key);
    },
    async run(command, fn) {
      try {
        const result = await fn();
        options.metrics.commandOutcomes.inc({ command, code: 'ok' });
        return result;
      } catch (error) {
        options.metrics.commandOutcomes.inc({ command, code: toApiError(error)?.code ?? 'internal_error' });
        throw error;
      }
    },
  };

  await app.register(moneyRoutes, { kit });
  await app.register(ledgerRoutes, { kit });
  for (const plugin of options.plugins) await app.register(plugin);
};

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
