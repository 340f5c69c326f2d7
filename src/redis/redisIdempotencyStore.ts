import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BeginResult, IdempotencyStore, StoredResponse } from '../api/idempotency.js';

/**
 * Idempotency records in Redis: SET NX PX claims a key (the in-flight lock expires by itself if its
 * process dies), the final response replaces it with the retention TTL. complete/release only act
 * when the caller still holds the claim (token check in Lua), so a late process cannot overwrite a
 * newer claim.
 */
interface Record_ {
  s: 'in_flight' | 'completed';
  f: string;
  t: string;
  r?: StoredResponse;
}

// One round trip: the claim's own record (its fingerprint) becomes the completed one, with the response.
const COMPLETE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local rec = cjson.decode(v)
if rec.t ~= ARGV[1] then return 0 end
rec.s = 'completed'
rec.r = cjson.decode(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(rec), 'PX', ARGV[3])
return 1`;

const RELEASE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local rec = cjson.decode(v)
if rec.t ~= ARGV[1] or rec.s ~= 'in_flight' then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

type Script = (key: string, ...args: Array<string | number>) => Promise<number>;

export class RedisIdempotencyStore implements IdempotencyStore {
  readonly kind = 'redis' as const;
  private readonly completeScript: Script;
  private readonly releaseScript: Script;

  constructor(
    private readonly redis: Redis,
    private readonly options: { keyPrefix: string } = { keyPrefix: 'idem:' },
  ) {
    redis.defineCommand('ledgerIdemComplete', { numberOfKeys: 1, lua: COMPLETE });
    redis.defineCommand('ledgerIdemRelease', { numberOfKeys: 1, lua: RELEASE });
    const commands = redis as unknown as Record<string, Script>;
    this.completeScript = commands.ledgerIdemComplete!.bind(redis);
    this.releaseScript = commands.ledgerIdemRelease!.bind(redis);
  }

  private key(scope: string): string {
    return `${this.options.keyPrefix}${scope}`;
  }

  async begin(scope: string, fingerprint: string, options: { lockTtlMs: number }): Promise<BeginResult> {
    const token = randomUUID();
    const claim: Record_ = { s: 'in_flight', f: fingerprint, t: token };
    const key = this.key(scope);
    const set = await this.redis.set(key, JSON.stringify(claim), 'PX', options.lockTtlMs, 'NX');
    if (set === 'OK') return { kind: 'acquired', token };
    const raw = await this.redis.get(key);
    // Expired between SET and GET: try again (bounded by how rarely that happens: once more).
    if (raw === null) {
      const retry = await this.redis.set(key, JSON.stringify(claim), 'PX', options.lockTtlMs, 'NX');
      if (retry === 'OK') return { kind: 'acquired', token };
      return { kind: 'in_flight', fingerprint };
    }
    const record = JSON.parse(raw) as Record_;
    if (record.s === 'completed' && record.r) {
      return { kind: 'completed', fingerprint: record.f, response: record.r };
    }
    return { kind: 'in_flight', fingerprint: record.f };
  }

  async complete(
    scope: string,
    token: string,
    response: StoredResponse,
    options: { retentionMs: number },
  ): Promise<void> {
    await this.completeScript(this.key(scope), token, JSON.stringify(response), options.retentionMs);
  }

  async release(scope: string, token: string): Promise<void> {
    await this.releaseScript(this.key(scope), token);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }
}
