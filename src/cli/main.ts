import { parseArgs } from 'node:util';
import { createLedgerService } from '../commands/index.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { rebuildDocuments } from '../documents/rebuild.js';
import { DocumentStore } from '../documents/store.js';
import { TENANT_ID_PATTERN } from '../domain/ids.js';
import {
  checkFileCommand,
  EXPORT_USAGE,
  exportCommand,
  IMPORT_USAGE,
  importCommand,
  parseExportArgs,
  parseImportArgs,
} from './backupCommands.js';
import { parseAnchors, VERIFY_CHAIN_USAGE, verifyChainCommand } from './chainCommand.js';
import { migrateCommand } from './migrateCommand.js';
import {
  type ProjectionsCommandDeps,
  rebuild,
  replay,
  resume,
  stalled,
  verify,
} from './projectionsCommands.js';
import { parseReconcileArgs, RECONCILE_USAGE, reconcile, stripeFromConfig } from './reconcileCommand.js';
import { CliRefusal, openCliDatabase, withCliStores } from './stores.js';
import { printToken } from './tokenCommand.js';

/**
 * `npm run cli -- <command>`: operational commands sharing the app's configuration (same environment
 * variables, same embedded default).
 */
const USAGE = `usage: npm run cli -- <command> [options]
  migrate [--down [--delete-all-events]]
                                        apply pending migrations (or roll all back; refused while events are stored
                                        unless --delete-all-events)
  projections rebuild [name]            replay all events into fresh read models and swap them in
  projections stalled                   list tenants whose read models stopped at an event they cannot apply
  projections resume <tenant>|--all     after a fix: apply a stalled tenant's held-back events and clear the stall
  verify [--max-differences N] [--clearing-max-age-hours H] [--max-behind-positions N]
                                        fold the events and compare with the read models; exit 1 on any difference,
                                        a stalled tenant, or read models more than N (1000) behind the store's head
  ${VERIFY_CHAIN_USAGE}
                                        recompute every tenant's hash chain from the events; exit 1 naming the first
                                        event changed, removed, reordered or inserted (or an anchor that does not match)
  ${RECONCILE_USAGE}
                                        match Stripe balance transactions against the ledger
  documents rebuild [--check]           compare the documents table with the docseries streams (each document as
                                        numbered, its PDF rendered again) and write what is missing or differs;
                                        --check writes nothing and exits 1 on any difference
  replay --tenant T --account PATH [--until TIME|POSITION] [--format table|json]
                                        an account's history entry by entry with running balance, cause and actor
  token --tenant T --sub S --role R [--role R2] [--ttl seconds]
                                        print a development JWT signed with JWT_SECRET (or ./data's)
  ${EXPORT_USAGE}
                                        write the event log (or one tenant's events) to an NDJSON file with a checksum
  ${IMPORT_USAGE}
                                        load an export into an empty event store (--dry-run: only check the file)
`;

type Command = (argv: string[]) => Promise<number>;

/**
 * Opens the configured database (migrated) and event store for one command and closes them after. On
 * the embedded default the command holds the DATA_DIR lock meanwhile (stores.ts): beside a running
 * app it refuses with one line naming it.
 */
