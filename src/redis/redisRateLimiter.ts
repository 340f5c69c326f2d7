import type { Redis } from 'ioredis';
import type { RateLimitDecision, RateLimiter, RateLimitRule } from '../api/rateLimit.js';

// Fixed window, atomic: take n slots (INCRBY), set the expiry on the first use of the window, return the
// count after the increment and the time left. This process owns the slots (count - n, count].
const LEASE = `
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}`;

const COMMAND = 'ledgerRateLimitLease';

export interface RedisRateLimiterOptions {
  /** Prefix of the counters' keys (after the client's own keyPrefix). Default 'ratelimit:'. */
  keyPrefix?: string;
  /** Largest lease, in tokens. Default 64. */
  maxLeaseTokens?: number;
  /** A lease is also at most floor(limit / leaseDivisor) tokens (at least 1). Default 32. */
  leaseDivisor?: number;
  /** Requests of one key waiting on lease fetches; beyond, a request asks Redis for itself. Default 1024. */
  maxWaitersPerKey?: number;
  /** Keys whose lease is held in memory; beyond, the oldest is dropped. Default 100_000. */
  maxKeys?: number;
}

/** One key's lease in one window of this process. */
interface Lease {
  readonly limit: number;
  /** Slots granted to this process and not handed out yet. */
  tokens: number;
  /** Highest counter value Redis reported in this window. */
  countSeen: number;
  /** performance.now() at which the window ends; Infinity until the first fetch answers. */
  deadlineMs: number;
  nextLeaseTokens: number;
  /** Requests waiting on this lease's shared fetches (bounded by maxWaitersPerKey). */
  waiters: number;
  /** The fetch in flight that still has untaken tokens for requests arriving now. */
  open: Fetch | undefined;
}

interface Fetch {
  readonly tokens: number;
  readonly shared: boolean;
  readonly waiting: Array<{ resolve: (d: RateLimitDecision) => void; reject: (e: unknown) => void }>;
}

type LeaseCommand = (key: string, windowMs: number, tokens: number) => Promise<[number, number]>;

