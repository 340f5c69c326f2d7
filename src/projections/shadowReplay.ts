import type { Knex } from 'knex';
import { invariant } from '../domain/errors.js';
import type { DecodedEvent } from '../domain/events.js';
import type { RecordedEvent } from '../eventstore/port.js';
import { applyEntityViews, movesAView } from './entityViews.js';
import {
  advanceCheckpoint,
  BALANCE_COLUMNS,
  type BalanceRow,
  balanceKeysOf,
  balanceRowsOf,
  foldBatch,
  type LedgerRows,
  ledgerRowBuffers,
  loadBalances,
  lockCheckpoint,
  projectEvents,
  upsertBalances,
  writeLedgerRows,
} from './ledgerProjection.js';
import type { ReadModelSchema } from './schema.js';
import type { BulkLoadMethod, CellValue } from './sql.js';

/** A replay batch folded ahead of its write: everything its transaction needs, computed without it. */
export interface PreparedBatch {
  /** Checkpoint the batch follows (its transaction checks it). */
  expected: bigint;
  /** Checkpoint after the batch. */
  position: bigint;
  /** Events in the batch. */
  applied: number;
  /** Only the events a view follows: the rest need not stay alive until the write. */
  viewEvents: DecodedEvent[];
  rows: LedgerRows;
  /** Balance rows this batch writes: empty unless it flushes the carried balances (see ShadowReplay). */
  balanceRows: CellValue[][];
}

/**
 * The rebuild's writer for the shadow schema: folds each batch in memory ahead of its transaction, so a
 * batch can be folded while the previous one is still being written, and defers the balances table.
 * A batch is folded read by read (`fold`) and closed with `seal`: reads smaller than the transaction
 * let each read's events die young instead of being copied by the garbage collector while a whole
 * transaction's worth waits.
 *
 * Deferred balances: every balance is carried in memory (bounded by `maxRows`) and written only when the
 * carry would overflow (inside the batch that overflows it) and once at the end (`flush`). Between
 * those, the shadow's balances table lags its postings; that is safe because nothing reads the shadow
 * before the swap, the swap only follows a flush, and a rebuild resumed after a crash first re-derives
 * the balances from the postings (`rederiveBalances`: a balance is its account's last posting).
 *
 * The carried balances are the truth while this object lives; it must be discarded on any error.
 */
export class ShadowReplay {
  private readonly balances = new Map<string, BalanceRow>();
  /**
   * The balances table holds every balance as of this position: a carried row changed after it (its
   * lastPosition is greater) is not written yet.
   */
  private writtenThrough: bigint;
  /** Position of the last event folded. */
  private folded: bigint;
  private open: PreparedBatch | undefined;

  /**
   * @param complete the balances table is empty and stays in step with the carry (a fresh shadow), so
   *   an account missing from the carry is new and nothing needs reading. Cleared by the first overflow.
   */
  constructor(
    private readonly knex: Knex,
    private readonly schema: ReadModelSchema,
    private readonly bulkLoad: BulkLoadMethod,
    private readonly maxRows: number,
    private complete: boolean,
    position: bigint,
  ) {
    invariant(Number.isInteger(maxRows) && maxRows >= 1, 'maxRows must be a positive integer');
    this.writtenThrough = position;
    this.folded = position;
  }

  /**
   * Folds `events` (the next ones after everything folded so far) into the open batch, starting one if
   * none is open. Reads the balances table only for accounts not carried once the carry has overflowed;
   * the caller must not have a balance-writing batch in flight then (`batch.balanceRows.length > 0`
   * means: await its write before folding more).
   */
  async fold(events: readonly RecordedEvent[]): Promise<void> {
    invariant(events.length > 0, 'fold needs at least one event');
    const projected = projectEvents(events, this.folded);
    if (!this.complete) {
      const missing: Array<[string, string, string]> = [];
      for (const [key, parts] of balanceKeysOf(projected)) if (!this.balances.has(key)) missing.push(parts);
      for (const [key, row] of await loadBalances(this.knex, this.schema, missing))
        this.balances.set(key, row);
    }
    this.open ??= {
      expected: this.folded,
      position: this.folded,
      applied: 0,
      viewEvents: [],
      rows: ledgerRowBuffers(this.bulkLoad),
      balanceRows: [],
    };
    foldBatch(projected, this.balances, this.open.rows);
    for (const p of projected) if (movesAView(p)) this.open.viewEvents.push(p);
    this.folded = events[events.length - 1]!.position;
    this.open.position = this.folded;
    this.open.applied += events.length;
  }

  /** Events folded into the open batch. */
  get openEvents(): number {
    return this.open?.applied ?? 0;
  }

  /** The carry is over its bound: seal the open batch now, so that it writes the carry out. */
  get overflowing(): boolean {
    return this.balances.size > this.maxRows;
  }

  /** Closes the open batch for writing. If the carry is over its bound, the batch writes it out too. */
  seal(): PreparedBatch {
    const batch = this.open;
    invariant(batch, 'no open batch to seal');
    this.open = undefined;
    // The carry may exceed its bound by one read's accounts before it is written out and dropped.
    if (this.overflowing) {
      batch.balanceRows = this.takeUnwritten(batch.position);
      this.balances.clear();
      this.complete = false;
    }
    return batch;
  }

  /** Applies a prepared batch and advances the shadow checkpoint, in `trx`. */
  async write(trx: Knex.Transaction, batch: PreparedBatch): Promise<void> {
    await lockCheckpoint(trx, this.schema, batch.expected);
    await writeLedgerRows(trx, this.schema, batch.rows);
    await upsertBalances(trx, this.schema, batch.balanceRows);
    await applyEntityViews(trx, this.schema, batch.viewEvents);
    await advanceCheckpoint(trx, this.schema, batch.position, batch.applied);
  }

  /**
   * Writes every balance changed since the last write, so the table matches `position`, the last
   * prepared batch's (every prepared batch must have committed).
   */
  async flush(trx: Knex.Transaction, position: bigint): Promise<void> {
    await upsertBalances(trx, this.schema, this.takeUnwritten(position));
  }

  /** Rows of the carried balances changed since the last write; the table will hold them as of `position`. */
  private takeUnwritten(position: bigint): CellValue[][] {
    const unwritten: BalanceRow[] = [];
    for (const b of this.balances.values()) if (b.lastPosition > this.writtenThrough) unwritten.push(b);
    this.writtenThrough = position;
    return balanceRowsOf(unwritten);
  }
}

/**
 * Brings a schema's balances up to its postings: each account's balance is its last posting's totals,
 * available, version, position and time. For a shadow whose deferred balances a crash left behind.
 */
export async function rederiveBalances(trx: Knex.Transaction, schema: ReadModelSchema): Promise<void> {
  const names = BALANCE_COLUMNS.map(([n]) => n);
  const updates = names
    .filter((n) => !['tenant_id', 'account', 'currency'].includes(n))
    .map((n) => `${n} = excluded.${n}`);
  await trx.raw(`
    INSERT INTO ${schema}.balances (${names.join(', ')})
    SELECT DISTINCT ON (tenant_id, account, currency)
           tenant_id, account, currency, debits_pending, debits_posted, credits_pending, credits_posted,
           available, version, position, occurred_at
      FROM ${schema}.postings
     ORDER BY tenant_id, account, currency, position DESC, line DESC
    ON CONFLICT (tenant_id, account, currency) DO UPDATE SET ${updates.join(', ')}
     WHERE ${schema}.balances.last_position < excluded.last_position`);
}
