import type { Knex } from 'knex';
import { invariant } from '../domain/errors.js';
import type { RecordedEvent } from '../eventstore/port.js';
import { applyPosting, availableOf, balanceKey, normalSideOf, type Totals, ZERO_TOTALS } from './balances.js';
import { applyEntityViews } from './entityViews.js';
import { entryOf, parseStreamName, tenantOf } from './eventShape.js';
import { LEDGER_PROJECTION, type ReadModelSchema } from './schema.js';
import { type CellValue, type Column, insertRows, int8 } from './sql.js';

/** The stored checkpoint is not where this writer expected it: another writer (or a rebuild) moved it. */
export class CheckpointMovedError extends Error {
  constructor(
    readonly expected: bigint,
    readonly actual: bigint,
  ) {
    super(`projection checkpoint is at ${actual}, expected ${expected}; resuming from the stored checkpoint`);
    this.name = 'CheckpointMovedError';
  }
}

export interface BalanceRow extends Totals {
  tenantId: string;
  account: string;
  currency: string;
  version: number;
  lastPosition: bigint;
  lastOccurredAt: string;
}

/** Column lists of the set-based inserts; the rebuild benchmark's raw ceiling inserts the same rows. */
export const POSTING_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['position', 'int8'],
  ['line', 'int4'],
  ['account', 'text'],
  ['currency', 'text'],
  ['entry_id', 'text'],
  ['side', 'text'],
  ['effect', 'text'],
  ['amount', 'int8'],
  ['debits_pending', 'int8'],
  ['debits_posted', 'int8'],
  ['credits_pending', 'int8'],
  ['credits_posted', 'int8'],
  ['available', 'int8'],
  ['version', 'int8'],
  ['occurred_at', 'timestamptz'],
];
export const ENTRY_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['entry_id', 'text'],
  ['position', 'int8'],
  ['description', 'text'],
  ['hold_id', 'text'],
];
export const AUDIT_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['position', 'int8'],
  ['event_id', 'text'],
  ['event_type', 'text'],
  ['stream_name', 'text'],
  ['category', 'text'],
  ['entity_id', 'text'],
  ['correlation_id', 'text'],
  ['causation_id', 'text'],
  ['actor_id', 'text'],
  ['actor_role', 'text'],
  ['occurred_at', 'timestamptz'],
  ['entry_id', 'text'],
];
const BALANCE_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['account', 'text'],
  ['currency', 'text'],
  ['debits_pending', 'int8'],
  ['debits_posted', 'int8'],
  ['credits_pending', 'int8'],
  ['credits_posted', 'int8'],
  ['available', 'int8'],
  ['version', 'int8'],
  ['last_position', 'int8'],
  ['last_occurred_at', 'timestamptz'],
];

export async function readCheckpoint(db: Knex | Knex.Transaction, schema: ReadModelSchema): Promise<bigint> {
  const rows = (await db.raw(`SELECT position::text AS position FROM ${schema}.checkpoint WHERE name = ?`, [
    LEDGER_PROJECTION,
  ])) as { rows: Array<{ position: string }> };
  const row = rows.rows[0];
  invariant(row, `${schema}.checkpoint has no row for ${LEDGER_PROJECTION}`);
  return BigInt(row.position);
}

export interface BatchResult {
  /** Checkpoint after the batch (the last event's position). */
  position: bigint;
  applied: number;
  postings: number;
}

/**
 * Applies `events` (consecutive in the store's order, all after `expected`) to the read models of
 * `schema` inside `trx`, and advances the checkpoint in the same transaction: either the whole batch and
 * the checkpoint commit, or neither. The checkpoint row is locked first and compared with `expected`, so
 * two writers (a lost lock, a rebuild swap) can never both apply an event.
 *
 * Set-based: balances of every account the batch touches are loaded in one query and folded in memory;
 * each table receives one multi-row insert.
 */
export interface ApplyBatchOptions {
  /**
   * Balances carried from the previous batch of the same writer, so only accounts it has not seen are
   * read. Only for a writer that owns the schema alone and discards the cache on any error (the
   * rebuild): after a rolled-back batch the cache would hold totals that never committed.
   */
  balanceCache?: BalanceCache;
}

/** Bounded carry-over of balance rows between batches (see ApplyBatchOptions). */
export class BalanceCache {
  readonly rows = new Map<string, BalanceRow>();
  constructor(readonly maxRows: number) {}
}

