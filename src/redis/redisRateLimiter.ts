import type { Redis } from 'ioredis';
import type { RateLimitDecision, RateLimiter, RateLimitRule } from '../api/rateLimit.js';

// Fixed window, atomic: INCR, set the expiry on the first hit, return the count and the time left.
const CONSUME = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}`;

export class RedisRateLimiter implements RateLimiter {
  readonly kind = 'redis' as const;

  constructor(
    private readonly redis: Redis,
    private readonly options: { keyPrefix: string } = { keyPrefix: 'ratelimit:' },
  ) {
    redis.defineCommand('ledgerRateLimitConsume', { numberOfKeys: 1, lua: CONSUME });
  }

  async consume(key: string, rule: RateLimitRule): Promise<RateLimitDecision> {
    // The window length is part of the key so two rules never share a counter.
    const redisKey = `${this.options.keyPrefix}${rule.windowMs}:${key}`;
    const run = (this.redis as unknown as Record<string, (k: string, w: number) => Promise<[number, number]>>)
      .ledgerRateLimitConsume!;
    const [count, ttlMs] = await run.call(this.redis, redisKey, rule.windowMs);
    return { allowed: count <= rule.limit, remaining: Math.max(0, rule.limit - count), resetMs: ttlMs };
  }
}
