import fp from 'fastify-plugin';
import type { EventStore } from '../../eventstore/port.js';
import type { LedgerQueries } from '../../projections/ledgerQueries.js';
import { authorize, type Grant } from '../auth.js';
import { createOwnershipLoader } from '../routes/ownership.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The grant of the route's policy the caller acts under (its role; ownership checked). */
    grant: Grant | null;
  }
}

export interface AuthorizationOptions {
  queries: LedgerQueries;
  store: EventStore;
}

/**
 * Ownership (a student only on its own wallet, a tutor only on its own bookings...): in `preHandler`,
 * after validation, because it needs the parsed params and body and may load the resource's owners.
 */
export const authorization = fp<AuthorizationOptions>(
  async (app, { queries, store }) => {
    const loader = createOwnershipLoader(queries, store);
    app.decorateRequest('grant', null);
    app.addHook('preHandler', async (request) => {
      const policy = request.routeOptions.config.policy;
      if (!policy || !request.principal) return; // public
      request.grant = await authorize(
        policy,
        request.principal,
        { params: (request.params ?? {}) as Record<string, unknown>, body: request.body },
        loader,
      );
    });
  },
  { name: 'v1-authorization', dependencies: ['v1-authentication'] },
);
