import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllowedNetworks } from '../webhooks/addressPolicy.js';

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
  /** Longest lifetime (`exp - iat`) of a token the API accepts. */
  jwtMaxLifetimeSeconds: number;
  /** Clock skew allowed between the token issuer and this process (`iat`, `nbf`, `exp`). */
  jwtClockSkewSeconds: number;
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
  /** Requests per caller (tenant + subject) per minute: any request, and money-moving ones. */
  rateLimitPerMinute: { default: number; money: number };
  webhooks: WebhooksConfig;
}

/** Outbound webhooks (docs/webhooks.md, "Operating"). */
export interface WebhooksConfig {
  /**
   * Key the endpoints' signing secrets are derived from (WEBHOOK_SECRET_KEY; generated under DATA_DIR on
   * the embedded default). null: webhook endpoints cannot be registered (the routes say so).
   */
  secretKey: string | null;
  /** Special-purpose addresses (private, loopback...) webhooks may go to anyway: IPs or CIDR ranges. */
  allowedNetworks: string[];
  /** Bound on one delivery attempt. */
  timeoutMs: number;
  /** How long a failing delivery is retried before it is given up (and its endpoint disabled). */
  retryWindowMs: number;
  /** Delivery log retention. */
  retentionDays: number;
}

/**
 * Stripe signs the events of the platform account and those of connected accounts (tutors' Express
 * accounts: `account.updated`, their payouts) for two endpoints, each with its own secret.
 */
export type StripeConfig =
  /** The in-process fake Stripe server (embedded default and tests). */
  | { mode: 'fake'; webhookSecret: string; connectWebhookSecret: string }
  /** A Stripe API at apiBase (real Stripe: https://api.stripe.com, or an external fake). */
  | {
      mode: 'remote';
      secretKey: string;
      webhookSecret: string;
      connectWebhookSecret: string;
      apiBase: string | null;
    };

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
    const webhookSecret = webhookSecretOf(env, 'STRIPE_WEBHOOK_SECRET', 'the platform endpoint');
    const connectWebhookSecret = webhookSecretOf(
      env,
      'STRIPE_CONNECT_WEBHOOK_SECRET',
      'the Connect endpoint',
    );
    if (connectWebhookSecret === webhookSecret) {
      throw new ConfigError(
        'STRIPE_CONNECT_WEBHOOK_SECRET',
        'must differ from STRIPE_WEBHOOK_SECRET: Stripe gives each endpoint its own signing secret',
      );
    }
    stripe = {
      mode: 'remote',
      secretKey: stripeKey,
      webhookSecret,
      connectWebhookSecret,
      apiBase: url(env, 'STRIPE_API_BASE', ['http:', 'https:']),
    };
  } else {
    // The in-process fake signs with secrets generated once under DATA_DIR (or given, e.g. by tests).
    stripe = {
      mode: 'fake',
      webhookSecret:
        nonEmpty(env, 'STRIPE_WEBHOOK_SECRET') ??
        `whsec_${persistedSecret(dataDir, 'stripe-webhook-secret')}`,
      connectWebhookSecret:
        nonEmpty(env, 'STRIPE_CONNECT_WEBHOOK_SECRET') ??
        `whsec_${persistedSecret(dataDir, 'stripe-connect-webhook-secret')}`,
    };
  }

  return {
    eventStore,
    eventStoreUrl,
    databaseUrl,
    redisUrl,
    jwtSecret,
    jwtSecretGenerated,
    jwtMaxLifetimeSeconds: integer(env, 'JWT_MAX_LIFETIME_SECONDS', 24 * 3_600, 60, 30 * 24 * 3_600),
    jwtClockSkewSeconds: integer(env, 'JWT_CLOCK_SKEW_SECONDS', 60, 0, 3_600),
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
    rateLimitPerMinute: {
      default: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
      money: integer(env, 'RATE_LIMIT_MONEY_PER_MINUTE', 120, 1, 1_000_000),
    },
    webhooks: webhooksConfig(env, dataDir, embedded),
  };
}

function webhooksConfig(env: Env, dataDir: string, embedded: boolean): WebhooksConfig {
  let secretKey = nonEmpty(env, 'WEBHOOK_SECRET_KEY') ?? null;
  if (secretKey !== null && Buffer.byteLength(secretKey) < 32) {
    throw new ConfigError('WEBHOOK_SECRET_KEY', 'must be at least 32 bytes');
  }
  // Only the embedded default generates one: a generated key lost with a container would silently
  // change every endpoint's secret, so a real deployment sets it (or has no webhooks).
  if (secretKey === null && embedded) secretKey = persistedSecret(dataDir, 'webhook-secret-key');
  let allowedNetworks: string[] = [];
  const networks = nonEmpty(env, 'WEBHOOK_ALLOWED_NETWORKS');
  if (networks !== undefined) {
    try {
      allowedNetworks = parseAllowedNetworks(networks);
    } catch (error) {
      throw new ConfigError('WEBHOOK_ALLOWED_NETWORKS', (error as Error).message);
    }
  }
  return {
    secretKey,
    allowedNetworks,
    timeoutMs: integer(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 30_000),
    retryWindowMs: integer(env, 'WEBHOOK_RETRY_WINDOW_HOURS', 72, 1, 24 * 30) * 3_600_000,
    retentionDays: integer(env, 'WEBHOOK_LOG_RETENTION_DAYS', 30, 1, 3_650),
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

function webhookSecretOf(env: Env, name: string, endpoint: string): string {
  const secret = nonEmpty(env, name);
  if (!secret?.startsWith('whsec_')) {
    throw new ConfigError(
      name,
      `required with STRIPE_SECRET_KEY (signing secret of ${endpoint}), must start with whsec_`,
    );
  }
  return secret;
}

/**
 * A random secret generated on first start and kept in dataDir, so tokens survive restarts. Created
 * exclusively: two processes starting at once (the app and `cli token`) end up with the same secret.
 */
function persistedSecret(dataDir: string, file: string): string {
  const target = path.join(dataDir, file);
  try {
    if (existsSync(target)) {
      const stored = readFileSync(target, 'utf8').trim();
      if (stored.length >= 32) return stored;
      throw new ConfigError('DATA_DIR', `${target} holds no usable secret (remove it to generate one)`);
    }
    mkdirSync(dataDir, { recursive: true });
    const secret = randomBytes(32).toString('base64url');
    // Written aside, then linked into place: a reader never sees a half-written file.
    const aside = `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(aside, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    try {
      linkSync(aside, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return persistedSecret(dataDir, file);
      throw error;
    } finally {
      rmSync(aside, { force: true });
    }
    return secret;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError('DATA_DIR', `${dataDir} is not usable: ${describeFsError(error)}`);
  }
}

/** `not a directory (ENOTDIR)` from a file system error, without the stack. */
export function describeFsError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const meaning: Record<string, string> = {
    ENOTDIR: 'a path component is not a directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    EISDIR: 'is a directory',
    EEXIST: 'exists and is not a directory',
  };
  return e?.code
    ? `${meaning[e.code] ?? e.message} (${e.code}${e.path ? ` at ${e.path}` : ''})`
    : String(error);
}
