import { parseArgs } from 'node:util';
import { createLedgerService } from '../commands/index.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { openDatabase } from '../db/database.js';
import { migrateDownAll, migrateLatest } from '../db/migrate.js';
import { EsdbEventStore } from '../eventstore/esdb.js';
import type { EventStore } from '../eventstore/port.js';
import { PostgresEventStore } from '../eventstore/postgres.js';
import { type ProjectionsCommandDeps, rebuild, replay, verify } from './projectionsCommands.js';
import { parseReconcileArgs, RECONCILE_USAGE, reconcile, stripeFromConfig } from './reconcileCommand.js';
import { printToken } from './tokenCommand.js';

/**
 * `npm run cli -- <command>`: operational commands sharing the app's configuration (same environment
 * variables, same embedded default).
 */
const USAGE = `usage: npm run cli -- <command> [options]
  migrate [--down]                      apply pending migrations (or roll all back with --down)
  projections rebuild [name]            replay all events into fresh read models and swap them in
  verify [--max-differences N] [--clearing-max-age-hours H]
                                        fold the events and compare with the read models; exit 1 on any difference
  ${RECONCILE_USAGE}
                                        match Stripe balance transactions against the ledger
  replay --tenant T --account PATH [--until TIME|POSITION] [--format table|json]
                                        an account's history entry by entry with running balance, cause and actor
  token --tenant T --sub S --role R [--role R2] [--ttl seconds]
                                        print a development JWT signed with JWT_SECRET (or ./data's)
`;

type Command = (argv: string[]) => Promise<number>;

/**
 * Opens the configured database (migrated) and event store for one command and closes them after.
 * On the embedded default PGlite is single-process: stop `npm start` before running these.
 */
async function withStores(
  fn: (deps: Omit<ProjectionsCommandDeps, 'tenantId'>) => Promise<number>,
): Promise<number> {
  const config = loadConfig();
  const db = await openDatabase(
    config.databaseUrl
      ? { kind: 'postgres', url: config.databaseUrl, poolMax: 4 }
      : { kind: 'pglite', dataDir: `${config.dataDir}/pglite` },
  );
  let store: EventStore | undefined;
  try {
    await migrateLatest(db, { databaseUrl: config.databaseUrl ?? undefined });
    store =
      config.eventStore === 'esdb'
        ? new EsdbEventStore({ connectionString: config.eventStoreUrl! })
        : new PostgresEventStore(db);
    return await fn({ db, store, out: process.stdout });
  } finally {
    await store?.close();
    await db.close();
  }
}

const commands: Record<string, Command> = {
  reconcile: async (argv) => {
    const args = parseReconcileArgs(argv);
    if ('error' in args) {
      process.stderr.write(`${args.error}\n${RECONCILE_USAGE}\n`);
      return 2;
    }
    const stripe = stripeFromConfig(loadConfig());
    if ('error' in stripe) {
      process.stderr.write(`${stripe.error}\n`);
      return 2;
    }
    return withStores(({ db, store }) =>
      reconcile(
        {
          db,
          store,
          stripe,
          commands: createLedgerService({ store, clock: () => new Date() }),
          stdout: process.stdout,
          stderr: process.stderr,
        },
        args,
      ),
    );
  },
  projections: async (argv) => {
    const [sub, name, ...extra] = argv;
    if (sub !== 'rebuild' || extra.length > 0) {
      process.stderr.write('usage: projections rebuild [name]\n');
      return 2;
    }
    return withStores((deps) => rebuild(deps, name));
  },
  verify: async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        'max-differences': { type: 'string', default: '20' },
        'clearing-max-age-hours': { type: 'string' },
      },
    });
    const maxDifferences = Number(values['max-differences']);
    const clearing = values['clearing-max-age-hours'];
    const clearingMaxAgeHours = clearing === undefined ? undefined : Number(clearing);
    if (!Number.isSafeInteger(maxDifferences) || maxDifferences < 1 || maxDifferences > 10_000) {
      process.stderr.write('--max-differences must be an integer in 1..10000\n');
      return 2;
    }
    if (clearingMaxAgeHours !== undefined && !(clearingMaxAgeHours >= 0 && clearingMaxAgeHours <= 24 * 365)) {
      process.stderr.write('--clearing-max-age-hours must be a number of hours in 0..8760\n');
      return 2;
    }
    return withStores((deps) =>
      verify(deps, { maxDifferences, ...(clearingMaxAgeHours !== undefined ? { clearingMaxAgeHours } : {}) }),
    );
  },
  replay: async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        tenant: { type: 'string' },
        account: { type: 'string' },
        until: { type: 'string' },
        format: { type: 'string', default: 'table' },
      },
    });
    if (!values.account || (values.format !== 'table' && values.format !== 'json')) {
      process.stderr.write(
        'usage: replay --tenant T --account PATH [--until TIME|POSITION] [--format table|json]\n',
      );
      return 2;
    }
    const { account, until, format, tenant } = values;
    return withStores((deps) =>
      replay(
        { ...deps, ...(tenant ? { tenantId: tenant } : {}) },
        { account, format, ...(until ? { until } : {}) },
      ),
    );
  },
  token: async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        tenant: { type: 'string' },
        sub: { type: 'string' },
        role: { type: 'string', multiple: true },
        ttl: { type: 'string', default: '3600' },
      },
    });
    if (!values.tenant || !values.sub || !values.role?.length) {
      process.stderr.write('token needs --tenant, --sub and at least one --role\n');
      return 2;
    }
    const ttlSeconds = Number(values.ttl);
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 30 * 24 * 3600) {
      process.stderr.write('--ttl must be an integer number of seconds in 1..2592000\n');
      return 2;
    }
    const config = loadConfig();
    await printToken({
      tenant: values.tenant,
      sub: values.sub,
      roles: values.role,
      secret: config.jwtSecret,
      ttlSeconds,
    });
    return 0;
  },
  migrate: async (argv) => {
    const { values } = parseArgs({ args: argv, options: { down: { type: 'boolean', default: false } } });
    const config = loadConfig();
    const db = await openDatabase(
      config.databaseUrl
        ? { kind: 'postgres', url: config.databaseUrl, poolMax: 2 }
        : { kind: 'pglite', dataDir: `${config.dataDir}/pglite` },
    );
    try {
      if (values.down) {
        await migrateDownAll(db, { databaseUrl: config.databaseUrl ?? undefined });
        process.stdout.write('rolled back all migrations\n');
      } else {
        const applied = await migrateLatest(db, { databaseUrl: config.databaseUrl ?? undefined });
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'already up to date\n');
      }
      return 0;
    } finally {
      await db.close();
    }
  },
};

async function main(): Promise<number> {
  const [name, ...rest] = process.argv.slice(2);
  const command = name ? commands[name] : undefined;
  if (!command) {
    process.stderr.write(USAGE);
    return name ? 2 : 0;
  }
  return command(rest);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) process.stderr.write(`configuration error: ${error.message}\n`);
    else process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
