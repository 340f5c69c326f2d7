import type { Knex } from 'knex';
import { canonicalClientMetadata } from '../domain/clientMetadata.js';
import { effectiveAtOf } from '../domain/effectiveTime.js';
import { InvariantViolation, invariant } from '../domain/errors.js';
import { type DecodedEvent, decodeEvent, entryOf } from '../domain/events.js';
import type { Side } from '../domain/journal.js';
import type { RecordedEvent } from '../eventstore/port.js';
import { BALANCES_CHANGED_CHANNEL, balanceChangePayloads } from './balanceCache.js';
import {
  applyPostingInPlace,
  availableOf,
  balanceKey,
  normalSideOf,
  type Totals,
  ZERO_TOTALS,
} from './balances.js';
import { type ConsoleRows, consoleRowBuffers, foldConsoleRows, writeConsoleRows } from './consoleRows.js';
import {
  applyLateLines,
  EFFECTIVE_POSTING_COLUMNS,
  type LateLine,
  loadMaxEffective,
} from './effectivePostings.js';
import { applyEntityViews } from './entityViews.js';
import { LEDGER_PROJECTION, LIVE_SCHEMA, type ReadModelSchema } from './schema.js';
import {
  appendRows,
  type BulkLoadMethod,
  type CellValue,
  type Column,
  insertRows,
  int8,
  type RowBuffer,
  rowBuffer,
} from './sql.js';
import { readStalls, tenantOfEvent } from './stalls.js';

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
  /** Derived from the totals and the account's normal side. */
  available: number;
  /** The account's normal side, resolved once per row rather than once per posting line. */
  normalSide: Side;
  /** The latest effective time of the account's lines (effectivePostings.ts); absent: none yet. */
  maxEffectiveAt?: string;
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
  ['client_metadata', 'jsonb'],
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
export const BALANCE_COLUMNS: readonly Column[] = [
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
  /** Events of stalled tenants the batch skipped (stalls.ts). */
  heldBack: number;
}

export interface ApplyBatchOptions {
  /** How the append-only rows are written (sql.ts, bulkLoadMethodOf); the unnest INSERT by default. */
  bulkLoad?: BulkLoadMethod;
}

/** Rows one batch appends to the append-only tables. */
export interface LedgerRows {
  audit: RowBuffer;
  entries: RowBuffer;
  postings: RowBuffer;
  /** Lines in effective order (effectivePostings.ts); backdated ones in `late`. */
  effective: RowBuffer;
  late: LateLine[];
  /** Search, stories and analytics (consoleRows.ts). */
  console: ConsoleRows;
}

/**
 * Applies `events` (consecutive in the store's order, all after `expected`) to the read models of
 * `schema` inside `trx`, and advances the checkpoint in the same transaction: either the whole batch and
 * the checkpoint commit, or neither. The checkpoint row is locked first and compared with `expected`, so
 * two writers (a lost lock, a rebuild swap) can never both apply an event.
 *
 * Set-based: balances of every account the batch touches are loaded in one query and folded in memory;
 * each table receives one multi-row insert (or COPY).
 */
export async function applyBatch(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  events: readonly RecordedEvent[],
  expected: bigint,
  options: ApplyBatchOptions = {},
): Promise<BatchResult> {
  invariant(events.length > 0, 'applyBatch needs at least one event');
  await lockCheckpoint(trx, schema, expected);
  const position = events[events.length - 1]!.position;
  // A stalled tenant's events are held back (stalls.ts): skipped here, applied by its resume.
  const stalled = new Set((await readStalls(trx, schema)).map((s) => s.tenantId));
  const live = stalled.size === 0 ? events : events.filter((e) => !stalled.has(tenantOfEvent(e)));
  let postings = 0;
  if (live.length > 0) {
    postings = (await applyEvents(trx, schema, projectEvents(live, expected), options)).postings;
  }
  await advanceCheckpoint(trx, schema, position, live.length);
  return { position, applied: live.length, postings, heldBack: events.length - live.length };
}

