import { randomBytes } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRateLimiter, type RateLimitDecision } from '../../src/api/rateLimit.js';
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
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const keyPrefix = `t${randomBytes(6).toString('hex')}:`;
  const redis = createRedisClient({ url, keyPrefix, commandTimeoutMs: 5_000 });
  // One client per simulated API process: same key prefix, separate connections, separate leases.
  const processes = Array.from({ length: 4 }, () =>
    createRedisClient({ url, keyPrefix, commandTimeoutMs: 5_000 }),
  );
  afterAll(async () => {
    await Promise.all([redis, ...processes].map((client) => client.quit()));
  });

  // Our script is the only INCRBY user: the server-wide count of INCRBY calls made from scripts is the
  // number of lease fetches Redis really executed (anything else running concurrently only adds to it).
  async function incrbyCalls(): Promise<number> {
    const stats = await redis.info('commandstats');
    const match = /^cmdstat_incrby:calls=(\d+),/m.exec(stats);
    return match ? Number(match[1]) : 0;
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

  it('several processes hammering one key: never more than the limit, at most processes x lease cap fewer', async () => {
    const rule = { limit: 1_000, windowMs: 60_000 };
    const limiters = processes.map((client) => new RedisRateLimiter(client));
    const decisions = await Promise.all(
      Array.from({ length: 3_000 }, (_, i) => limiters[i % limiters.length]!.consume('hammered', rule)),
    );
    const admitted = decisions.filter((d) => d.allowed).length;
    const leaseCap = Math.floor(rule.limit / 32);
    expect(admitted).toBeLessThanOrEqual(rule.limit);
    expect(admitted).toBeGreaterThanOrEqual(rule.limit - limiters.length * leaseCap);
    expect(Number(await redis.get(`ratelimit:60000:hammered`))).toBeGreaterThanOrEqual(rule.limit);
    expect(decisions.every((d) => d.remaining >= 0 && d.resetMs > 0 && d.resetMs <= rule.windowMs)).toBe(
      true,
    );
  });

  it('property: any limit, lease bounds, processes and interleaving never over-admit', async () => {
    let run = 0;
    const stepArb = fc.record({
      process: fc.nat({ max: 3 }),
      burst: fc.integer({ min: 1, max: 60 }),
      after: fc.constantFrom('continue', 'tick', 'settle'),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 4 }),
        fc.record({
          maxLeaseTokens: fc.integer({ min: 1, max: 64 }),
          leaseDivisor: fc.integer({ min: 1, max: 40 }),
          maxWaitersPerKey: fc.integer({ min: 1, max: 64 }),
        }),
        fc.array(stepArb, { minLength: 1, maxLength: 20 }),
        async (limit, instances, options, steps) => {
          const key = `prop-${run++}`;
          const rule = { limit, windowMs: 60_000 };
          const limiters = processes
            .slice(0, instances)
            .map((client) => new RedisRateLimiter(client, options));
          const pending: Promise<RateLimitDecision>[] = [];
          for (const step of steps) {
            const limiter = limiters[step.process % instances]!;
            for (let i = 0; i < step.burst; i++) pending.push(limiter.consume(key, rule));
            if (step.after === 'tick') await new Promise((resolve) => setImmediate(resolve));
            if (step.after === 'settle') await Promise.all(pending);
          }
          const decisions = await Promise.all(pending);
          const admitted = decisions.filter((d) => d.allowed).length;
          const leaseCap = Math.min(
            options.maxLeaseTokens,
            Math.max(1, Math.floor(limit / options.leaseDivisor)),
          );
          expect(admitted).toBeLessThanOrEqual(limit);
          // Someone was refused only once all `limit` slots were taken; the unused ones are held in leases.
          if (admitted < decisions.length)
            expect(admitted).toBeGreaterThanOrEqual(limit - instances * leaseCap);
          expect(decisions.every((d) => d.remaining >= 0 && d.remaining <= limit)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('one process alone: remaining is exact, refusals are cached until the window resets', async () => {
    const limiter = new RedisRateLimiter(redis, { leaseDivisor: 1 });
    const rule = { limit: 100, windowMs: 400 };
    const remaining: number[] = [];
    for (let i = 0; i < 100; i++) {
      const decision = await limiter.consume('solo', rule);
      expect(decision.allowed).toBe(true);
      remaining.push(decision.remaining);
    }
    expect(remaining).toEqual(Array.from({ length: 100 }, (_, i) => 99 - i));
    const before = await incrbyCalls();
    const refusals: RateLimitDecision[] = [];
    for (let i = 0; i < 20; i++) refusals.push(await limiter.consume('solo', rule));
    expect(refusals.every((d) => !d.allowed && d.remaining === 0 && d.resetMs > 0 && d.resetMs <= 400)).toBe(
      true,
    );
    // The lease that came back empty (or exactly at the limit) is remembered: no Redis call per refusal.
    expect((await incrbyCalls()) - before).toBeLessThanOrEqual(1);
    await sleep(refusals[0]!.resetMs + 20);
    expect((await limiter.consume('solo', rule)).allowed).toBe(true);
  });

  it('a lease never outlives its window: after the reset the first request takes 1 token again', async () => {
    const limiter = new RedisRateLimiter(redis, { leaseDivisor: 1 });
    const rule = { limit: 100, windowMs: 500 };
    for (let i = 0; i < 10; i++) expect((await limiter.consume('reset', rule)).allowed).toBe(true);
    // Leases of 1, 2, 4 and 8 tokens: 15 slots taken, 5 still held by this process.
    expect(await redis.get('ratelimit:500:reset')).toBe('15');
    const ttlMs = await redis.pttl('ratelimit:500:reset');
    expect(ttlMs).toBeGreaterThan(0);
    await sleep(ttlMs + 20);
    expect((await limiter.consume('reset', rule)).allowed).toBe(true);
    expect(await redis.get('ratelimit:500:reset')).toBe('1');
  });

  it('a caller far below its limit is never refused, across processes and window resets', async () => {
    const limiters = processes.map((client) => new RedisRateLimiter(client));
    const rule = { limit: 1_000, windowMs: 300 };
    const decisions: RateLimitDecision[] = [];
    const started = performance.now();
    // About 60 requests per window spread over four processes; runs across at least three windows.
    while (performance.now() - started < 900) {
      decisions.push(...(await Promise.all(limiters.map((l) => l.consume('quiet', rule)))));
      await sleep(20);
    }
    expect(decisions.length).toBeGreaterThan(40);
    expect(decisions.filter((d) => !d.allowed)).toEqual([]);
  });

  it('a busy caller sends a small fraction of a Redis command per request (INFO commandstats)', async () => {
    const rule = { limit: 1_000_000, windowMs: 60_000 };
    const requests = 2_000;
    const incrbysFor = async (limiter: RedisRateLimiter, key: string) => {
      const before = await incrbyCalls();
      for (let i = 0; i < requests / 50; i++) {
        const burst = await Promise.all(Array.from({ length: 50 }, () => limiter.consume(key, rule)));
        expect(burst.every((d) => d.allowed)).toBe(true);
      }
      return (await incrbyCalls()) - before;
    };
    // Without leasing (a lease of 1), one command per request: shows the measure sees every call.
    expect(
      await incrbysFor(new RedisRateLimiter(redis, { maxLeaseTokens: 1 }), 'busy-unleased'),
    ).toBeGreaterThanOrEqual(requests);
    // Leases of 1, 2, ..., 64 then 64 each: about 37 commands for 2,000 requests.
    const leased = await incrbysFor(new RedisRateLimiter(redis), 'busy-leased');
    expect(leased).toBeGreaterThanOrEqual(Math.ceil(requests / 64));
    expect(leased).toBeLessThanOrEqual(requests / 16);
  });

  it('keeps at most maxKeys leases; dropping one never over-admits', async () => {
    const limiter = new RedisRateLimiter(redis, { maxKeys: 3, leaseDivisor: 1 });
    const rule = { limit: 20, windowMs: 60_000 };
    const decisions: RateLimitDecision[] = [];
    for (let round = 0; round < 30; round++) {
      for (let k = 0; k < 8; k++) decisions.push(await limiter.consume(`evicted-${k}`, rule));
      expect(limiter.size).toBeLessThanOrEqual(3);
    }
    // Each key was asked 30 times and its leases were dropped over and over: never more than 20 pass.
    for (let k = 0; k < 8; k++) {
      const admitted = decisions.filter((d, i) => i % 8 === k && d.allowed).length;
      expect(admitted).toBeLessThanOrEqual(20);
      expect(admitted).toBeGreaterThan(0);
    }
  });

  it('Redis down: every request, waiters included, is rejected promptly', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const down = createRedisClient({
      url: `redis://127.0.0.1:${port}`,
      connectTimeoutMs: 200,
      commandTimeoutMs: 200,
      maxRetriesPerRequest: 0,
    });
    try {
      // A lease cap of 64, so most of the 200 requests wait on another request's fetch.
      const limiter = new RedisRateLimiter(down, { leaseDivisor: 1, maxWaitersPerKey: 100 });
      const rule = { limit: 10_000, windowMs: 60_000 };
      for (let attempt = 0; attempt < 2; attempt++) {
        const started = performance.now();
        const results = await Promise.allSettled(
          Array.from({ length: 200 }, () => limiter.consume('down', rule)),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toEqual([]);
        expect(performance.now() - started).toBeLessThan(2_000);
      }
    } finally {
      down.disconnect();
    }
  }, 10_000);
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
