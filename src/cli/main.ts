import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/config.js';
import { openDatabase } from '../db/database.js';
import { migrateDownAll, migrateLatest } from '../db/migrate.js';
import { printToken } from './tokenCommand.js';

/**
 * `npm run cli -- <command>`: operational commands sharing the app's configuration (same environment
 * variables, same embedded default).
 */
const USAGE = `usage: npm run cli -- <command> [options]
  migrate [--down]                      apply pending migrations (or roll all back with --down)
  token --tenant T --sub S --role R [--role R2] [--ttl seconds]
                                        print a development JWT signed with JWT_SECRET (or ./data's)
`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, Command> = {
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
