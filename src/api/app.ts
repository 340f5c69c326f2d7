import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyError, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { LedgerCommands } from '../commands/ledgerCommands.js';
import { consoleRoutes } from '../console/routes.js';
import type { EventStore } from '../eventstore/port.js';
import type { LedgerQueries } from '../projections/ledgerQueries.js';
import { type AuthenticatorOptions, createAuthenticator, type Role } from './auth.js';
import type { IdempotencyStore } from './idempotency.js';
import type { Metrics } from './metrics.js';
import {
  ApiError,
  PROBLEM_CONTENT_TYPE,
  type ProblemCode,
  ProblemSchema,
  problem,
  statusOf,
  toApiError,
} from './problem.js';
import { DEFAULT_RATE_LIMITS, type RateLimiter, type RateLimitPolicy } from './rateLimit.js';
import { HealthOut, METADATA_FILTER_PARAMETER, METADATA_FILTER_PATTERN, ReadyOut } from './schemas.js';
import { v1Context } from './v1/context.js';
import type { RouteModule } from './v1/routeKit.js';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface AppDeps {
  commands: LedgerCommands;
  queries: LedgerQueries;
  store: EventStore;
  /** Bearer tokens: the HS256 secret, and the bounds on a token's lifetime and its issuer's clock. */
  auth: AuthenticatorOptions;
  idempotency: IdempotencyStore;
  rateLimiter: RateLimiter;
  readiness: ReadinessCheck[];
  logger: Logger;
  metrics: Metrics;
  /**
   * Route modules with dependencies of their own (reconciliation, the Stripe webhook), registered in the
   * /v1 context after the built-in ones: they share its authentication, rate limits, authorization,
   * read-your-writes, idempotency keys, problem+json errors and the OpenAPI document
   * (src/api/v1/routeKit.ts says how to write one).
   */
  routes?: RouteModule[];
  bodyLimitBytes?: number;
  rateLimits?: RateLimitPolicy;
  /** Longest a GET waits for `consistentWith` (default and maximum 5 s). */
  consistencyWaitMs?: number;
  /** Longest one readiness check may take. */
  readinessTimeoutMs?: number;
  /** Serve the OpenAPI UI at /docs (the JSON at /docs/json is always served). */
  docsUi?: boolean;
  /** Serve the finance console at /console and a home page at / (default true; src/console). */
  console?: boolean;
}

const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;
/**
 * Bound on a request's header block. Node's default (16 KiB) answers a long bearer token with a raw 431
 * before any route runs; 128 KiB lets every header reach the app, which refuses what it does not accept
 * (a token over 4 KiB is a 401). Past this bound the client error handler answers a 431 problem.
 */
export const MAX_HEADER_BYTES = 128 * 1024;
const MAX_CONSISTENCY_WAIT_MS = 5_000;
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * One registered route as the app serves it: what the schema fuzz (test/api/schemaFuzz.e2e.test.ts)
 * checks against the OpenAPI document, so a route nobody documented or fuzzes fails a test.
 */
