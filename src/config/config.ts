import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Configuration from the environment, validated once at start. A bad value stops the app with one line
 * naming the variable and what is wrong (ConfigError). With nothing set the app runs on the embedded
 * default: PGlite under ./data for both the event store and the read models, no Redis, the in-process
 * fake Stripe, and a JWT secret generated once and kept under ./data.
 */
export interface Config {
  eventStore: 'postgres' | 'esdb';
  eventStoreUrl: string | null;
  /** null: embedded PGlite under dataDir. */
  databaseUrl: string | null;
  redisUrl: string | null;
  jwtSecret: string;
  /** True when the secret was generated and stored under dataDir (development only). */
  jwtSecretGenerated: boolean;
  host: string;
  port: number;
  dataDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  stripe: StripeConfig;
  /** Upper bound on request bodies. */
  bodyLimitBytes: number;
  /** Interval of the scheduler that expires holds and clears earnings. */
  schedulerIntervalMs: number;
  /** How long a shutdown may take to drain requests before connections are cut. */
  shutdownTimeoutMs: number;
  /** Size of the Postgres connection pool (real Postgres only). */
  databasePoolMax: number;
  /** Wallet balances kept in memory between projection changes (0: every read goes to the database). */
  balanceCacheEntries: number;
}

export type StripeConfig =
  /** The in-process fake Stripe server (embedded default and tests). */
  | { mode: 'fake'; webhookSecret: string }
  /** A Stripe API at apiBase (real Stripe: https://api.stripe.com, or an external fake). */
  | { mode: 'remote'; secretKey: string; webhookSecret: string; apiBase: string | null };

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const dataDir = path.resolve(cwd, nonEmpty(env, 'DATA_DIR') ?? 'data');
  const eventStore = oneOf(env, 'EVENT_STORE', ['postgres', 'esdb'] as const, 'postgres');
  const eventStoreUrl = url(env, 'EVENTSTORE_URL', ['esdb:', 'esdb+discover:']);
  if (eventStore === 'esdb' && !eventStoreUrl) {
    throw new ConfigError(
      'EVENTSTORE_URL',
      'required when EVENT_STORE=esdb (e.g. esdb://localhost:2113?tls=false)',
    );
  }
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  if (eventStore === 'esdb' && !databaseUrl) {
    // Read models still need a database; embedded PGlite works with esdb too, so this is allowed.
  }
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const embedded = databaseUrl === null;

  let jwtSecret = nonEmpty(env, 'JWT_SECRET');
  let jwtSecretGenerated = false;
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 bytes (HS256 key)');
  }
  if (jwtSecret === undefined) {
    if (!embedded) {
      throw new ConfigError(
        'JWT_SECRET',
        'required when DATABASE_URL is set (only the embedded default generates one)',
      );
    }
    jwtSecret = persistedSecret(dataDir, 'jwt-secret');
    jwtSecretGenerated = true;
  }

  const stripeKey = nonEmpty(env, 'STRIPE_SECRET_KEY');
  let stripe: StripeConfig;
  if (stripeKey) {
    if (!/^(sk|rk)_(test|live)_/.test(stripeKey)) {
      throw new ConfigError('STRIPE_SECRET_KEY', 'must start with sk_test_, sk_live_, rk_test_ or rk_live_');
    }
    const webhookSecret = nonEmpty(env, 'STRIPE_WEBHOOK_SECRET');
    if (!webhookSecret?.startsWith('whsec_')) {
      throw new ConfigError(
        'STRIPE_WEBHOOK_SECRET',
        'required with STRIPE_SECRET_KEY and must start with whsec_',
      );
    }
    stripe = {
      mode: 'remote',
      secretKey: stripeKey,
      webhookSecret,
      apiBase: url(env, 'STRIPE_API_BASE', ['http:', 'https:']),
    };
  } else {
    const webhookSecret =
      nonEmpty(env, 'STRIPE_WEBHOOK_SECRET') ?? `whsec_${randomBytes(24).toString('hex')}`;
    stripe = { mode: 'fake', webhookSecret };
  }

  return {
    eventStore,
    eventStoreUrl,
    databaseUrl,
    redisUrl,
    jwtSecret,
    jwtSecretGenerated,
    host: nonEmpty(env, 'HOST') ?? '127.0.0.1',
    port: integer(env, 'PORT', 3000, 0, 65_535),
    dataDir,
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    stripe,
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024),
    schedulerIntervalMs: integer(env, 'SCHEDULER_INTERVAL_MS', 60_000, 100, 24 * 3_600_000),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 100, 300_000),
    databasePoolMax: integer(env, 'DATABASE_POOL_MAX', 20, 1, 500),
    balanceCacheEntries: integer(env, 'BALANCE_CACHE_ENTRIES', 100_000, 0, 10_000_000),
  };
}

function nonEmpty(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = nonEmpty(env, name);
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = nonEmpty(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(name, `must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function url(env: Env, name: string, protocols: string[]): string | null {
  const value = nonEmpty(env, name);
  if (value === undefined) return null;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(
      name,
      `must use ${protocols.map((p) => `${p}//`).join(' or ')}, got ${parsed.protocol}//`,
    );
  }
  return value;
}

/** A random secret generated on first start and kept in dataDir, so tokens survive restarts. */
function persistedSecret(dataDir: string, file: string): string {
  const target = path.join(dataDir, file);
  if (existsSync(target)) {
    const stored = readFileSync(target, 'utf8').trim();
    if (stored.length >= 32) return stored;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(target, `${secret}\n`, { mode: 0o600 });
  return secret;
}
