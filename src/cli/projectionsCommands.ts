import cliProgress from 'cli-progress';
import type { Database } from '../db/database.js';
import type { EventStore } from '../eventstore/port.js';
import { assertTenantId } from '../projections/readTransaction.js';
import { PROJECTION_NAMES, rebuildReadModels } from '../projections/rebuild.js';
import { type ReplayLine, replayAccount } from '../projections/replay.js';
import { resumeStalledTenant } from '../projections/resumeStall.js';
import { LIVE_SCHEMA } from '../projections/schema.js';
import { readStalls } from '../projections/stalls.js';
import { verifyReadModels } from '../projections/verifier.js';

/**
 * CLI commands for the read side, wired into src/cli/main.ts. Each takes already-opened dependencies,
 * writes to `out` and returns the process exit code (0 ok, 1 check failed, 2 bad usage).
 */
export interface ProjectionsCommandDeps {
  db: Database;
  store: EventStore;
  tenantId?: string;
  out: NodeJS.WritableStream;
}

const write = (out: NodeJS.WritableStream, text: string) => out.write(`${text}\n`);

/** `projections rebuild [name]`: replay into fresh tables, swap them in, with a progress bar. */
export async function rebuild(deps: ProjectionsCommandDeps, name?: string): Promise<number> {
  if (name !== undefined && !(PROJECTION_NAMES as readonly string[]).includes(name)) {
    write(deps.out, `unknown projection "${name}"; known: ${PROJECTION_NAMES.join(', ')}`);
    return 2;
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: deps.out,
      format: '{phase} [{bar}] {percentage}% | {value}/{total} | {rate} events/s | ETA {eta_formatted}',
      noTTYOutput: true,
      notTTYSchedule: 2_000,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  try {
    const result = await rebuildReadModels({
      db: deps.db,
      store: deps.store,
      onProgress: (p) => {
        const total = Number(p.head) + 1;
        const value = Number(p.position) + 1;
        const rate = p.elapsedMs > 0 ? Math.round((p.eventsApplied * 1000) / p.elapsedMs) : 0;
        if (!started) {
          bar.start(Math.max(total, 1), value, { phase: p.phase, rate });
          started = true;
        } else {
          bar.setTotal(Math.max(total, 1));
          bar.update(value, { phase: p.phase, rate });
        }
      },
    });
    if (started) bar.stop();
    write(
      deps.out,
      `rebuilt read models to position ${result.position}: ${result.eventsApplied} events in ${result.durationMs} ms` +
        `${result.resumed ? ' (resumed an interrupted rebuild)' : ''}`,
    );
    return 0;
  } catch (error) {
    if (started) bar.stop();
    write(
      deps.out,
      `rebuild failed: ${error instanceof Error ? error.message : String(error)} (run it again to resume)`,
    );
    return 1;
  }
}

/** `projections stalled`: the tenants whose read models stopped at an event they cannot apply. */
export async function stalled(deps: ProjectionsCommandDeps): Promise<number> {
  const stalls = await readStalls(deps.db.knex, LIVE_SCHEMA);
  if (stalls.length === 0) {
    write(deps.out, 'no stalled projections');
    return 0;
  }
  for (const st of stalls) {
    write(
      deps.out,
      `${st.projection} tenant=${st.tenantId} position=${st.position} stream=${st.streamName} type=${st.eventType} event=${st.eventId} since=${st.stalledAt.toISOString()}\n  reason: ${st.reason}`,
    );
  }
  write(deps.out, `${stalls.length} stalled; after a fix: npm run cli -- projections resume <tenant>|--all`);
  return 0;
}

/**
 * `projections resume <tenant>|--all`: applies each stalled tenant's held-back events and clears the
 * stall (resumeStall.ts); exit 1 if one still cannot be applied (the stall then names it).
 */
export async function resume(
  deps: ProjectionsCommandDeps,
  target: { all: true } | { tenantId: string },
): Promise<number> {
  const tenants =
    'all' in target
      ? (await readStalls(deps.db.knex, LIVE_SCHEMA)).map((st) => st.tenantId)
      : [target.tenantId];
  if (tenants.length === 0) {
    write(deps.out, 'no stalled projections');
    return 0;
  }
  let failed = 0;
  for (const tenantId of tenants) {
    const outcome = await resumeStalledTenant({ knex: deps.db.knex, store: deps.store, tenantId });
    switch (outcome.kind) {
      case 'not_stalled':
        write(deps.out, `tenant ${tenantId}: not stalled`);
        break;
      case 'resumed':
        write(
          deps.out,
          `tenant ${tenantId}: resumed, ${outcome.applied} held-back event(s) applied; its read models are at position ${outcome.position} with the others`,
        );
        break;
      case 'still_stalled':
        failed++;
        write(
          deps.out,
          `tenant ${tenantId}: still stalled at position ${outcome.stall.position} (${outcome.stall.eventType} in ${outcome.stall.streamName}) after applying ${outcome.applied} event(s): ${outcome.stall.reason}`,
        );
        break;
    }
  }
  return failed === 0 ? 0 : 1;
}

/** `verify`: fold all events and compare with the read models; non-zero exit on any difference. */
export async function verify(
  deps: ProjectionsCommandDeps,
  options: { maxDifferences?: number; clearingMaxAgeHours?: number; maxBehindPositions?: number } = {},
): Promise<number> {
  const result = await verifyReadModels({
    db: deps.db,
    store: deps.store,
    maxDifferences: options.maxDifferences ?? 20,
    ...(options.maxBehindPositions !== undefined ? { maxBehindPositions: options.maxBehindPositions } : {}),
    ...(options.clearingMaxAgeHours !== undefined
      ? { clearingMaxAgeMs: options.clearingMaxAgeHours * 3_600_000 }
      : {}),
  });
  write(
    deps.out,
    `verified ${result.accountsChecked} accounts over ${result.eventsFolded} events up to position ${result.position} (event store head ${result.head}): ` +
      (result.ok ? 'no differences' : `${result.totalDifferences} difference(s)`),
  );
  for (const d of result.differences) {
    write(deps.out, `  ${d.kind} ${d.tenantId} ${d.account ?? ''} ${d.currency}: ${d.detail}`);
  }
  if (result.totalDifferences > result.differences.length) {
    write(deps.out, `  … and ${result.totalDifferences - result.differences.length} more`);
  }
  return result.ok ? 0 : 1;
}

/** `replay --account <path> [--until <time|position>] [--format table|json]`, for audits. */
export async function replay(
  deps: ProjectionsCommandDeps,
  options: { account: string; until?: string; format?: 'table' | 'json' },
): Promise<number> {
  if (!deps.tenantId) {
    write(deps.out, 'replay needs a tenant (--tenant)');
    return 2;
  }
  try {
    assertTenantId(deps.tenantId);
  } catch (error) {
    write(deps.out, error instanceof Error ? error.message : String(error));
    return 2;
  }
  let until: { position: bigint } | { time: Date } | undefined;
  if (options.until !== undefined) {
    if (/^\d{1,19}$/.test(options.until)) until = { position: BigInt(options.until) };
    else if (!Number.isNaN(Date.parse(options.until))) until = { time: new Date(options.until) };
    else {
      write(deps.out, `--until must be a position (digits) or an ISO-8601 time, got "${options.until}"`);
      return 2;
    }
  }
  const format = options.format ?? 'table';
  if (format !== 'table' && format !== 'json') {
    write(deps.out, `--format must be table or json`);
    return 2;
  }
  const lines = replayAccount({
    store: deps.store,
    tenantId: deps.tenantId,
    account: options.account,
    ...(until ? { until } : {}),
  });
  let count = 0;
  if (format === 'table') {
    write(
      deps.out,
      [
        'position',
        'occurred_at',
        'event',
        'side',
        'effect',
        'amount',
        'posted',
        'pending',
        'available',
        'ver',
        'actor',
        'description',
      ].join('\t'),
    );
  }
  for await (const line of lines) {
    count++;
    write(deps.out, format === 'json' ? JSON.stringify(toJson(line)) : toRow(line));
  }
  if (format === 'table')
    write(deps.out, `${count} line(s) on ${options.account} in tenant ${deps.tenantId}`);
  return 0;
}

function toJson(line: ReplayLine): Record<string, unknown> {
  return { ...line, position: line.position.toString() };
}

function toRow(l: ReplayLine): string {
  return [
    l.position,
    l.occurredAt,
    l.eventType,
    l.side,
    l.effect,
    `${l.amount} ${l.currency}`,
    l.balanceAfter.posted,
    l.balanceAfter.pending,
    l.balanceAfter.available,
    l.versionAfter,
    `${l.actor.role}:${l.actor.id}`,
    `${l.description} (cause ${l.streamName} ${l.eventId}, correlation ${l.correlationId})`,
  ].join('\t');
}