export interface RouteDescription {
  method: string;
  /** fastify's pattern (`/v1/wallets/:studentId`). */
  url: string;
  /** No authentication (health, docs, the Stripe webhook). */
  public: boolean;
  /** The roles its policy grants (ownership aside); empty for public routes. */
  roles: Role[];
  /** Left out of the OpenAPI document (`schema.hide`). */
  hidden: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered, in registration order (complete once the app is ready). */
    routeTable: readonly RouteDescription[];
  }
  interface FastifyContextConfig {
    /**
     * Marks routes anyone may call: not authenticated, not rate limited (health, metrics, docs, and in
     * /v1 the Stripe webhook, which checks its signature instead).
     */
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
    http: { maxHeaderSize: MAX_HEADER_BYTES },
    // Requests Node's HTTP parser refuses never reach fastify: answer them as problems too.
    clientErrorHandler: answerClientError,
    // Malformed URLs and the like never reach a route: answer them as problems too.
    frameworkErrors: (error, _request, reply) => {
      const apiError = fromFastifyError(error) ?? new ApiError('validation_failed', error.message);
      void (reply as unknown as FastifyReply)
        .code(apiError.status)
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem(apiError.code, apiError.message, apiError.extra));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Before any route: the hook sees the routes of every plugin registered below.
  const routeTable: RouteDescription[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const policy = route.config?.policy ?? [];
    for (const method of methods) {
      // HEAD answers as its GET does (fastify adds one per GET).
      if (method === 'HEAD') continue;
      if (routeTable.some((r) => r.method === method && r.url === route.url)) continue;
      routeTable.push({
        method,
        url: route.url,
        public: route.config?.public === true || policy.length === 0,
        roles: [...new Set(policy.map((grant) => grant.role))],
        hidden: (route.schema as { hide?: boolean } | undefined)?.hide === true,
      });
    }
  });

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

  // JSON only: a text/plain body is a 415, not a string that fails the body schema.
  app.removeContentTypeParser('text/plain');

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

  // Routes filtering by `metadata[key]=value`: the swagger plugin turns a querystring's properties into
  // parameters but not its patternProperties, so those routes get the deepObject parameter it stands for.
  const metadataFiltered = new Set<string>();
  app.register(swagger, {
    transform: ({ schema, url, route }) => {
      const querystring = (
        schema as { querystring?: { patternProperties?: Record<string, unknown> } } | undefined
      )?.querystring;
      if (querystring?.patternProperties?.[METADATA_FILTER_PATTERN]) {
        metadataFiltered.add(url.replace(/:([A-Za-z0-9_]+)/g, '{$1}'));
      }
      // Who may call it, for clients and for the schema fuzz: `x-roles` (ownership rules aside, see
      // src/api/auth.ts); a public route needs no bearer token.
      const policy = route.config?.policy;
      if (!schema) return { schema, url };
      if (route.config?.public) return { schema: { ...schema, security: [] }, url };
      if (policy) return { schema: { ...schema, 'x-roles': [...new Set(policy.map((g) => g.role))] }, url };
      return { schema, url };
    },
    transformObject: (documentObject) => {
      const doc =
        'openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject;
      const paths =
        (doc as { paths?: Record<string, Record<string, { parameters?: unknown[] }>> }).paths ?? {};
      for (const url of metadataFiltered) {
        const get = paths[url]?.get;
        if (!get) continue;
        get.parameters = [...(get.parameters ?? []), METADATA_FILTER_PARAMETER];
      }
      return doc;
    },
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
    // Schemas registered with addSchema keep their $id as their name under components/schemas.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
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
      // A tenant whose read models are stopped (src/projections/stalls.ts) does not take the process out
      // of service: every other tenant is served, and every process shares the same stall.
      const stalls = (await deps.queries.projectionStalls?.().catch(() => [])) ?? [];
      if (stalls.length > 0) {
        return {
          status: 'degraded',
          checks: results,
          degraded: stalls.map((st) => ({
            projection: st.projection,
            tenantId: st.tenantId,
            position: st.position.toString(),
            streamName: st.streamName,
            eventType: st.eventType,
            reason: st.reason,
            since: st.stalledAt.toISOString(),
          })),
        };
      }
      return { status: 'ready', checks: results };
    },
  );

  app.get('/metrics', { schema: { hide: true }, config: { public: true } }, async (_request, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  if (deps.console ?? true) app.register(consoleRoutes());

  app.register(v1Context, {
    prefix: '/v1',
    commands: deps.commands,
    queries: deps.queries,
    store: deps.store,
    authenticator: createAuthenticator(deps.auth),
    idempotency: deps.idempotency,
    rateLimiter: deps.rateLimiter,
    rateLimits: deps.rateLimits ?? DEFAULT_RATE_LIMITS,
    metrics: deps.metrics,
    consistencyWaitMs,
    routes: deps.routes ?? [],
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

/**
 * Fastify's clientError handler (the HTTP parser refused the request: headers too large, a malformed
 * request line, a timeout): a problem+json answer, then the connection is closed.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ProblemCode =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'headers_too_large'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'request_timeout'
        : 'validation_failed';
  const detail =
    code === 'headers_too_large'
      ? `request headers exceed ${MAX_HEADER_BYTES} bytes`
      : code === 'request_timeout'
        ? 'the request was not received in time'
        : 'malformed HTTP request';
  const body = JSON.stringify(problem(code, detail));
  const status = statusOf(code);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
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
