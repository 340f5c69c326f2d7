import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/api/problem.js';
import type { RouteModule } from '../../src/api/v1/routeKit.js';
import { shellHarness, token } from './support/harness.js';

/** The /v1 context's contract with route modules (src/api/v1/routeKit.ts). */
describe('the /v1 context', () => {
  it('refuses a route with neither a policy nor public: true when the app starts', async () => {
    const open: RouteModule = async (app) => {
      app.get('/test/open', async () => ({ ok: true }));
    };
    await expect(shellHarness({ routes: [open] })).rejects.toThrow(/GET \/v1\/test\/open has neither/);
  });

  it('refuses a public money-moving route', async () => {
    const publicMoney: RouteModule = async (app) => {
      app.post('/test/free-money', { config: { public: true, money: true } }, async () => ({ ok: true }));
    };
    await expect(shellHarness({ routes: [publicMoney] })).rejects.toThrow(/cannot be public/);
  });

  it("answers a module's thrown errors through the central handler and leaves public routes unauthenticated", async () => {
    const module: RouteModule = async (app, { kit }) => {
      app.get('/test/refuse', { config: { policy: [{ role: 'service' }] } }, async (request) => {
        throw new ApiError('invalid_state', `not now, ${kit.principal(request).sub}`, {
          retryAfterSeconds: 7,
        });
      });
      app.get('/test/public', { config: { public: true } }, async (request) => ({
        principal: request.principal,
      }));
    };
    const h = await shellHarness({ routes: [module] });
    try {
      const refused = await h.app.inject({
        method: 'GET',
        url: '/v1/test/refuse',
        headers: {
          authorization: `Bearer ${await token('acme', 'svc_1', 'service')}`,
          'x-request-id': 'req-1',
        },
      });
      expect(refused.statusCode).toBe(422);
      expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(refused.headers['retry-after']).toBe('7');
      expect(refused.headers['ratelimit-limit']).toBeDefined();
      expect(refused.json()).toEqual({
        type: 'https://wemaster.dev/problems/invalid-state',
        title: 'Not possible in the current state',
        status: 422,
        code: 'invalid_state',
        detail: 'not now, svc_1',
        instance: 'req-1',
      });
      const anonymous = await h.app.inject({ method: 'GET', url: '/v1/test/refuse' });
      expect(anonymous.statusCode).toBe(401);
      const open = await h.app.inject({ method: 'GET', url: '/v1/test/public' });
      expect(open.statusCode).toBe(200);
      expect(open.json()).toEqual({ principal: null });
      expect(open.headers['ratelimit-limit']).toBeUndefined();
    } finally {
      await h.close();
    }
  });
});