/**
 * Applies decoded events to the read models of `schema` (not the checkpoint): the fold of the balances
 * they touch, the append-only rows, the entity views, and (live schema) the balance notifications.
 */
export async function applyEvents(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  projected: readonly DecodedEvent[],
  options: ApplyBatchOptions = {},
): Promise<{ postings: number }> {
  // Loaded inside the transaction, after the checkpoint lock: the fold starts from committed balances.
  const balances = await loadBalances(trx, schema, [...balanceKeysOf(projected).values()]);
  const rows = ledgerRowBuffers(options.bulkLoad ?? 'insert');
  foldBatch(projected, balances, rows);
  await writeLedgerRows(trx, schema, rows);
  // Every balance in the map was loaded for this batch or created by it: all of them changed.
  await upsertBalances(trx, schema, balanceRowsOf(balances.values()));
  await applyEntityViews(trx, schema, projected);
  // Part of the write: whoever caches live balances (balanceCache.ts) hears of it at commit.
  const last = projected[projected.length - 1];
  if (schema === LIVE_SCHEMA && last) await notifyBalanceChanges(trx, last.position, balances.values());
  return { postings: rows.postings.length };
}

/** Queues (delivered at commit, in order) the notifications naming every balance the batch changed. */
async function notifyBalanceChanges(
  trx: Knex.Transaction,
  position: bigint,
  changed: Iterable<BalanceRow>,
): Promise<void> {
  const payloads = balanceChangePayloads(position, changed);
  await trx.raw('SELECT pg_notify(?, p) FROM unnest(?::text[]) WITH ORDINALITY AS t(p, i) ORDER BY i', [
    BALANCES_CHANGED_CHANNEL,
    payloads,
  ]);
}

/** Locks the checkpoint row for the transaction and checks that it is where this writer left it. */
export async function lockCheckpoint(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  expected: bigint,
): Promise<void> {
  const locked = (await trx.raw(
    `SELECT position::text AS position FROM ${schema}.checkpoint WHERE name = ? FOR UPDATE`,
    [LEDGER_PROJECTION],
  )) as { rows: Array<{ position: string }> };
  const stored = BigInt(locked.rows[0]?.position ?? '-1');
  if (stored !== expected) throw new CheckpointMovedError(expected, stored);
}

export async function advanceCheckpoint(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  position: bigint,
  applied: number,
): Promise<void> {
  await trx.raw(
    `UPDATE ${schema}.checkpoint SET position = ?::int8, events_applied = events_applied + ?, updated_at = now()
     WHERE name = ?`,
    [int8(position), applied, LEDGER_PROJECTION],
  );
}

/**
 * Decodes each event (a malformed one stops the projection: a read model that silently drops money is
 * worse than one that stops), checking that positions increase after `expected`.
 */
export function projectEvents(events: readonly RecordedEvent[], expected: bigint): DecodedEvent[] {
  let previous = expected;
  return events.map((event) => {
    if (event.position <= previous) {
      throw new InvariantViolation(`event positions must increase: ${event.position} after ${previous}`);
    }
    previous = event.position;
    return decodeEvent(event);
  });
}

/** Every (tenant, account, currency) a batch posts to, by balanceKey. */
export function balanceKeysOf(projected: readonly DecodedEvent[]): Map<string, [string, string, string]> {
  const keys = new Map<string, [string, string, string]>();
  for (const event of projected) {
    const tenantId = event.tenantId;
    for (const p of entryOf(event)?.postings ?? []) {
      const key = balanceKey(tenantId, p.account, p.currency);
      if (!keys.has(key)) keys.set(key, [tenantId, p.account, p.currency]);
    }
  }
  return keys;
}

/**
 * Folds a batch on top of `balances`, which must hold every touched account that has a balance (an
 * absent key is a new account); updates the rows of `balances` in place (the caller owns them and
 * drops them if the batch fails; a changed row's lastPosition is the batch's) and adds the rows to
 * append to `rows`. No I/O.
 */
