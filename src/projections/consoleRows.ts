import type { Knex } from 'knex';
import type { DecodedEvent } from '../domain/events.js';
import { activeWalletOf, type MetricDelta, metricDeltasOf, sumDeltas } from './dailyMetrics.js';
import { referencesOf, searchTermOf } from './references.js';
import type { ReadModelSchema } from './schema.js';
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

/**
 * The rows a batch adds to the console's read models (schema.ts, createConsoleReadModelTables),
 * folded with the rest of the batch (ledgerProjection.ts foldBatch) and written in its transaction,
 * before the checkpoint moves. Every write merges in a way that does not depend on where batches
 * begin and end (first/last by position, sums), so a rebuild in different batches writes the same bytes.
 */
export interface ConsoleRows {
  refs: RowBuffer;
  /** search_terms rows by (tenant, kind, ref). */
  terms: Map<string, SearchTermRow>;
  metrics: Map<string, MetricDelta>;
  /** daily_active_wallets rows by key. */
  wallets: Map<string, [string, string, string]>;
}

interface SearchTermRow {
  tenantId: string;
  kind: string;
  ref: string;
  term: string;
  firstPosition: string;
  firstEventType: string;
  lastPosition: string;
  lastEventType: string;
  lastOccurredAt: string;
  events: number;
}

export const EVENT_REF_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['kind', 'text'],
  ['ref', 'text'],
  ['position', 'int8'],
];
const SEARCH_TERM_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['kind', 'text'],
  ['ref', 'text'],
  ['term', 'text'],
  ['first_position', 'int8'],
  ['first_event_type', 'text'],
  ['last_position', 'int8'],
  ['last_event_type', 'text'],
  ['last_occurred_at', 'timestamptz'],
  ['events', 'int8'],
];
const METRIC_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['day', 'date'],
  ['currency', 'text'],
  ['metric', 'text'],
  ['amount', 'int8'],
  ['count', 'int8'],
];
const WALLET_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['day', 'date'],
  ['student_id', 'text'],
];

export function consoleRowBuffers(method: BulkLoadMethod): ConsoleRows {
  return {
    refs: rowBuffer(method, EVENT_REF_COLUMNS),
    terms: new Map(),
    metrics: new Map(),
    wallets: new Map(),
  };
}

/** Adds one event's rows. No I/O. */
export function foldConsoleRows(event: DecodedEvent, rows: ConsoleRows): void {
  const { tenantId } = event;
  const position = int8(event.position);
  for (const reference of referencesOf(event)) {
    rows.refs.add([tenantId, reference.kind, reference.id, position]);
    const key = `${tenantId}\u0000${reference.kind}\u0000${reference.id}`;
    const term = rows.terms.get(key);
    if (term) {
      term.lastPosition = position;
      term.lastEventType = event.type;
      term.lastOccurredAt = event.metadata.occurredAt;
      term.events++;
    } else {
      rows.terms.set(key, {
        tenantId,
        kind: reference.kind,
        ref: reference.id,
        term: searchTermOf(reference),
        firstPosition: position,
        firstEventType: event.type,
        lastPosition: position,
        lastEventType: event.type,
        lastOccurredAt: event.metadata.occurredAt,
        events: 1,
      });
    }
  }
  sumDeltas(metricDeltasOf(event), rows.metrics);
  const wallet = activeWalletOf(event);
  if (wallet) {
    rows.wallets.set(`${wallet.tenantId}\u0000${wallet.day}\u0000${wallet.studentId}`, [
      wallet.tenantId,
      wallet.day,
      wallet.studentId,
    ]);
  }
}

/** Upsert chunk bound (a rebuild batch may carry tens of thousands of terms). */
const CHUNK_ROWS = 10_000;

async function chunked(rows: CellValue[][], write: (chunk: CellValue[][]) => Promise<void>): Promise<void> {
  for (let from = 0; from < rows.length; from += CHUNK_ROWS) await write(rows.slice(from, from + CHUNK_ROWS));
}

export async function writeConsoleRows(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  rows: ConsoleRows,
): Promise<void> {
  await appendRows(trx, `${schema}.event_refs`, rows.refs);
  const terms = [...rows.terms.values()].map((t) => [
    t.tenantId,
    t.kind,
    t.ref,
    t.term,
    t.firstPosition,
    t.firstEventType,
    t.lastPosition,
    t.lastEventType,
    t.lastOccurredAt,
    t.events,
  ]);
  await chunked(terms, (chunk) =>
    insertRows(
      trx,
      `${schema}.search_terms`,
      SEARCH_TERM_COLUMNS,
      chunk,
      `ON CONFLICT (tenant_id, kind, ref) DO UPDATE SET
         last_position = excluded.last_position, last_event_type = excluded.last_event_type,
         last_occurred_at = excluded.last_occurred_at,
         events = ${schema}.search_terms.events + excluded.events`,
    ),
  );
  const metrics = [...rows.metrics.values()].map((m) => [
    m.tenantId,
    m.day,
    m.currency,
    m.metric,
    m.amount,
    m.count,
  ]);
  await chunked(metrics, (chunk) =>
    insertRows(
      trx,
      `${schema}.daily_metrics`,
      METRIC_COLUMNS,
      chunk,
      `ON CONFLICT (tenant_id, day, currency, metric) DO UPDATE SET
         amount = ${schema}.daily_metrics.amount + excluded.amount,
         count = ${schema}.daily_metrics.count + excluded.count`,
    ),
  );
  await chunked([...rows.wallets.values()], (chunk) =>
    insertRows(trx, `${schema}.daily_active_wallets`, WALLET_COLUMNS, chunk, 'ON CONFLICT DO NOTHING'),
  );
}
