import fp from 'fastify-plugin';
import type { Metrics } from '../metrics.js';
import { ApiError } from '../problem.js';
import type { RateLimiter, RateLimitPolicy } from '../rateLimit.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Money-moving: requires an Idempotency-Key (idempotentRequests.ts) and has the stricter rate limit. */
    money?: boolean;
  }
}

export interface RateLimitingOptions {
  rateLimiter: RateLimiter;
  rateLimits: RateLimitPolicy;
  metrics: Metrics;
}

/**
 * A rate limit per caller (tenant + subject), stricter for money-moving routes, right after
 * authentication and still before the body is parsed. Public routes are not limited here (a webhook
 * sender is not a caller with a subject).
 */
export const rateLimiting = fp<RateLimitingOptions>(
  async (app, { rateLimiter, rateLimits, metrics }) => {
    app.addHook('onRequest', async (request, reply) => {
      const principal = request.principal;
      if (!principal) return; // public
      const money = request.routeOptions.config.money === true;
      const rule = money ? rateLimits.money : rateLimits.default;
      const key = `${money ? 'm' : 'd'}:${principal.tenantId}:${principal.sub}`;
      let decision: Awaited<ReturnType<RateLimiter['consume']>>;
      try {
        decision = await rateLimiter.consume(key, rule);
      } catch (error) {
        // Rate limiting protects capacity, not correctness: if its store is down, let the request through.
        request.log.warn({ err: error }, 'rate limiter unavailable; request not limited');
        return;
      }
      reply.header('ratelimit-limit', String(rule.limit));
      reply.header('ratelimit-remaining', String(decision.remaining));
      if (!decision.allowed) {
        metrics.rateLimited.inc({ class: money ? 'money' : 'default' });
        throw new ApiError('rate_limited', `rate limit of ${rule.limit} per ${rule.windowMs} ms exceeded`, {
          retryAfterSeconds: Math.max(1, Math.ceil(decision.resetMs / 1000)),
        });
      }
    });
  },
  { name: 'v1-rate-limiting', dependencies: ['v1-authentication'] },
);
