import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Database } from '../db/database.js';
import type { ClientMetadata } from '../domain/clientMetadata.js';
import { DomainError, invariant } from '../domain/errors.js';

/** A column for a set-based insert: its name and the Postgres array element type to cast to. */
export type Column = readonly [
  name: string,
  pgType: 'text' | 'int8' | 'int4' | 'timestamptz' | 'date' | 'jsonb',
];
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

/**
 * How append-only rows reach their table: `COPY … FROM STDIN` (text format) where it can, the
 * multi-row `unnest` INSERT otherwise. COPY skips the parameter arrays on both sides: no array literal
 * to escape in Node, none to parse in Postgres. The one place that chooses:
 *  - PGlite: INSERT (its COPY FROM STDIN needs a /dev/blob device that knex-pglite does not provide);
 *  - Postgres, connected as a role that bypasses row-level security (superuser or BYPASSRLS): COPY;
 *  - Postgres, any other role: INSERT. The read models FORCE row-level security (schema.ts), and
 *    Postgres refuses COPY FROM into such a table for a role subject to it (SQLSTATE 0A000, "COPY FROM
 *    not supported with row-level security"), whatever its policies allow.
 */
export type BulkLoadMethod = 'copy' | 'insert';

const bypassesRls = new WeakMap<Knex, Promise<boolean>>();

export async function bulkLoadMethodOf(db: Pick<Database, 'kind' | 'knex'>): Promise<BulkLoadMethod> {
  if (db.kind !== 'postgres') return 'insert';
  // The connecting role is fixed for the pool's life, so it is asked once per pool.
  let answer = bypassesRls.get(db.knex);
  if (!answer) {
    answer = db.knex
      .raw('SELECT (rolsuper OR rolbypassrls) AS bypass FROM pg_roles WHERE rolname = current_user')
      .then((r: { rows: Array<{ bypass: boolean }> }) => r.rows[0]?.bypass === true);
    bypassesRls.set(db.knex, answer);
    // A failed lookup is not remembered: the next batch asks again.
    answer.catch(() => bypassesRls.delete(db.knex));
  }
  return (await answer) ? 'copy' : 'insert';
}

/** Rows per CopyData chunk: bounds each string built in memory (a few hundred KB). */
const COPY_CHUNK_ROWS = 2_000;
const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_SPECIAL_ALL = /[\\\n\r\t]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One field in COPY text format: `\N` for NULL, backslash escapes for the four special characters. */
export function copyField(value: CellValue): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') return String(value);
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPES[c]!) : value;
}

/** One row in COPY text format (tab-separated fields), without its newline. */
export function copyLine(row: readonly CellValue[], width: number): string {
  if (row.length !== width) invariant(false, `COPY row has ${row.length} fields, expected ${width}`);
  // Joined once: measured 2x faster than growing one string field by field.
  const fields: string[] = new Array(width);
  for (let c = 0; c < width; c++) fields[c] = copyField(row[c] ?? null);
  return fields.join('\t');
}

/** A batch's rows for one table as the unnest INSERT takes them. */
export class InsertRowBuffer {
  readonly method = 'insert';
  readonly rows: CellValue[][] = [];
  constructor(readonly columns: readonly Column[]) {}
  get length(): number {
    return this.rows.length;
  }
  /** Takes ownership of `row`. */
  add(row: CellValue[]): void {
    this.rows.push(row);
  }
}

/**
 * A batch's rows for one table as COPY text, encoded as they arrive: the batch then keeps a few large
 * strings alive until it is written rather than an array and its field strings per row, which the
 * garbage collector would have to copy and promote.
 */
export class CopyRowBuffer {
  readonly method = 'copy';
  private readonly chunks: string[] = [];
  private lines: string[] = [];
  private count = 0;
  constructor(readonly columns: readonly Column[]) {}
  get length(): number {
    return this.count;
  }
  /** Encodes `row` at once; the array is not kept. */
  add(row: CellValue[]): void {
    this.lines.push(copyLine(row, this.columns.length));
    this.count++;
    if (this.lines.length >= COPY_CHUNK_ROWS) this.seal();
  }
  /** The COPY text: chunks of at most COPY_CHUNK_ROWS lines, each line ending in a newline. */
  text(): readonly string[] {
    this.seal();
    return this.chunks;
  }
  private seal(): void {
    if (this.lines.length === 0) return;
    this.chunks.push(`${this.lines.join('\n')}\n`);
    this.lines = [];
  }
}

export type RowBuffer = InsertRowBuffer | CopyRowBuffer;

export function rowBuffer(method: BulkLoadMethod, columns: readonly Column[]): RowBuffer {
  return method === 'copy' ? new CopyRowBuffer(columns) : new InsertRowBuffer(columns);
}

/** Appends a buffer's rows to `table` (no ON CONFLICT: for tables that only ever receive new rows). */
export async function appendRows(trx: Knex.Transaction, table: string, buffer: RowBuffer): Promise<void> {
  if (buffer.length === 0) return;
  if (buffer.method === 'insert') {
    await insertRows(trx, table, buffer.columns, buffer.rows);
    return;
  }
  const connection = await connectionOf(trx);
  const names = buffer.columns.map(([n]) => n).join(', ');
  const copy = connection.query(copyFrom(`COPY ${table} (${names}) FROM STDIN`));
  await pipeline(Readable.from(buffer.text()), copy);
}

/** The pg connection a knex transaction runs on (knex hands its transaction connection back). */
async function connectionOf(trx: Knex.Transaction): Promise<pg.ClientBase> {
  const client = trx.client as { acquireConnection(): Promise<unknown> };
  const connection = await client.acquireConnection();
  invariant(
    typeof connection === 'object' && connection !== null && 'query' in connection,
    'COPY needs a node-postgres connection',
  );
  return connection as pg.ClientBase;
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

/**
 * A journal entry's client_metadata column as the API returns it: `{}` for an entry without metadata
 * (NULL). The projection wrote it from a decoded event, so it is an object of strings.
 */
export function clientMetadataOf(value: unknown): ClientMetadata {
  if (value === null || value === undefined) return {};
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  invariant(
    typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed),
    'journal_entries.client_metadata holds an object',
  );
  return parsed as ClientMetadata;
}
