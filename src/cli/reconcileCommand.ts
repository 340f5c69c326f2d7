import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import type { LedgerCommands } from '../commands/ledgerCommands.js';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { isTenantId } from '../domain/ids.js';
import type { EventStore } from '../eventstore/port.js';
import { eventStoreFactSource } from '../reconciliation/ledgerFacts.js';
import { PostgresReconciliationReadModel } from '../reconciliation/readModel.js';
import { Reconciler } from '../reconciliation/reconciler.js';
import { reportCsv, reportJson } from '../reconciliation/report.js';
import type { StripeBalanceSource } from '../stripe/gateway.js';
import { StripeGateway } from '../stripe/stripeGateway.js';

/**
 * `npm run cli -- reconcile --tenant T (--from ISO --to ISO | --payout po_... [--account acct_...])
 *   [--format json|csv] [--out FILE] [--no-book-fees]`
 * Runs one reconciliation with a progress bar on stderr, records it (events + read model), and writes
 * the report to --out or stdout. Exit code: 0 all matched, 1 exceptions found, 2 bad usage.
 */
export const RECONCILE_USAGE = `reconcile --tenant T (--from ISO --to ISO | --payout po_... [--account acct_...]) [--format json|csv] [--out FILE] [--no-book-fees]`;

export interface ReconcileArgs {
  tenant: string;
  from?: string;
  to?: string;
  payout?: string;
  account?: string;
  format: 'json' | 'csv';
  /** File to write the report to; omitted: stdout. */
  out?: string;
  bookFees: boolean;
}

export interface ReconcileDeps {
  store: EventStore;
  stripe: StripeBalanceSource;
  /** Books unbooked fees when given (and bookFees). */
  commands?: LedgerCommands;
  db?: Database;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  clock?: () => Date;
}

/** Parses argv (after `reconcile`); returns a usage message instead of throwing. */
export function parseReconcileArgs(argv: string[]): ReconcileArgs | { error: string } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        tenant: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        payout: { type: 'string' },
        account: { type: 'string' },
        format: { type: 'string', default: 'json' },
        out: { type: 'string' },
        'no-book-fees': { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    return { error: `${(error as Error).message}\nusage: ${RECONCILE_USAGE}` };
  }
  const tenant = values.tenant;
  if (!isTenantId(tenant)) return { error: `--tenant is required\nusage: ${RECONCILE_USAGE}` };
  const format = values.format;
  if (format !== 'json' && format !== 'csv') return { error: '--format must be json or csv' };
  const range = typeof values.from === 'string' || typeof values.to === 'string';
  const payout = typeof values.payout === 'string';
  if (range === payout)
    return { error: `give either --from and --to, or --payout\nusage: ${RECONCILE_USAGE}` };
  if (
    range &&
    (Number.isNaN(Date.parse(String(values.from))) || Number.isNaN(Date.parse(String(values.to))))
  ) {
    return { error: '--from and --to must be ISO-8601 times' };
  }
  const args: ReconcileArgs = { tenant, format, bookFees: values['no-book-fees'] !== true };
  if (range) {
    args.from = String(values.from);
    args.to = String(values.to);
  } else {
    args.payout = String(values.payout);
    if (typeof values.account === 'string') args.account = values.account;
  }
  if (typeof values.out === 'string') args.out = values.out;
  return args;
}

/** The Stripe the CLI can reach: only a configured (remote) one; the embedded fake lives inside `npm start`. */
export function stripeFromConfig(config: Config): StripeGateway | { error: string } {
  if (config.stripe.mode !== 'remote') {
    return {
      error:
        'no Stripe reachable from the CLI: the embedded fake runs inside `npm start` (use POST /v1/reconciliation/runs there), or set STRIPE_SECRET_KEY (and STRIPE_API_BASE for an external fake)',
    };
  }
  const base = config.stripe.apiBase ? new URL(config.stripe.apiBase) : undefined;
  return new StripeGateway({
    apiKey: config.stripe.secretKey,
    ...(base
      ? {
          host: base.hostname,
          port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)),
          protocol: base.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
}

export async function reconcile(deps: ReconcileDeps, args: ReconcileArgs): Promise<number> {
  const reconciler = new Reconciler({
    stripe: deps.stripe,
    ledger: () => eventStoreFactSource(deps.store),
    store: deps.store,
    ...(deps.db ? { readModel: new PostgresReconciliationReadModel(deps.db) } : {}),
    ...(deps.commands && args.bookFees ? { commands: deps.commands } : {}),
    clock: deps.clock ?? (() => new Date()),
    options: { autoBookFees: args.bookFees },
  });
  const bar = new cliProgress.SingleBar(
    {
      format: 'reconciling | {value} balance transactions | {matched} matched | {exceptions} exceptions',
      stream: deps.stderr,
      noTTYOutput: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(0, 0, { matched: 0, exceptions: 0 });
  try {
    const run = await reconciler.run({
      tenantId: args.tenant,
      scope:
        args.payout !== undefined
          ? { payout: args.payout, ...(args.account ? { connectedAccountId: args.account } : {}) }
          : { from: new Date(args.from as string), to: new Date(args.to as string) },
      actor: { id: 'cli', role: 'finance_admin' },
      onProgress: (p) => {
        bar.setTotal(p.scanned);
        bar.update(p.scanned, { matched: p.matched, exceptions: p.exceptions });
      },
    });
    const s = run.summary;
    bar.setTotal(s?.scanned ?? 0);
    bar.update(s?.scanned ?? 0, {
      matched: s?.matched ?? 0,
      exceptions: (s?.scanned ?? 0) - (s?.matched ?? 0),
    });
    bar.stop();
    const report = args.format === 'csv' ? reportCsv(run) : reportJson(run);
    if (args.out) writeFileSync(args.out, report);
    else deps.stdout.write(report);
    const exceptions =
      (s?.missingInLedger ?? 0) +
      (s?.missingInStripe ?? 0) +
      (s?.amountMismatch ?? 0) +
      (s?.unbookedFee ?? 0);
    deps.stderr.write(
      `run ${run.runId}: ${s?.scanned ?? 0} scanned, ${s?.matched ?? 0} matched, ${exceptions} exceptions, ${s?.feesBooked ?? 0} fees booked${args.out ? `, report in ${args.out}` : ''}\n`,
    );
    return exceptions === 0 ? 0 : 1;
  } catch (error) {
    bar.stop();
    throw error;
  }
}
