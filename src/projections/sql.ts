import type { Knex } from 'knex';
import { DomainError } from '../domain/errors.js';

/** A column for a set-based insert: its name and the Postgres array element type to cast to. */
export type Column = readonly [name: string, pgType: 'text' | 'int8' | 'int4' | 'timestamptz'];
export type CellValue = string | number | null;

/**
 * One multi-row INSERT per table per batch: every column travels as one array parameter and
 * `unnest` zips them back into rows. Far cheaper than a statement per row, and the statement text is
 * the same for every batch size.
 */
export async function insertRows(
  db: Knex | Knex.Transaction,
  table: string,
  columns: readonly Column[],
  rows: readonly CellValue[][],
  onConflict = '',
): Promise<void> {
  if (rows.length === 0) return;
  const arrays = columns.map((_, i) => rows.map((r) => r[i] ?? null));
  const names = columns.map(([n]) => n).join(', ');
  const unnest = columns.map(([, t]) => `?::${t}[]`).join(', ');
  await db.raw(
    `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${unnest}) ${onConflict}`,
    arrays as unknown as Knex.RawBinding[],
  );
}

/** Postgres int8 parameters travel as strings so no position ever passes through a float. */
export const int8 = (value: bigint | number): string => value.toString();

/** Bounded page size (1..200) for every list, as the LedgerQueries contract says. */
export function pageLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
    throw new DomainError('validation_failed', `limit must be an integer in 1..200, got ${limit}`, {
      field: 'limit',
    });
  }
  return limit;
}