/**
 * Fixed-window limiter shared by every API process through one Redis counter per (key, window), with
 * quota leasing so a busy caller does not cost one Redis round trip per request.
 *
 * A process takes slots of the window in chunks (leases) and hands them out locally. The first lease of
 * a key in a window is 1 token, so a caller making few requests is counted exactly; each further lease
 * in the same window doubles, up to min(maxLeaseTokens, floor(limit / leaseDivisor)).
 *
 * Trade-off: this never admits more than `limit` per window (every admission is a distinct slot
 * <= limit of Redis' counter, and a lease never outlives the window it was taken in), but it may
 * refuse early: slots leased by processes that do not use them are lost to the others, so a caller can
 * be refused after at least limit - (processes x lease cap) admissions in a window (lease cap <=
 * limit / leaseDivisor, i.e. ~1/32 of the limit per process by default). Dropped leases (eviction,
 * expiry) waste slots the same way, never over-admit.
 *
 * Concurrent requests of one key share the lease fetch in flight while it has tokens for them (single
 * flight per lease); when it is spoken for, the next (doubled) lease is fetched at once rather than
 * after it, so a burst costs a few pipelined round trips instead of a serial chain.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly kind = 'redis' as const;
  private readonly keyPrefix: string;
  private readonly maxLeaseTokens: number;
  private readonly leaseDivisor: number;
  private readonly maxWaitersPerKey: number;
  private readonly maxKeys: number;
  private readonly leases = new Map<string, Lease>();
  private readonly lease: LeaseCommand;

  constructor(redis: Redis, options: RedisRateLimiterOptions = {}) {
    this.keyPrefix = options.keyPrefix ?? 'ratelimit:';
    this.maxLeaseTokens = positiveInteger('maxLeaseTokens', options.maxLeaseTokens ?? 64);
    this.leaseDivisor = positiveInteger('leaseDivisor', options.leaseDivisor ?? 32);
    this.maxWaitersPerKey = positiveInteger('maxWaitersPerKey', options.maxWaitersPerKey ?? 1024);
    this.maxKeys = positiveInteger('maxKeys', options.maxKeys ?? 100_000);
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: LEASE });
    const command = (redis as unknown as Record<string, LeaseCommand | undefined>)[COMMAND];
    if (!command) throw new Error(`ioredis did not define ${COMMAND}`);
    this.lease = command.bind(redis);
  }

  /** Keys whose lease is held in memory (at most maxKeys). */
  get size(): number {
    return this.leases.size;
  }

  async consume(key: string, rule: RateLimitRule): Promise<RateLimitDecision> {
    // The window length is part of the key so two rules never share a counter.
    const redisKey = `${this.keyPrefix}${rule.windowMs}:${key}`;
    const now = performance.now();
    const lease = this.leaseFor(redisKey, rule.limit, now);
    const local = this.takeLocal(lease, now);
    if (local) return local;
    if (lease.waiters >= this.maxWaitersPerKey) {
      return this.wait(this.fetch(redisKey, rule.windowMs, lease, 1, false), lease);
    }
    let fetch = lease.open;
    if (!fetch) {
      const tokens = lease.nextLeaseTokens;
      lease.nextLeaseTokens = Math.min(tokens * 2, this.leaseCap(rule.limit));
      fetch = this.fetch(redisKey, rule.windowMs, lease, tokens, true);
    }
    return this.wait(fetch, lease);
  }

  private leaseCap(limit: number): number {
    return Math.min(this.maxLeaseTokens, Math.max(1, Math.floor(limit / this.leaseDivisor)));
  }

  private leaseFor(redisKey: string, limit: number, now: number): Lease {
    const current = this.leases.get(redisKey);
    if (current && current.deadlineMs > now && current.limit === limit) return current;
    // A new window (or another limit for the same counter): the old lease's tokens are dropped, which
    // wastes them but cannot over-admit. Its fetches in flight still answer their own waiters.
    if (current) this.leases.delete(redisKey);
    while (this.leases.size >= this.maxKeys) {
      const oldest = this.leases.keys().next().value as string;
      this.leases.delete(oldest);
    }
    const lease: Lease = {
      limit,
      tokens: 0,
      countSeen: 0,
      deadlineMs: Number.POSITIVE_INFINITY,
      nextLeaseTokens: 1,
      waiters: 0,
      open: undefined,
    };
    this.leases.set(redisKey, lease);
    return lease;
  }

  /** A decision without Redis: a held token, or a refusal cached until the window ends. */
  private takeLocal(lease: Lease, now: number): RateLimitDecision | undefined {
    if (lease.tokens > 0) {
      lease.tokens -= 1;
      return allowed(lease, 0, now);
    }
    // The counter only grows within a window: once it reached the limit, any further lease is empty.
    if (lease.countSeen >= lease.limit) return refused(lease, now);
    return undefined;
  }

  private wait(fetch: Fetch, lease: Lease): Promise<RateLimitDecision> {
    if (fetch.waiting.length >= fetch.tokens) throw new Error('lease fetch over-subscribed');
    if (fetch.shared) {
      lease.waiters += 1;
      // Spoken for: the next request of this key starts the next lease.
      if (fetch.waiting.length + 1 === fetch.tokens && lease.open === fetch) lease.open = undefined;
    }
    return new Promise((resolve, reject) => fetch.waiting.push({ resolve, reject }));
  }

  private fetch(redisKey: string, windowMs: number, lease: Lease, tokens: number, shared: boolean): Fetch {
    const fetch: Fetch = { tokens, shared, waiting: [] };
    if (shared) lease.open = fetch;
    const sentAtMs = performance.now();
    const release = () => {
      if (lease.open === fetch) lease.open = undefined;
      if (shared) lease.waiters -= fetch.waiting.length;
    };
    this.lease(redisKey, windowMs, tokens).then(
      ([count, ttlMs]) => {
        release();
        this.settle(lease, fetch, count, ttlMs, sentAtMs);
      },
      (error: unknown) => {
        release();
        for (const waiter of fetch.waiting) waiter.reject(error);
      },
    );
    return fetch;
  }

  /**
   * Decides for the requests waiting on a fetch, synchronously when its reply arrives, so each sees the
   * counter as of its own reply (replies of one connection arrive in order).
   */
  private settle(lease: Lease, fetch: Fetch, count: number, ttlMs: number, sentAtMs: number): void {
    if (!Number.isSafeInteger(count) || count < fetch.tokens || !Number.isSafeInteger(ttlMs) || ttlMs < 0) {
      const error = new Error(`rate limit script returned count ${count}, ttl ${ttlMs} for ${fetch.tokens}`);
      for (const waiter of fetch.waiting) waiter.reject(error);
      return;
    }
    let fresh = Math.min(fetch.tokens, Math.max(0, lease.limit - (count - fetch.tokens)));
    // Sent before Redis ran the script, so this is no later than the key's expiry: a lease never
    // outlives its window. Taking the minimum keeps that true if fetches straddle two windows.
    lease.deadlineMs = Math.min(lease.deadlineMs, sentAtMs + ttlMs);
    lease.countSeen = Math.max(lease.countSeen, count);
    const now = performance.now();
    for (const waiter of fetch.waiting) {
      if (fresh > 0) {
        fresh -= 1;
        waiter.resolve(allowed(lease, fresh, now));
      } else if (lease.tokens > 0 && lease.deadlineMs > now) {
        lease.tokens -= 1;
        waiter.resolve(allowed(lease, 0, now));
      } else {
        waiter.resolve(refused(lease, now));
      }
    }
    if (lease.deadlineMs > now) lease.tokens += fresh;
  }
}

function allowed(lease: Lease, pendingTokens: number, now: number): RateLimitDecision {
  return {
    allowed: true,
    // Slots nobody has taken yet (as last seen), plus the ones this process holds.
    remaining: Math.max(0, lease.limit - lease.countSeen) + lease.tokens + pendingTokens,
    resetMs: Math.max(0, Math.ceil(lease.deadlineMs - now)),
  };
}

function refused(lease: Lease, now: number): RateLimitDecision {
  return { allowed: false, remaining: 0, resetMs: Math.max(0, Math.ceil(lease.deadlineMs - now)) };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1`);
  return value;
}
