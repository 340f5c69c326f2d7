import { signToken } from './api/auth.js';
import { ConfigError, loadConfig } from './config/config.js';
import { type Lifecycle, superviseProcess } from './lifecycle.js';
import { createLogger, stdoutDestination } from './log/logger.js';
import { type RunningServer, StartupError, startServer } from './server.js';

/**
 * Process entry: configuration errors and unreachable dependencies print one line and exit non-zero;
 * SIGTERM/SIGINT/SIGHUP, a vanished npm parent or a lost output pipe stop it within
 * SHUTDOWN_TIMEOUT_MS (lifecycle.ts).
 */
const DEV_TENANT = 'acme';
const DEV_FINANCE_ADMIN = 'fin_dev';
const DEV_TOKEN_TTL_SECONDS = 12 * 3600;

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  let lifecycle: Lifecycle | undefined;
  const logger = createLogger(
    config.logLevel,
    {},
    stdoutDestination((error) => lifecycle?.onOutputError(error)),
  );
  let server: RunningServer | undefined;
  let starting: Promise<unknown> = Promise.resolve();
  lifecycle = superviseProcess({
    logger,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    // A stop during start lets the start finish first (within the bound): a database half-opened by a
    // process that exits mid-way is what a crash leaves, and need not be risked on an ordinary stop.
    stop: async () => {
      await starting.catch(() => undefined);
      await server?.stop();
    },
    // Started by an npm script (npm sets npm_lifecycle_event): npm going away means the operator
    // stopped it, even when npm had no chance to forward a signal (kill -9).
    watchParent: process.env.npm_lifecycle_event !== undefined,
  });
  try {
    const start = startServer(config, logger, { onFatal: (reason) => lifecycle?.shutdown(reason, 1) });
    starting = start;
    server = await start;
  } catch (error) {
    if (error instanceof StartupError) {
      process.stderr.write(`cannot start: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const embedded = config.databaseUrl === null;
  logger.info(
    {
      url: server.url,
      eventStore: config.eventStore,
      database: embedded ? `pglite:${config.dataDir}/pglite` : 'postgres',
      redis: config.redisUrl ? 'configured' : 'none (in-process)',
      stripe: config.stripe.mode === 'fake' ? 'in-process fake' : 'remote',
    },
    'listening',
  );
  // On the embedded default (a developer's machine) the banner carries a ready sign-in link for a
  // development finance admin: the token rides in the URL fragment, which the browser never sends.
  const consoleLink = embedded
    ? `${server.url}/console#token=${await signToken({
        tenant: DEV_TENANT,
        sub: DEV_FINANCE_ADMIN,
        roles: ['finance_admin'],
        secret: config.jwtSecret,
        ttlSeconds: DEV_TOKEN_TTL_SECONDS,
      })}`
    : `${server.url}/console`;
  process.stdout.write(
    `\nWeMaster Ledger listening on ${server.url}  (API docs: ${server.url}/docs)\n` +
      `Finance console: ${consoleLink}\n` +
      (embedded
        ? `  (signed in as development finance admin ${DEV_FINANCE_ADMIN} of tenant ${DEV_TENANT} for 12 hours)\n`
        : '') +
      `Get a token:  npm run cli -- token --tenant acme --sub s1 --role student\n` +
      (config.jwtSecretGenerated ? `(development JWT secret kept in ${config.dataDir}/jwt-secret)\n` : '') +
      '\n',
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
