import { Redis, type RedisOptions } from 'ioredis';

/**
 * ioredis client with explicit bounds: connect and command timeouts, a bounded number of retries per
 * command, bounded reconnect backoff, and lazyConnect so construction never blocks or throws.
 */
export interface RedisClientOptions {
  url: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  maxRetriesPerRequest?: number;
  maxReconnectDelayMs?: number;
  keyPrefix?: string;
  /** Batch the commands of one tick into one write (default true). */
  autoPipelining?: boolean;
  /**
   * Connection-level errors (the client reconnects by itself; commands fail individually). Without a
   * listener ioredis reports them as unhandled error events.
   */
  onError?: (error: Error) => void;
}

export function createRedisClient(options: RedisClientOptions): Redis {
  const maxReconnectDelayMs = options.maxReconnectDelayMs ?? 2_000;
  const redisOptions: RedisOptions = {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    commandTimeout: options.commandTimeoutMs ?? 1_000,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 2,
    // Commands issued while disconnected fail fast (after the retries above) instead of queueing forever.
    enableOfflineQueue: true,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), maxReconnectDelayMs),
    // Commands issued in the same event-loop tick (concurrent requests' rate-limit and idempotency
    // calls) go out in one write: on loopback a socket write costs more than the command itself.
    // Each command still gets its own reply and error; ordering per connection is unchanged.
    enableAutoPipelining: options.autoPipelining ?? true,
  };
  if (options.keyPrefix) redisOptions.keyPrefix = options.keyPrefix;
  const client = new Redis(options.url, redisOptions);
  client.on('error', options.onError ?? (() => undefined));
  return client;
}

/** Readiness check: connects if needed and PINGs, bounded by timeoutMs. */
export function redisReadiness(client: Redis, timeoutMs = 1_000): { name: string; check(): Promise<void> } {
  return {
    name: 'redis',
    async check() {
      if (client.status === 'wait') await client.connect();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          client.ping(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`redis ping timed out after ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
