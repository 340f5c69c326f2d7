/**
 * Rate limits per tenant + caller, fixed window. Redis when configured (src/redis/redisRateLimiter.ts,
 * shared by every API process), in memory on the embedded default (one process).
 */
export interface RateLimitRule {
  /** Requests allowed per window. */
  limit: number;
  windowMs: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  remaining: number;
  /** Until the window resets (when refused: how long to wait). */
  resetMs: number;
}

export interface RateLimiter {
  readonly kind: 'redis' | 'memory';
  consume(key: string, rule: RateLimitRule): Promise<RateLimitDecision>;
}

export interface RateLimitPolicy {
  /** Reads and other non-money routes. */
  default: RateLimitRule;
  /** Money-moving routes: stricter. */
  money: RateLimitRule;
}

export const DEFAULT_RATE_LIMITS: RateLimitPolicy = {
  default: { limit: 600, windowMs: 60_000 },
  money: { limit: 120, windowMs: 60_000 },
};

export function assertRule(rule: RateLimitRule): void {
  if (!Number.isSafeInteger(rule.limit) || rule.limit < 1) throw new RangeError('rate limit must be >= 1');
  if (!Number.isSafeInteger(rule.windowMs) || rule.windowMs < 1)
    throw new RangeError('window must be >= 1 ms');
}

/**
 * In-process fixed-window limiter with bounded memory: at most maxKeys windows are tracked; when full,
 * expired windows are swept, and if none expired the oldest window is evicted (Map keeps insertion
 * order), which can only ever let a caller through early, never lock one out.
 */
export class MemoryRateLimiter implements RateLimiter {
  readonly kind = 'memory' as const;
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(private readonly options: { maxKeys: number; now?: () => number } = { maxKeys: 100_000 }) {
    if (!Number.isSafeInteger(options.maxKeys) || options.maxKeys < 1)
      throw new RangeError('maxKeys must be >= 1');
  }

  get size(): number {
    return this.windows.size;
  }

  async consume(key: string, rule: RateLimitRule): Promise<RateLimitDecision> {
    const now = (this.options.now ?? Date.now)();
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      if (window) this.windows.delete(key);
      this.makeRoom(now);
      window = { count: 0, resetAt: now + rule.windowMs };
      this.windows.set(key, window);
    }
    window.count += 1;
    return {
      allowed: window.count <= rule.limit,
      remaining: Math.max(0, rule.limit - window.count),
      resetMs: window.resetAt - now,
    };
  }

  private makeRoom(now: number): void {
    if (this.windows.size < this.options.maxKeys) return;
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
    while (this.windows.size >= this.options.maxKeys) {
      const oldest = this.windows.keys().next().value as string;
      this.windows.delete(oldest);
    }
  }
}
