import { ConfigError, loadConfig } from './config/config.js';
import { createLogger } from './log/logger.js';
import { StartupError, startServer } from './server.js';

/**
 * Process entry: configuration errors and unreachable dependencies print one line and exit non-zero;
 * SIGTERM/SIGINT drain requests and stop subscriptions before exiting 0.
 */
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
  const logger = createLogger(config.logLevel);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config, logger);
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
  process.stdout.write(
    `\nWeMaster Ledger listening on ${server.url}  (API docs: ${server.url}/docs)\n` +
      `Get a token:  npm run cli -- token --tenant acme --sub s1 --role student\n` +
      (config.jwtSecretGenerated ? `(development JWT secret kept in ${config.dataDir}/jwt-secret)\n` : '') +
      '\n',
  );

  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    server.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
