import type { Knex } from 'knex';
import { invariant } from '../domain/errors.js';
import type { EventStore, RecordedEvent } from '../eventstore/port.js';
import { applyEvents, projectEvents } from './ledgerProjection.js';
import { PROJECTED_CHANNEL } from './projectionRunner.js';
import { LEDGER_PROJECTION, LIVE_SCHEMA } from './schema.js';
import { int8 } from './sql.js';
import {
  clearStall,
  errorMessage,
  isPoison,
  type ProjectionStall,
  readStalls,
  recordStall,
  tenantOfEvent,
} from './stalls.js';

export type ResumeOutcome =
  | { kind: 'not_stalled' }
  | { kind: 'resumed'; applied: number; position: bigint }
  /** The tenant's events still cannot be applied; the stall now names the one that failed. */
  | { kind: 'still_stalled'; applied: number; stall: ProjectionStall; error: unknown };

/**
 * Resumes a stalled tenant after a fix: applies its held-back events, from the stalled one up to the
 * checkpoint, in order, page by page, and clears the stall. A page of the log is read first (no
 * transaction open: on the embedded store that is the only connection), then applied in one
 * transaction that holds the checkpoint row, so the runner waits meanwhile and then carries on with
 * the tenant's later events. An event that still fails becomes the stall's event again, with the new
 * reason. Safe beside a running projection; resumable (the stall's position moves with each page).
 */
export async function resumeStalledTenant(options: {
  knex: Knex;
  store: EventStore;
  tenantId: string;
  pageSize?: number;
}): Promise<ResumeOutcome> {
  const { knex, store, tenantId } = options;
  const pageSize = options.pageSize ?? 1_000;
  let applied = 0;
  for (let first = true; ; first = false) {
    const before = (await readStalls(knex, LIVE_SCHEMA, tenantId))[0];
    if (!before)
      return first
        ? { kind: 'not_stalled' }
        : { kind: 'resumed', applied, position: await checkpointOf(knex) };
    const page = await store.readAll({ after: before.position - 1n, maxCount: pageSize });
    const step = await knex
      .transaction(async (trx) => {
        const checkpoint = await lockedCheckpoint(trx);
        const stall = (await readStalls(trx, LIVE_SCHEMA, tenantId))[0];
        // Another resume moved it meanwhile: read again from where it is now.
        if (!stall || stall.position !== before.position) return { done: false as const, count: 0 };
        const scanned = page.filter((e) => e.position <= checkpoint);
        const mine = scanned.filter((e) => tenantOfEvent(e) === tenantId);
        if (mine.length > 0) await applyEvents(trx, LIVE_SCHEMA, projectEvents(mine, mine[0]!.position - 1n));
        // Everything up to `covered` was looked at; events the runner passed after the page was read
        // are read by the next round.
        const covered = scanned[scanned.length - 1]?.position ?? stall.position - 1n;
        if (covered >= checkpoint) {
          await clearStall(trx, LIVE_SCHEMA, tenantId);
          await trx.raw('SELECT pg_notify(?, ?)', [PROJECTED_CHANNEL, checkpoint.toString()]);
          return { done: true as const, count: mine.length, position: checkpoint };
        }
        await trx.raw(
          `UPDATE ${LIVE_SCHEMA}.projection_stalls SET position = ?::int8 WHERE projection = ? AND tenant_id = ?`,
          [int8(covered + 1n), LEDGER_PROJECTION, tenantId],
        );
        return { done: false as const, count: mine.length };
      })
      .catch((error: unknown) => {
        if (!isPoison(error)) throw error;
        return { done: 'failed' as const, error };
      });
    if (step.done === 'failed') {
      const outcome = await restall(knex, tenantId, page, step.error);
      return { ...outcome, applied: applied + outcome.applied };
    }
    applied += step.count;
    if (step.done) return { kind: 'resumed', applied, position: step.position };
  }
}

async function checkpointOf(knex: Knex): Promise<bigint> {
  const rows = (await knex.raw(
    `SELECT position::text AS position FROM ${LIVE_SCHEMA}.checkpoint WHERE name = ?`,
    [LEDGER_PROJECTION],
  )) as { rows: Array<{ position: string }> };
  return BigInt(rows.rows[0]?.position ?? '-1');
}

/** The checkpoint position, its row locked for the transaction (the runner's batches wait). */
async function lockedCheckpoint(trx: Knex.Transaction): Promise<bigint> {
  const locked = (await trx.raw(
    `SELECT position::text AS position FROM ${LIVE_SCHEMA}.checkpoint WHERE name = ? FOR UPDATE`,
    [LEDGER_PROJECTION],
  )) as { rows: Array<{ position: string }> };
  return BigInt(locked.rows[0]?.position ?? '-1');
}

/** After a failed page: finds the tenant's first event that still fails and makes it the stall's. */
async function restall(
  knex: Knex,
  tenantId: string,
  page: readonly RecordedEvent[],
  pageError: unknown,
): Promise<Extract<ResumeOutcome, { kind: 'still_stalled' }>> {
  return knex.transaction(async (trx) => {
    const checkpoint = await lockedCheckpoint(trx);
    const stall = (await readStalls(trx, LIVE_SCHEMA, tenantId))[0];
    invariant(stall, `the stall of ${tenantId} vanished during its resume`);
    let applied = 0;
    const mine = page.filter(
      (e) => e.position >= stall.position && e.position <= checkpoint && tenantOfEvent(e) === tenantId,
    );
    for (const event of mine) {
      try {
        // A savepoint per event, in order: those before the first that fails stay applied, and the
        // stall moves to the one that fails.
        await trx.transaction((sp) =>
          applyEvents(sp, LIVE_SCHEMA, projectEvents([event], event.position - 1n)),
        );
        applied++;
      } catch (error) {
        if (!isPoison(error)) throw error;
        const recorded = await recordStall(trx, LIVE_SCHEMA, event, errorMessage(error));
        return { kind: 'still_stalled' as const, applied, stall: recorded, error };
      }
    }
    // No single event of the page failed on its own: keep the stall where it is, with the new reason.
    const reason = errorMessage(pageError).slice(0, 2_000);
    await trx.raw(
      `UPDATE ${LIVE_SCHEMA}.projection_stalls SET reason = ?, stalled_at = now() WHERE projection = ? AND tenant_id = ?`,
      [reason, LEDGER_PROJECTION, tenantId],
    );
    const recorded = { ...stall, reason };
    return { kind: 'still_stalled' as const, applied, stall: recorded, error: pageError };
  });
}