export function ledgerRowBuffers(method: BulkLoadMethod): LedgerRows {
  return {
    audit: rowBuffer(method, AUDIT_COLUMNS),
    entries: rowBuffer(method, ENTRY_COLUMNS),
    postings: rowBuffer(method, POSTING_COLUMNS),
    effective: rowBuffer(method, EFFECTIVE_POSTING_COLUMNS),
    late: [],
    console: consoleRowBuffers(method),
  };
}

export function foldBatch(
  projected: readonly DecodedEvent[],
  balances: Map<string, BalanceRow>,
  rows: LedgerRows,
): void {
  for (const event of projected) {
    const { tenantId, stream } = event;
    const entry = entryOf(event);
    foldConsoleRows(event, rows.console);
    const position = int8(event.position);
    const occurredAt = event.metadata.occurredAt;
    // Never after it was recorded (effectiveTime.ts); a clock a millisecond apart must not make it so.
    const claimed = effectiveAtOf(event);
    const effectiveAt = claimed < occurredAt ? claimed : occurredAt;
    rows.audit.add([
      tenantId,
      position,
      event.id,
      event.type,
      event.streamName,
      stream.category,
      stream.id,
      event.metadata.correlationId,
      event.metadata.causationId,
      event.metadata.actor.id,
      event.metadata.actor.role,
      occurredAt,
      entry?.entryId ?? null,
    ]);
    if (!entry) continue;
    const clientMetadata = event.metadata.clientMetadata;
    rows.entries.add([
      tenantId,
      entry.entryId,
      position,
      entry.description,
      entry.holdId ?? null,
      clientMetadata ? JSON.stringify(canonicalClientMetadata(clientMetadata)) : null,
    ]);
    const postings = entry.postings;
    for (let line = 0; line < postings.length; line++) {
      const p = postings[line]!;
      const key = balanceKey(tenantId, p.account, p.currency);
      let b = balances.get(key);
      if (!b) {
        b = {
          ...ZERO_TOTALS,
          tenantId,
          account: p.account,
          currency: p.currency,
          version: 0,
          lastPosition: -1n,
          lastOccurredAt: occurredAt,
          available: 0,
          normalSide: normalSideOf(p.account),
        };
        balances.set(key, b);
      }
      const versionBefore = b.version;
      applyPostingInPlace(b, p);
      // An account's version rises by one per entry, however many of the entry's lines touch it; one
      // event carries one entry and positions increase, so "already touched by this entry" is
      // "last changed at this position".
      if (b.lastPosition !== event.position) b.version++;
      b.lastPosition = event.position;
      b.lastOccurredAt = occurredAt;
      b.available = availableOf(b, b.normalSide);
      rows.postings.add([
        tenantId,
        position,
        line,
        p.account,
        p.currency,
        entry.entryId,
        p.side,
        p.effect,
        p.amount,
        b.debitsPending,
        b.debitsPosted,
        b.creditsPending,
        b.creditsPosted,
        b.available,
        b.version,
        occurredAt,
      ]);
      // An account's version rose above iff this is the entry's first line on it.
      const firstOnAccount = b.version !== versionBefore;
      if (b.maxEffectiveAt !== undefined && effectiveAt < b.maxEffectiveAt) {
        rows.late.push({
          firstOnAccount,
          tenantId,
          account: p.account,
          currency: p.currency,
          effectiveAt,
          position: event.position,
          line,
          entryId: entry.entryId,
          posting: p,
          knownAt: occurredAt,
        });
      } else {
        b.maxEffectiveAt = effectiveAt;
        rows.effective.add([
          tenantId,
          p.account,
          p.currency,
          effectiveAt,
          position,
          line,
          entry.entryId,
          p.side,
          p.effect,
          p.amount,
          b.debitsPending,
          b.debitsPosted,
          b.creditsPending,
          b.creditsPosted,
          b.version,
          occurredAt,
          position,
        ]);
      }
    }
  }
}

