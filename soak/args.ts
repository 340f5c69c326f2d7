/** Command-line options of `npm run soak`, parsed and bounded here so the rest of the harness can trust them. */
export type Stack = 'postgres' | 'embedded';

export interface SoakOptions {
  /** Duration of the workload phase (setup and final checks come on top). */
  workloadMs: number;
  clients: number;
  stack: Stack;
  ci: boolean;
  seed: number;
  /** App processes sharing one database (postgres stack only; PGlite is single-process). */
  apps: number;
  /** Keep the temp dir (logs, data) even when the run passes. */
  keep: boolean;
}

export class ArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArgsError';
  }
}

export const USAGE = `usage: npm run soak -- [--minutes N] [--clients C] [--stack postgres|embedded] [--ci] [--seed S] [--apps 1|2] [--keep]
  --minutes N   workload duration in minutes (0.1..240, decimals allowed; default 2, --ci: 1)
  --clients C   concurrent HTTP clients (1..64; default 8, --ci: 4)
  --stack       postgres (private PostgreSQL + Redis, the default) or embedded (PGlite, no Redis)
  --ci          short run sized for 2 cores (about two minutes in total)
  --seed S      integer seed for the clients' choices (default: random, printed)
  --apps N      app processes on the same database (postgres: 1..2, default 2; embedded: always 1)
  --keep        keep the temp dir with logs and data even when the run passes`;

const MINUTES_MIN = 0.1;
const MINUTES_MAX = 240;
const CLIENTS_MAX = 64;

export function parseArgs(argv: readonly string[], randomSeed: () => number): SoakOptions | 'help' {
  const seen = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return 'help';
    if (!arg.startsWith('--')) throw new ArgsError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (seen.has(name)) throw new ArgsError(`--${name} given twice`);
    if (name === 'ci' || name === 'keep') {
      if (eq !== -1) throw new ArgsError(`--${name} takes no value`);
      seen.set(name, true);
      continue;
    }
    if (!['minutes', 'clients', 'stack', 'seed', 'apps'].includes(name)) {
      throw new ArgsError(`unknown option --${name}`);
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '' || (eq === -1 && value.startsWith('--'))) {
      throw new ArgsError(`--${name} needs a value`);
    }
    seen.set(name, value);
  }
  const ci = seen.get('ci') === true;
  const stackValue = seen.get('stack') ?? 'postgres';
  if (stackValue !== 'postgres' && stackValue !== 'embedded') {
    throw new ArgsError(`--stack must be postgres or embedded, got ${JSON.stringify(stackValue)}`);
  }
  const stack: Stack = stackValue;
  const minutes = number(seen.get('minutes'), 'minutes', ci ? 1 : 2, MINUTES_MIN, MINUTES_MAX, false);
  const clients = number(seen.get('clients'), 'clients', ci ? 4 : 8, 1, CLIENTS_MAX, true);
  const seed = number(seen.get('seed'), 'seed', randomSeed(), 0, 2 ** 32 - 1, true);
  const appsMax = stack === 'embedded' ? 1 : 2;
  const apps = number(seen.get('apps'), 'apps', appsMax, 1, appsMax, true);
  return {
    workloadMs: Math.round(minutes * 60_000),
    clients,
    stack,
    ci,
    seed,
    apps,
    keep: seen.get('keep') === true,
  };
}

function number(
  raw: string | true | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
  integer: boolean,
): number {
  if (raw === undefined) return fallback;
  const pattern = integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
  if (raw === true || !pattern.test(raw)) {
    throw new ArgsError(
      `--${name} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`,
    );
  }
  const value = Number(raw);
  if (value < min || value > max) throw new ArgsError(`--${name} must be in ${min}..${max}, got ${raw}`);
  return value;
}