async function withStores(
  command: string,
  fn: (deps: Omit<ProjectionsCommandDeps, 'tenantId'>) => Promise<number>,
): Promise<number> {
  return withCliStores(loadConfig(), command, ({ db, store }) => fn({ db, store, out: process.stdout }));
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
    return withStores('reconcile', ({ db, store }) =>
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
    if (sub === 'stalled' && name === undefined)
      return withStores('projections stalled', (deps) => stalled(deps));
    if (sub === 'resume' && name !== undefined && extra.length === 0) {
      if (name !== '--all' && !TENANT_ID_PATTERN.test(name)) {
        process.stderr.write(`projections resume: "${name}" is not a tenant id\n`);
        return 2;
      }
      const target = name === '--all' ? ({ all: true } as const) : { tenantId: name };
      return withStores(`projections resume ${name}`, (deps) => resume(deps, target));
    }
    if (sub !== 'rebuild' || extra.length > 0) {
      process.stderr.write(
        'usage: projections rebuild [name] | projections stalled | projections resume <tenant>|--all\n',
      );
      return 2;
    }
    return withStores(`projections rebuild${name ? ` ${name}` : ''}`, (deps) => rebuild(deps, name));
  },
  verify: async (argv) => {
    const { values } = parseArgs({
      args: argv,
      options: {
        'max-differences': { type: 'string', default: '20' },
        'clearing-max-age-hours': { type: 'string' },
        'max-behind-positions': { type: 'string', default: '1000' },
        chain: { type: 'boolean', default: false },
        anchor: { type: 'string', multiple: true },
        format: { type: 'string', default: 'text' },
      },
    });
    if (values.chain) {
      const anchors = parseAnchors(values.anchor ?? []);
      if ('error' in anchors || (values.format !== 'text' && values.format !== 'json')) {
        process.stderr.write(
          `${'error' in anchors ? anchors.error : '--format is text or json'}\nusage: ${VERIFY_CHAIN_USAGE}\n`,
        );
        return 2;
      }
      const format = values.format;
      return withStores('verify --chain', (deps) => verifyChainCommand(deps, { anchors, format }));
    }
    if (values.anchor !== undefined || values.format !== 'text') {
      process.stderr.write('--anchor and --format go with --chain\n');
      return 2;
    }
    const maxDifferences = Number(values['max-differences']);
    const clearing = values['clearing-max-age-hours'];
    const clearingMaxAgeHours = clearing === undefined ? undefined : Number(clearing);
    const maxBehindPositions = Number(values['max-behind-positions']);
    if (!Number.isSafeInteger(maxBehindPositions) || maxBehindPositions < 0) {
      process.stderr.write('--max-behind-positions must be an integer >= 0\n');
      return 2;
    }
    if (!Number.isSafeInteger(maxDifferences) || maxDifferences < 1 || maxDifferences > 10_000) {
      process.stderr.write('--max-differences must be an integer in 1..10000\n');
      return 2;
    }
    if (clearingMaxAgeHours !== undefined && !(clearingMaxAgeHours >= 0 && clearingMaxAgeHours <= 24 * 365)) {
      process.stderr.write('--clearing-max-age-hours must be a number of hours in 0..8760\n');
      return 2;
    }
    return withStores('verify', (deps) =>
      verify(deps, {
        maxDifferences,
        maxBehindPositions,
        ...(clearingMaxAgeHours !== undefined ? { clearingMaxAgeHours } : {}),
      }),
    );
  },
  documents: async (argv) => {
    const { positionals, values } = parseArgs({
      args: argv,
      options: { check: { type: 'boolean', default: false } },
      allowPositionals: true,
    });
    if (positionals.length !== 1 || positionals[0] !== 'rebuild') {
      process.stderr.write('usage: documents rebuild [--check]\n');
      return 2;
    }
    const repair = !values.check;
    return withStores('documents', async ({ db, store, out }) => {
      const report = await rebuildDocuments({ db, store, documents: new DocumentStore(db), repair });
      const differences = report.missing + report.differing + report.orphans;
      out.write(
        `${report.issued} documents issued: ${report.unchanged} stored as issued, ${report.missing} missing, ${report.differing} differing, ${report.orphans} stored without an issue event${repair && differences > 0 ? ' (repaired)' : ''}\n`,
      );
      return !repair && differences > 0 ? 1 : 0;
    });
  },
  export: async (argv) => {
    const args = parseExportArgs(argv);
    if ('error' in args) {
      process.stderr.write(`${args.error}\n`);
      return 2;
    }
    return withCliStores(loadConfig(), 'export', ({ db, store }) =>
      exportCommand({ db, store, stdout: process.stdout, stderr: process.stderr }, args),
    );
  },
  import: async (argv) => {
    const args = parseImportArgs(argv);
    if ('error' in args) {
      process.stderr.write(`${args.error}\n`);
      return 2;
    }
    if (args.dryRun) return checkFileCommand({ stdout: process.stdout, stderr: process.stderr }, args.file);
    return withCliStores(loadConfig(), 'import', ({ db, store }) =>
      importCommand({ db, store, stdout: process.stdout, stderr: process.stderr }, args),
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
    return withStores('replay', (deps) =>
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
    const config = loadConfig();
    const ttlSeconds = Number(values.ttl);
    const maxTtl = config.jwtMaxLifetimeSeconds;
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > maxTtl) {
      process.stderr.write(
        `--ttl must be an integer number of seconds in 1..${maxTtl} (JWT_MAX_LIFETIME_SECONDS)\n`,
      );
      return 2;
    }
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
    const { values } = parseArgs({
      args: argv,
      options: {
        down: { type: 'boolean', default: false },
        'delete-all-events': { type: 'boolean', default: false },
      },
    });
    const config = loadConfig();
    const opened = await openCliDatabase(config, values.down ? 'migrate --down' : 'migrate', { poolMax: 2 });
    try {
      return await migrateCommand(
        {
          db: opened.db,
          ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
          stdout: process.stdout,
          stderr: process.stderr,
        },
        { down: values.down, deleteAllEvents: values['delete-all-events'] },
      );
    } finally {
      await opened.close();
    }
  },
};

// A signal ends a command at once; the exit handlers still run, so the DATA_DIR lock is released (an
// interrupted rebuild resumes, an interrupted import can be resumed or started over).
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

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
    else if (error instanceof CliRefusal) process.stderr.write(`${error.message}\n`);
    else process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
