import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from '../../src/api/rateLimit.js';
import { createRedisClient } from '../../src/redis/redis.js';
import { RedisRateLimiter } from '../../src/redis/redisRateLimiter.js';
import { type ShellHarness, shellHarness, token } from './support/harness.js';

describe('in-memory rate limiter', () => {
  it('allows `limit` requests per window, then refuses until the window resets', async () => {
    let now = 1_000;
    const limiter = new MemoryRateLimiter({ maxKeys: 10, now: () => now });
    const rule = { limit: 3, windowMs: 1_000 };
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.consume('k', rule));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions[3]!.resetMs).toBe(1_000);
    now += 400;
    expect((await limiter.consume('k', rule)).resetMs).toBe(600);
    now += 600;
    expect((await limiter.consume('k', rule)).allowed).toBe(true);
  });

  it('keeps memory bounded whatever the number of callers', async () => {
    const limiter = new MemoryRateLimiter({ maxKeys: 100 });
    for (let i = 0; i < 5_000; i++) await limiter.consume(`caller-${i}`, { limit: 10, windowMs: 60_000 });
    expect(limiter.size).toBeLessThanOrEqual(100);
  });
});

describe.skipIf(!process.env.REDIS_URL ? 'REDIS_URL not set' : false)('Redis rate limiter', () => {
  const redis = createRedisClient({
    url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    keyPrefix: `t${randomBytes(6).toString('hex')}:`,
  });
  afterAll(() => redis.quit());

  it('counts atomically across concurrent callers: exactly `limit` pass', async () => {
    const limiter = new RedisRateLimiter(redis);
    const rule = { limit: 25, windowMs: 10_000 };
    const decisions = await Promise.all(Array.from({ length: 60 }, () => limiter.consume('hot', rule)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(25);
    const refused = decisions.find((d) => !d.allowed)!;
    expect(refused.resetMs).toBeGreaterThan(0);
    expect(refused.resetMs).toBeLessThanOrEqual(10_000);
    expect((await limiter.consume('other', rule)).allowed).toBe(true);
  });
});

describe('rate limits on the API', () => {
  let h: ShellHarness;
  beforeAll(async () => {
    h = await shellHarness({
      rateLimits: { default: { limit: 5, windowMs: 60_000 }, money: { limit: 2, windowMs: 60_000 } },
    });
    h.fake.credit('acme', 'stu_r', 100_000);
    h.fake.credit('acme', 'stu_s', 100_000);
  });
  afterAll(() => h.close());

  it('is stricter on money-moving routes, per tenant and caller, with 429 + Retry-After', async () => {
    const student = await token('acme', 'stu_r', 'student');
    const topUp = (t: string, studentId: string, key: string) =>
      h.app.inject({
        method: 'POST',
        url: `/v1/wallets/${studentId}/top-ups`,
        headers: { authorization: `Bearer ${t}`, 'idempotency-key': key },
        payload: { amount: 1_000, currency: 'usd' },
      });
    expect((await topUp(student, 'stu_r', 'a')).statusCode).toBe(201);
    expect((await topUp(student, 'stu_r', 'b')).statusCode).toBe(201);
    const changes = h.fake.changes.length;
    const limited = await topUp(student, 'stu_r', 'c');
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'rate_limited' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(h.fake.changes.length).toBe(changes);
    // Reads have their own, larger budget.
    const read = await h.app.inject({
      url: '/v1/wallets/stu_r',
      headers: { authorization: `Bearer ${student}` },
    });
    expect(read.statusCode).toBe(200);
    // Another caller, and the same subject in another tenant, are not affected.
    expect((await topUp(await token('acme', 'stu_s', 'student'), 'stu_s', 'a')).statusCode).toBe(201);
    expect((await topUp(await token('other', 'stu_r', 'student'), 'stu_r', 'a')).statusCode).toBe(201);
    for (let i = 0; i < 4; i++) {
      await h.app.inject({ url: '/v1/wallets/stu_r', headers: { authorization: `Bearer ${student}` } });
    }
    const readLimited = await h.app.inject({
      url: '/v1/wallets/stu_r',
      headers: { authorization: `Bearer ${student}` },
    });
    expect(readLimited.statusCode).toBe(429);
    const metrics = await h.app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/ledger_http_rate_limited_total\{class="money"\} 1/);
  });
});