/** Balance rows in BALANCE_COLUMNS order. */
export function balanceRowsOf(balances: Iterable<BalanceRow>): CellValue[][] {
  const out: CellValue[][] = [];
  for (const b of balances) {
    out.push([
      b.tenantId,
      b.account,
      b.currency,
      b.debitsPending,
      b.debitsPosted,
      b.creditsPending,
      b.creditsPosted,
      b.available,
      b.version,
      int8(b.lastPosition),
      b.lastOccurredAt,
    ]);
  }
  return out;
}

export async function writeLedgerRows(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  rows: LedgerRows,
): Promise<void> {
  await appendRows(trx, `${schema}.audit_events`, rows.audit);
  await appendRows(trx, `${schema}.journal_entries`, rows.entries);
  await appendRows(trx, `${schema}.postings`, rows.postings);
  await appendRows(trx, `${schema}.effective_postings`, rows.effective);
  await applyLateLines(trx, schema, rows.late);
  await writeConsoleRows(trx, schema, rows.console);
}

/** Balance rows per upsert statement: a rebuild's flush may carry up to a million. */
const UPSERT_CHUNK_ROWS = 10_000;

export async function upsertBalances(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  rows: readonly CellValue[][],
): Promise<void> {
  for (let from = 0; from < rows.length; from += UPSERT_CHUNK_ROWS) {
    await upsertBalanceChunk(trx, schema, rows.slice(from, from + UPSERT_CHUNK_ROWS));
  }
}

async function upsertBalanceChunk(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  rows: readonly CellValue[][],
): Promise<void> {
  await insertRows(
    trx,
    `${schema}.balances`,
    BALANCE_COLUMNS,
    rows,
    `ON CONFLICT (tenant_id, account, currency) DO UPDATE SET
       debits_pending = excluded.debits_pending, debits_posted = excluded.debits_posted,
       credits_pending = excluded.credits_pending, credits_posted = excluded.credits_posted,
       available = excluded.available, version = excluded.version,
       last_position = excluded.last_position, last_occurred_at = excluded.last_occurred_at`,
  );
}

/** Current balances of `keys` (absent keys have none yet). */
export async function loadBalances(
  trx: Knex | Knex.Transaction,
  schema: ReadModelSchema,
  keys: Array<[string, string, string]>,
): Promise<Map<string, BalanceRow>> {
  const out = new Map<string, BalanceRow>();
  if (keys.length === 0) return out;
  const result = (await trx.raw(
    `SELECT b.tenant_id, b.account, b.currency, b.debits_pending, b.debits_posted, b.credits_pending,
            b.credits_posted, b.available, b.version, b.last_position, b.last_occurred_at
       FROM ${schema}.balances b
       JOIN unnest(?::text[], ?::text[], ?::text[]) AS k(tenant_id, account, currency)
         ON b.tenant_id = k.tenant_id AND b.account = k.account AND b.currency = k.currency`,
    [keys.map((k) => k[0]), keys.map((k) => k[1]), keys.map((k) => k[2])],
  )) as { rows: Array<Record<string, string | number | Date>> };
  const maxEffective = await loadMaxEffective(
    trx,
    schema,
    result.rows.map((r) => [String(r.tenant_id), String(r.account), String(r.currency)] as const),
  );
  for (const r of result.rows) {
    const row = balanceRowOf(r);
    const key = balanceKey(row.tenantId, row.account, row.currency);
    const max = maxEffective.get(key);
    if (max !== undefined) row.maxEffectiveAt = max;
    out.set(key, row);
  }
  return out;
}

/** A `balances` table row as the driver returns it (int8 as number, timestamptz as Date). */
export function balanceRowOf(r: Record<string, unknown>): BalanceRow {
  return {
    tenantId: String(r.tenant_id),
    account: String(r.account),
    currency: String(r.currency),
    debitsPending: Number(r.debits_pending),
    debitsPosted: Number(r.debits_posted),
    creditsPending: Number(r.credits_pending),
    creditsPosted: Number(r.credits_posted),
    available: Number(r.available),
    normalSide: normalSideOf(String(r.account)),
    version: Number(r.version),
    lastPosition: BigInt(r.last_position as number),
    lastOccurredAt: (r.last_occurred_at as Date).toISOString(),
  };
}
