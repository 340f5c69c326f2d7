import fp from 'fastify-plugin';
import { type Authenticator, grantsFor, type Policy, type Principal } from '../auth.js';
import { ApiError } from '../problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (src/api/auth.ts). Every /v1 route has one, or is `public`. */
    policy?: Policy;
  }
  interface FastifyRequest {
    /** The verified caller; null only on public routes. */
    principal: Principal | null;
  }
}

export interface AuthenticationOptions {
  authenticator: Authenticator;
}

/**
 * Who is calling, and may their roles call this route at all: in `onRequest`, before the body is even
 * parsed, so floods of bad requests are refused cheaply. Every route of the context must say who may
 * call it (`config.policy`) or that anyone may (`config.public`, e.g. a webhook checked by signature):
 * a route with neither is refused when it is registered, so no route is open by omission.
 */
export const authentication = fp<AuthenticationOptions>(
  async (app, { authenticator }) => {
    app.decorateRequest('principal', null);
    app.addHook('onRoute', (route) => {
      if (!route.config?.policy && route.config?.public !== true) {
        throw new Error(`route ${route.method} ${route.url} has neither a policy nor public: true`);
      }
    });
    app.addHook('onRequest', async (request) => {
      const policy = request.routeOptions.config.policy;
      if (!policy) return; // public
      const principal = await authenticator.authenticate(request.headers.authorization);
      request.principal = principal;
      if (grantsFor(policy, principal).length === 0) {
        throw new ApiError('forbidden', 'your roles do not allow this operation');
      }
    });
  },
  { name: 'v1-authentication' },
);