export async function applyBatch(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  events: readonly RecordedEvent[],
  expected: bigint,
  options: ApplyBatchOptions = {},
): Promise<BatchResult> {
  invariant(events.length > 0, 'applyBatch needs at least one event');
  const locked = (await trx.raw(
    `SELECT position::text AS position FROM ${schema}.checkpoint WHERE name = ? FOR UPDATE`,
    [LEDGER_PROJECTION],
  )) as { rows: Array<{ position: string }> };
  const stored = BigInt(locked.rows[0]?.position ?? '-1');
  if (stored !== expected) throw new CheckpointMovedError(expected, stored);

  const entries = events.map((e) => ({ event: e, entry: entryOf(e), tenantId: tenantOf(e) }));
  let previous = expected;
  for (const { event } of entries) {
    invariant(
      event.position > previous,
      () => `event positions must increase: ${event.position} after ${previous}`,
    );
    previous = event.position;
  }

  // Load the current balances of every account touched, once.
  const keys = new Map<string, [string, string, string]>();
  for (const { entry, tenantId } of entries) {
    for (const p of entry?.postings ?? [])
      keys.set(balanceKey(tenantId, p.account, p.currency), [tenantId, p.account, p.currency]);
  }
  const cache = options.balanceCache;
  if (cache && cache.rows.size + keys.size > cache.maxRows) cache.rows.clear();
  const missing = cache
    ? [...keys].filter(([k]) => !cache.rows.has(k)).map(([, v]) => v)
    : [...keys.values()];
  const balances = cache?.rows ?? new Map<string, BalanceRow>();
  for (const [k, row] of await loadBalances(trx, schema, missing)) balances.set(k, row);

  const postingRows: CellValue[][] = [];
  const entryRows: CellValue[][] = [];
  const auditRows: CellValue[][] = [];
  const touched = new Set<string>();
  for (const { event, entry, tenantId } of entries) {
    const stream = parseStreamName(event.streamName);
    const position = int8(event.position);
    const occurredAt = event.metadata.occurredAt;
    auditRows.push([
      tenantId,
      position,
      event.id,
      event.type,
      event.streamName,
      stream.category,
      stream.entityId,
      event.metadata.correlationId,
      event.metadata.causationId,
      event.metadata.actor.id,
      event.metadata.actor.role,
      occurredAt,
      entry?.entryId ?? null,
    ]);
    if (!entry) continue;
    entryRows.push([tenantId, entry.entryId, position, entry.description, entry.holdId ?? null]);
    // An account's version rises by one per entry, however many of the entry's lines touch it.
    const bumped = new Set<string>();
    entry.postings.forEach((p, line) => {
      const key = balanceKey(tenantId, p.account, p.currency);
      const current = balances.get(key) ?? {
        ...ZERO_TOTALS,
        tenantId,
        account: p.account,
        currency: p.currency,
        version: 0,
        lastPosition: -1n,
        lastOccurredAt: occurredAt,
      };
      const totals = applyPosting(current, p);
      const version = bumped.has(key) ? current.version : current.version + 1;
      bumped.add(key);
      const next: BalanceRow = {
        ...current,
        ...totals,
        version,
        lastPosition: event.position,
        lastOccurredAt: occurredAt,
      };
      balances.set(key, next);
      touched.add(key);
      postingRows.push([
        tenantId,
        position,
        line,
        p.account,
        p.currency,
        entry.entryId,
        p.side,
        p.effect,
        p.amount,
        next.debitsPending,
        next.debitsPosted,
        next.creditsPending,
        next.creditsPosted,
        availableOf(next, normalSideOf(p.account)),
        version,
        occurredAt,
      ]);
    });
  }

  const balanceRows: CellValue[][] = [...touched].map((key) => {
    const b = balances.get(key)!;
    return [
      b.tenantId,
      b.account,
      b.currency,
      b.debitsPending,
      b.debitsPosted,
      b.creditsPending,
      b.creditsPosted,
      availableOf(b, normalSideOf(b.account)),
      b.version,
      int8(b.lastPosition),
      b.lastOccurredAt,
    ];
  });

  await insertRows(trx, `${schema}.audit_events`, AUDIT_COLUMNS, auditRows);
  await insertRows(trx, `${schema}.journal_entries`, ENTRY_COLUMNS, entryRows);
  await insertRows(trx, `${schema}.postings`, POSTING_COLUMNS, postingRows);
  await insertRows(
    trx,
    `${schema}.balances`,
    BALANCE_COLUMNS,
    balanceRows,
    `ON CONFLICT (tenant_id, account, currency) DO UPDATE SET
       debits_pending = excluded.debits_pending, debits_posted = excluded.debits_posted,
       credits_pending = excluded.credits_pending, credits_posted = excluded.credits_posted,
       available = excluded.available, version = excluded.version,
       last_position = excluded.last_position, last_occurred_at = excluded.last_occurred_at`,
  );
  await applyEntityViews(trx, schema, entries);

  await trx.raw(
    `UPDATE ${schema}.checkpoint SET position = ?::int8, events_applied = events_applied + ?, updated_at = now()
     WHERE name = ?`,
    [int8(previous), events.length, LEDGER_PROJECTION],
  );
  return { position: previous, applied: events.length, postings: postingRows.length };
}

async function loadBalances(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  keys: Array<[string, string, string]>,
): Promise<Map<string, BalanceRow>> {
  const out = new Map<string, BalanceRow>();
  if (keys.length === 0) return out;
  const result = (await trx.raw(
    `SELECT b.tenant_id, b.account, b.currency, b.debits_pending, b.debits_posted, b.credits_pending,
            b.credits_posted, b.version, b.last_position, b.last_occurred_at
       FROM ${schema}.balances b
       JOIN unnest(?::text[], ?::text[], ?::text[]) AS k(tenant_id, account, currency)
         ON b.tenant_id = k.tenant_id AND b.account = k.account AND b.currency = k.currency`,
    [keys.map((k) => k[0]), keys.map((k) => k[1]), keys.map((k) => k[2])],
  )) as { rows: Array<Record<string, string | number | Date>> };
  for (const r of result.rows) {
    const row: BalanceRow = {
      tenantId: String(r.tenant_id),
      account: String(r.account),
      currency: String(r.currency),
      debitsPending: Number(r.debits_pending),
      debitsPosted: Number(r.debits_posted),
      creditsPending: Number(r.credits_pending),
      creditsPosted: Number(r.credits_posted),
      version: Number(r.version),
      lastPosition: BigInt(r.last_position as number),
      lastOccurredAt: (r.last_occurred_at as Date).toISOString(),
    };
    out.set(balanceKey(row.tenantId, row.account, row.currency), row);
  }
  return out;
}
