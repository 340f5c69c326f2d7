import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { exportEvents } from '../backup/exportEvents.js';
import { ExportFormatError } from '../backup/format.js';
import { ImportRefusedError, importEvents } from '../backup/importEvents.js';
import { checkExport } from '../backup/readExport.js';
import type { Database } from '../db/database.js';
import type { EventStore } from '../eventstore/port.js';
import { ImportConflictError } from '../eventstore/postgresImport.js';

/**
 * `export --out FILE [--tenant T]` and `import --in FILE [--resume] [--dry-run]` (docs/operations.md,
 * "Backup and restore"). Progress goes to stderr, the result line to stdout. Exit code: 0 done,
 * 1 refused or failed (the file or the target store is not what the command needs), 2 bad usage.
 */
export const EXPORT_USAGE = 'export --out FILE [--tenant T]';
export const IMPORT_USAGE = 'import --in FILE [--resume] [--dry-run]';

/** Chain heads an export prints (every one is in the file's trailer). */
const MAX_PRINTED_HEADS = 100;

export interface BackupDeps {
  store: EventStore;
  db: Database;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

function progressBar(stderr: NodeJS.WritableStream, unit: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      stream: stderr,
      format: `{phase} [{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}`,
      noTTYOutput: true,
      notTTYSchedule: 2_000,
    },
    cliProgress.Presets.shades_classic,
  );
}

export function parseExportArgs(argv: string[]): { out: string; tenant?: string } | { error: string } {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { out: { type: 'string' }, tenant: { type: 'string' } },
    });
    if (!values.out) return { error: `usage: ${EXPORT_USAGE}` };
    return { out: values.out, ...(values.tenant ? { tenant: values.tenant } : {}) };
  } catch (error) {
    return { error: `${(error as Error).message}\nusage: ${EXPORT_USAGE}` };
  }
}

export function parseImportArgs(
  argv: string[],
): { file: string; resume: boolean; dryRun: boolean } | { error: string } {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        in: { type: 'string' },
        resume: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
      },
    });
    if (!values.in) return { error: `usage: ${IMPORT_USAGE}` };
    return { file: values.in, resume: values.resume, dryRun: values['dry-run'] };
  } catch (error) {
    return { error: `${(error as Error).message}\nusage: ${IMPORT_USAGE}` };
  }
}

export async function exportCommand(
  deps: BackupDeps,
  args: { out: string; tenant?: string },
): Promise<number> {
  const bar = progressBar(deps.stderr, 'positions');
  let started = false;
  try {
    const result = await exportEvents({
      store: deps.store,
      out: args.out,
      ...(args.tenant ? { tenant: args.tenant } : {}),
      onProgress: (p) => {
        const total = Math.max(1, Number(p.head) + 1);
        if (!started) bar.start(total, 0, { phase: 'exporting' });
        started = true;
        bar.update(Math.min(total, Number(p.position) + 1), { phase: 'exporting' });
      },
    });
    if (started) bar.stop();
    deps.stdout.write(
      `exported ${result.events} event(s)${args.tenant ? ` of tenant ${args.tenant}` : ''} up to position ${result.head} ` +
        `to ${result.out} (sha256 ${result.sha256})\n`,
    );
    // The anchors, as `verify --chain --anchor` takes them (also in the file's trailer).
    const shown = result.chainHeads.slice(0, MAX_PRINTED_HEADS);
    if (shown.length > 0) deps.stdout.write('chain heads (tenant:seq:hash) after the exported events:\n');
    for (const h of shown) deps.stdout.write(`  ${h.tenantId}:${h.seq}:${h.hash}\n`);
    if (result.chainHeads.length > shown.length) {
      deps.stdout.write(`  … and ${result.chainHeads.length - shown.length} more in the file's trailer\n`);
    }
    return 0;
  } catch (error) {
    if (started) bar.stop();
    deps.stderr.write(`export failed: ${(error as Error).message}\n`);
    return 1;
  }
}

/** `import --dry-run`: checks the file (parse, order, checksum) without opening any store. */
export async function checkFileCommand(
  out: Pick<BackupDeps, 'stdout' | 'stderr'>,
  file: string,
): Promise<number> {
  try {
    const check = await checkExport(file);
    out.stdout.write(
      `${file}: ${check.events} event(s) from a ${check.header.source.eventStore} store exported at ` +
        `${check.header.exportedAt}${check.header.tenant ? ` (tenant ${check.header.tenant})` : ''}; checksum ok\n`,
    );
    return 0;
  } catch (error) {
    out.stderr.write(`${file}: ${(error as Error).message}\n`);
    return 1;
  }
}

export async function importCommand(
  deps: BackupDeps,
  args: { file: string; resume: boolean },
): Promise<number> {
  const bar = progressBar(deps.stderr, 'events');
  let phase = '';
  try {
    const result = await importEvents({
      store: deps.store,
      db: deps.db,
      file: args.file,
      resume: args.resume,
      onProgress: (p) => {
        if (p.phase !== phase) {
          if (phase) bar.stop();
          phase = p.phase;
          bar.start(Math.max(1, p.total), 0, { phase });
        }
        if (p.total > 0) bar.setTotal(p.total);
        bar.update(p.done, { phase });
      },
    });
    if (phase) bar.stop();
    deps.stdout.write(
      `imported ${result.events - result.resumedAfter} event(s)` +
        `${result.resumedAfter > 0 ? ` after the ${result.resumedAfter} an earlier run loaded` : ''}; ` +
        `the store holds the file's ${result.events} event(s), verified, head ${result.head}. ` +
        'Build the read models: npm run cli -- projections rebuild\n',
    );
    return 0;
  } catch (error) {
    if (phase) bar.stop();
    const refused =
      error instanceof ImportRefusedError ||
      error instanceof ExportFormatError ||
      error instanceof ImportConflictError;
    deps.stderr.write(`import ${refused ? 'refused' : 'failed'}: ${(error as Error).message}\n`);
    return 1;
  }
}
