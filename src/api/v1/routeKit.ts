import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { CommandContext } from '../../commands/context.js';
import type { LedgerCommands } from '../../commands/ledgerCommands.js';
import type { ClientMetadata } from '../../domain/clientMetadata.js';
import { deterministicId } from '../../domain/ids.js';
import type { EventStore } from '../../eventstore/port.js';
import type { LedgerQueries } from '../../projections/ledgerQueries.js';
import type { Principal } from '../auth.js';
import type { Metrics } from '../metrics.js';
import { toApiError } from '../problem.js';

/** What every route module gets: the ledger's ports and the helpers that turn a request into a command. */
export interface RouteKit {
  commands: LedgerCommands;
  queries: LedgerQueries;
  store: EventStore;
  /** The authenticated caller (routes with a policy only). */
  principal(request: FastifyRequest): Principal;
  /**
   * Command context; for money routes its idempotency key derives from tenant + caller + header. A
   * money route passes the body's `metadata` (the caller's metadata, stored on the command's events).
   */
  commandContext(request: FastifyRequest, clientMetadata?: ClientMetadata): CommandContext;
  /** Deterministic id of a resource created by this request (same key -> same id). */
  createdId(request: FastifyRequest, kind: string): string;
  /** Runs a command, counting its outcome by code. */
  run<T>(command: string, fn: () => Promise<T>): Promise<T>;
}

/**
 * A route module: a fastify plugin that adds routes to the /v1 context (src/api/v1/context.ts), whose
 * plugins authenticate, rate limit, authorize, wait for read-your-writes and claim idempotency keys for
 * it. To add one:
 *  1. write `src/api/routes/<name>.ts` exporting a RouteModule (or, when it needs dependencies of its
 *     own, a function of them returning one, like reconciliation.ts);
 *  2. give every route `config.policy` (who may call it; src/api/auth.ts) or `config.public: true`, and
 *     `config.money: true` when it moves money (Idempotency-Key required, stricter rate limit); a schema
 *     with an `operationId`-worthy summary and `errorResponses(...)`;
 *  3. throw errors (ApiError, DomainError, the event store's typed errors): the central error handler
 *     (app.ts) answers every one as problem+json with a stable code; never build a problem reply by hand;
 *  4. register it: a module that needs only the kit goes into ROUTE_MODULES (context.ts); a factory is
 *     called in src/server.ts and passed in AppDeps.routes;
 *  5. add its routes to the role x route matrix (test/api/authz.e2e.test.ts) and the schema fuzz test.
 */
export type RouteModule = FastifyPluginAsyncTypebox<{ kit: RouteKit }>;

export function createRouteKit(deps: {
  commands: LedgerCommands;
  queries: LedgerQueries;
  store: EventStore;
  metrics: Metrics;
}): RouteKit {
  const principalOf = (request: FastifyRequest): Principal => {
    const principal = request.principal;
    if (!principal) throw new Error(`${request.url}: a public route has no principal`);
    return principal;
  };
  return {
    commands: deps.commands,
    queries: deps.queries,
    store: deps.store,
    principal: principalOf,
    commandContext(request, clientMetadata) {
      const principal = principalOf(request);
      const key = request.idempotency?.key ?? request.headers['idempotency-key'];
      const idempotencyKey =
        typeof key === 'string' && key.length > 0 ? `http:${principal.sub}:${key}` : `http-req:${request.id}`;
      return {
        tenantId: principal.tenantId,
        actor: { id: principal.sub, role: request.grant?.role ?? principal.roles[0]! },
        idempotencyKey,
        correlationId: request.id,
        causationId: request.id,
        ...(clientMetadata !== undefined ? { clientMetadata } : {}),
      };
    },
    createdId(request, kind) {
      const principal = principalOf(request);
      const key = request.idempotency?.key;
      if (!key) throw new Error('createdId needs an idempotent request');
      return deterministicId('api', kind, principal.tenantId, principal.sub, key);
    },
    async run(command, fn) {
      try {
        const result = await fn();
        deps.metrics.commandOutcomes.inc({ command, code: 'ok' });
        return result;
      } catch (error) {
        deps.metrics.commandOutcomes.inc({ command, code: toApiError(error)?.code ?? 'internal_error' });
        throw error;
      }
    },
  };
}
