import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../../src/redis/redis.js';
import { RedisIdempotencyStore } from '../../src/redis/redisIdempotencyStore.js';
import { RedisRateLimiter } from '../../src/redis/redisRateLimiter.js';

// Redis is optional infrastructure: without REDIS_URL there is nothing to run these against.
describe.skipIf(!process.env.REDIS_URL)('Redis stores on an auto-pipelined client', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = createRedisClient({
      url: process.env.REDIS_URL!,
      keyPrefix: `t${randomBytes(4).toString('hex')}:`,
      commandTimeoutMs: 5_000,
    });
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('complete (one script) keeps the claim fingerprint and the response byte for byte', async () => {
    const store = new RedisIdempotencyStore(redis);
    const body = JSON.stringify({
      text: 'é€ 😀 "quoted" \\ back/slash \u0001 </script>',
      n: 12345678901234,
      nested: { a: [1, 2.5, null, true] },
      empty: {},
      list: [],
    });
    const response = { statusCode: 201, body, contentType: 'application/json; charset=utf-8' };
    const claim = await store.begin('acme/u/k', 'fp-original', { lockTtlMs: 60_000 });
    if (claim.kind !== 'acquired') throw new Error('expected a claim');
    await store.complete('acme/u/k', claim.token, response, { retentionMs: 60_000 });
    expect(await store.begin('acme/u/k', 'fp-other', { lockTtlMs: 60_000 })).toEqual({
      kind: 'completed',
      fingerprint: 'fp-original',
      response,
    });
    expect(await redis.pttl('idem:acme/u/k')).toBeGreaterThan(50_000);
  });

  it('concurrent commands issued in one tick each get their own answer', async () => {
    const store = new RedisIdempotencyStore(redis);
    const limiter = new RedisRateLimiter(redis);
    const rule = { limit: 50, windowMs: 60_000 };
    const [claims, decisions] = await Promise.all([
      Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          store.begin(`acme/u/c${i % 20}`, `fp${i}`, { lockTtlMs: 60_000 }),
        ),
      ),
      Promise.all(Array.from({ length: 60 }, () => limiter.consume('acme:u', rule))),
    ]);
    // Each of the 20 keys is claimed exactly once.
    expect(claims.filter((c) => c.kind === 'acquired')).toHaveLength(20);
    expect(claims.filter((c) => c.kind === 'in_flight')).toHaveLength(20);
    // The counter saw 60 distinct increments: 50 allowed (remaining 49 down to 0), 10 refused.
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
    expect(new Set(decisions.map((d) => d.remaining)).size).toBe(50);
  });
});
