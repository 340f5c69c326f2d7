import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyError, type FastifyPluginAsync, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { LedgerCommands } from '../commands/ledgerCommands.js';
import type { EventStore } from '../eventstore/port.js';
import type { LedgerQueries } from '../projections/ledgerQueries.js';
import { createAuthenticator } from './auth.js';
import type { IdempotencyStore } from './idempotency.js';
import type { Metrics } from './metrics.js';
import { ApiError, PROBLEM_CONTENT_TYPE, ProblemSchema, problem, toApiError } from './problem.js';
import { DEFAULT_RATE_LIMITS, type RateLimiter, type RateLimitPolicy } from './rateLimit.js';
import { v1Routes } from './routes/v1.js';
import { HealthOut, ReadyOut } from './schemas.js';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface AppDeps {
  commands: LedgerCommands;
  queries: LedgerQueries;
  store: EventStore;
  auth: { jwtSecret: string };
  idempotency: IdempotencyStore;
  rateLimiter: RateLimiter;
  readiness: ReadinessCheck[];
  logger: Logger;
  metrics: Metrics;
  stripeWebhook?: FastifyPluginAsync;
  /**
   * More route plugins inside the /v1 scope (e.g. reconciliation): they share its authenticator, the
   * route policy hook (every route needs `config.policy`; roles, ownership, rate limits, idempotency
   * for `config.money` routes), problem+json errors and the OpenAPI document.
   */
  v1Plugins?: FastifyPluginAsync[];
  bodyLimitBytes?: number;
  rateLimits?: RateLimitPolicy;
  /** Longest a GET waits for `consistentWith` (default and maximum 5 s). */
  consistencyWaitMs?: number;
  /** Longest one readiness check may take. */
  readinessTimeoutMs?: number;
  /** Serve the OpenAPI UI at /docs (the JSON at /docs/json is always served). */
  docsUi?: boolean;
}

const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;
const MAX_CONSISTENCY_WAIT_MS = 5_000;
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Marks routes that may not be rate limited or authenticated (health, metrics, docs). */
    public?: boolean;
  }
}

/** The API as a fastify instance (not listening; call listen() or inject()). */
export function buildApp(deps: AppDeps) {
  const consistencyWaitMs = Math.min(
    deps.consistencyWaitMs ?? MAX_CONSISTENCY_WAIT_MS,
    MAX_CONSISTENCY_WAIT_MS,
  );
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    // A client-supplied request id is kept when it is well formed; it becomes the correlation id.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    // No silent coercion or stripping: a body with "amount": "15" or an unknown field is a 400.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 5_000,
    routerOptions: { maxParamLength: 300 },
    // Malformed URLs and the like never reach a route: answer them as problems too.
    frameworkErrors: (error, _request, reply) => {
      const apiError = fromFastifyError(error) ?? new ApiError('validation_failed', error.message);
      void (reply as unknown as FastifyReply)
        .code(apiError.status)
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem(apiError.code, apiError.message, apiError.extra));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiError = toApiError(error) ?? fromFastifyError(error);
    if (!apiError) {
      request.log.error({ err: error }, 'unhandled error');
      return reply
        .code(500)
        .type(PROBLEM_CONTENT_TYPE)
        .send({ ...problem('internal_error', 'internal error'), instance: request.id });
    }
    if (apiError.status >= 500) request.log.warn({ err: error }, apiError.message);
    if (apiError.extra.retryAfterSeconds !== undefined) {
      reply.header('retry-after', String(apiError.extra.retryAfterSeconds));
    }
    return reply
      .code(apiError.status)
      .type(PROBLEM_CONTENT_TYPE)
      .send({ ...problem(apiError.code, apiError.message, apiError.extra), instance: request.id });
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type(PROBLEM_CONTENT_TYPE)
      .send({ ...problem('not_found', `no route ${request.method} ${request.url.split('?')[0]}`) }),
  );

  // Callback-style hooks: nothing to await, so no promise per request on every route.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.httpRequestDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    done();
  });
  deps.metrics.setProjectionLagSource(async () => {
    const [head, projected] = await Promise.all([
      deps.store.headPosition(),
      deps.queries.projectedPosition(),
    ]);
    return Number(head - projected);
  });

  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'WeMaster Ledger API',
        version: '1.0.0',
        description:
          'Event-sourced double-entry ledger. Amounts are integers in minor units; positions are strings. ' +
          'Errors are RFC 9457 application/problem+json with a stable `code`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
  });
  if (deps.docsUi ?? true) {
    app.register(swaggerUi, { routePrefix: '/docs' });
  } else {
    app.get('/docs/json', { schema: { hide: true }, config: { public: true } }, async () => app.swagger());
  }

  app.get(
    '/healthz',
    { schema: { hide: true, response: { 200: HealthOut } }, config: { public: true } },
    async () => ({ status: 'ok' }),
  );

  const readinessTimeoutMs = deps.readinessTimeoutMs ?? 2_000;
  app.get(
    '/readyz',
    { schema: { hide: true, response: { 200: ReadyOut, 503: ProblemSchema } }, config: { public: true } },
    async (request, reply) => {
      const results = await Promise.all(
        deps.readiness.map(async (r) => {
          try {
            await withTimeout(r.check(), readinessTimeoutMs, `${r.name} readiness timed out`);
            return { name: r.name, ok: true };
          } catch (error) {
            request.log.warn({ err: error, dependency: r.name }, 'readiness check failed');
            return { name: r.name, ok: false };
          }
        }),
      );
      const failing = results.filter((r) => !r.ok).map((r) => r.name);
      if (failing.length > 0) {
        reply.header('retry-after', '1');
        return reply
          .code(503)
          .type(PROBLEM_CONTENT_TYPE)
          .send(problem('unavailable', `not ready: ${failing.join(', ')}`, { failing }));
      }
      return { status: 'ready', checks: results };
    },
  );

  app.get('/metrics', { schema: { hide: true }, config: { public: true } }, async (_request, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  if (deps.stripeWebhook) app.register(deps.stripeWebhook);

  app.register(v1Routes, {
    prefix: '/v1',
    commands: deps.commands,
    queries: deps.queries,
    store: deps.store,
    authenticator: createAuthenticator({ jwtSecret: deps.auth.jwtSecret }),
    idempotency: deps.idempotency,
    rateLimiter: deps.rateLimiter,
    rateLimits: deps.rateLimits ?? DEFAULT_RATE_LIMITS,
    metrics: deps.metrics,
    consistencyWaitMs,
    plugins: deps.v1Plugins ?? [],
  });

  return app;
}

/** Fastify's own client errors (bad JSON, body too large, validation) as problems; never a 5xx. */
function fromFastifyError(error: FastifyError): ApiError | null {
  if (error.validation) {
    const errors = error.validation.slice(0, 20).map((v) => ({
      path: `${error.validationContext ?? ''}${v.instancePath || ''}`,
      message: v.message ?? 'invalid',
    }));
    return new ApiError('validation_failed', error.message, { errors });
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError('payload_too_large', error.message);
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return new ApiError('unsupported_media_type', error.message);
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    if (error.statusCode === 404) return new ApiError('not_found', error.message);
    return new ApiError('validation_failed', error.message);
  }
  return null;
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export type LedgerApp = ReturnType<typeof buildApp>;
