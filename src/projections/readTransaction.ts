import type { Knex } from 'knex';
import { escapeLiteral } from 'pg';
import type { Database, SqlRow } from '../db/database.js';
import { DomainError, invariant } from '../domain/errors.js';
import { TENANT_ID_PATTERN } from '../domain/ids.js';
import { APP_ROLE } from './schema.js';

export function assertTenantId(tenantId: string): void {
  if (!TENANT_ID_PATTERN.test(tenantId)) {
    throw new DomainError('validation_failed', 'tenantId must be 1-40 characters of [a-z0-9_]', {
      field: 'tenantId',
    });
  }
}

/**
 * Runs a read as the non-superuser `ledger_app` with the tenant set for this transaction only, so
 * row-level security filters every read-model table to that tenant even if a query forgets its own
 * `tenant_id` predicate. Both settings are transaction-local (`set_config(..., true)`), so a pooled
 * connection carries nothing over to the next user. Works the same on Postgres and PGlite (PGlite runs
 * as a superuser, and SET ROLE drops that for the transaction just as on Postgres).
 *
 * Reads whose statements do not depend on each other's results use queryAsTenant instead (one round
 * trip instead of four).
 */
export async function readAsTenant<T>(
  knex: Knex,
  tenantId: string,
  fn: (trx: Knex.Transaction) => Promise<T>,
): Promise<T> {
  assertTenantId(tenantId);
  return knex.transaction(async (trx) => {
    // No separate SET TRANSACTION READ ONLY round trip: ledger_app holds SELECT grants only.
    await trx.raw(`SELECT set_config('role', ?, true), set_config('app.tenant_id', ?, true)`, [
      APP_ROLE,
      tenantId,
    ]);
    return fn(trx);
  });
}

/** A statement with `?` placeholders and its values (inlined as literals by queryAsTenant). */
export interface TenantStatement {
  sql: string;
  bindings: readonly SqlValue[];
}

export type SqlValue = string | number | bigint;

/** Longest string value inlined into a read (ids, accounts, cursors and filters are far shorter). */
const MAX_LITERAL_CHARS = 1_000;

/**
 * The same guarantee as readAsTenant in ONE round trip: the role switch, the tenant setting and the
 * statements travel as one simple-protocol message, which Postgres (and PGlite) runs as one implicit
 * transaction. So:
 *  - every statement runs as `ledger_app` under forced RLS with this tenant (set_config(..., true) lasts
 *    until the implicit transaction ends, i.e. the end of this message);
 *  - at the end of the message the transaction commits (or, on the first error, rolls back), both
 *    settings revert, and the pooled connection carries nothing over to its next user;
 *  - the message never contains transaction control, so nothing can extend the transaction past it.
 * The simple protocol has no parameters, so values are inlined as literals: strings only after a strict
 * check (bounded length, no NUL or other control characters) and then through the driver's
 * escapeLiteral, integers only when they are safe integers. The SQL text itself is always a constant of
 * this codebase, in which `?` appears only as a placeholder.
 */
export async function queryAsTenant(
  db: Database,
  tenantId: string,
  statements: readonly TenantStatement[],
): Promise<SqlRow[][]> {
  const [rows] = await queryManyAsTenants(db, [{ tenantId, statements }]);
  return rows!;
}

/** One tenant read: its statements, answered together. */
export interface TenantRead {
  tenantId: string;
  statements: readonly TenantStatement[];
}

/**
 * Several tenant reads in ONE message (one round trip): the role is switched once, then each read sets
 * its own tenant right before its statements. Row-level security evaluates the tenant setting when
 * each statement runs, so every statement sees exactly the tenant of its own read, as if the reads had
 * been sent one by one; and as in queryAsTenant, everything ends with the message's implicit
 * transaction. A failing statement fails the whole message (the caller decides whether to retry reads
 * alone). Returns each read's statements' rows.
 */
export async function queryManyAsTenants(db: Database, reads: readonly TenantRead[]): Promise<SqlRow[][][]> {
  return sendInlinedReads(db, reads.map(inlineRead));
}

/** A tenant read checked and with its values inlined: the SQL text of its statements. */
interface InlinedRead {
  tenantId: string;
  sqls: readonly string[];
}

/** Checks a read and inlines its values once (queued reads keep the result, not the bindings). */
function inlineRead(read: TenantRead): InlinedRead {
  assertTenantId(read.tenantId);
  invariant(read.statements.length > 0, 'a tenant read needs at least one statement');
  return { tenantId: read.tenantId, sqls: read.statements.map((s) => inlineBindings(s.sql, s.bindings)) };
}

async function sendInlinedReads(db: Database, reads: readonly InlinedRead[]): Promise<SqlRow[][][]> {
  invariant(reads.length > 0, 'queryManyAsTenants needs at least one read');
  const parts = [`SELECT set_config('role', ${escapeLiteral(APP_ROLE)}, true)`];
  for (const read of reads) {
    parts.push(`SELECT set_config('app.tenant_id', ${escapeLiteral(read.tenantId)}, true)`);
    parts.push(...read.sqls);
  }
  const results = await db.simpleQuery(parts.join(';\n'));
  invariant(
    results.length === parts.length,
    `queryManyAsTenants: ${results.length} results for ${parts.length} statements`,
  );
  const out: SqlRow[][][] = [];
  let next = 1;
  for (const read of reads) {
    next++; // the tenant setting
    out.push(results.slice(next, next + read.sqls.length));
    next += read.sqls.length;
  }
  return out;
}

/** Too many reads are already waiting for Postgres in this process: shed load (the API answers 503). */
export class ReadQueueFullError extends Error {
  readonly code = 'read_queue_full';
  constructor(readonly queued: number) {
    super(`read queue full (${queued} reads waiting)`);
    this.name = 'ReadQueueFullError';
  }
}

export interface TenantReadBatcherOptions {
  /** Messages in flight at once (each holds one pooled connection while it runs). */
  maxConcurrentMessages?: number;
  /** Reads coalesced into one message at most. */
  maxReadsPerMessage?: number;
  /** Reads waiting for a message at most; beyond it a read fails fast instead of queueing. */
  maxQueuedReads?: number;
}

interface QueuedRead extends InlinedRead {
  resolve: (rows: SqlRow[][]) => void;
  reject: (error: unknown) => void;
}

// Two messages in flight keep two Postgres backends busy while batching does the rest; on the 2-core
// benchmark machine 2 lanes did as well as 4 and better than 8 (more lanes mean smaller batches).
const BATCHER_DEFAULTS = { maxConcurrentMessages: 2, maxReadsPerMessage: 32, maxQueuedReads: 10_000 };

/**
 * Group read, the read-side twin of the event store's group commit: a read goes out at once when fewer
 * than maxConcurrentMessages messages are in flight; otherwise it waits, and the next free slot takes
 * every waiting read (bounded) into one message (queryManyAsTenants). Under load a round trip then
 * answers many reads, which matters because a socket write, not the query, is most of a read's cost.
 * If a message fails, each of its reads is retried alone once, so one bad read cannot fail the reads
 * that happened to travel with it (reads change nothing, so the retry is safe).
 */
export class TenantReadBatcher {
  private readonly settings: typeof BATCHER_DEFAULTS;
  private readonly queue: QueuedRead[] = [];
  private inFlight = 0;

  constructor(
    private readonly db: Database,
    options: TenantReadBatcherOptions = {},
  ) {
    this.settings = {
      maxConcurrentMessages: options.maxConcurrentMessages ?? BATCHER_DEFAULTS.maxConcurrentMessages,
      maxReadsPerMessage: options.maxReadsPerMessage ?? BATCHER_DEFAULTS.maxReadsPerMessage,
      maxQueuedReads: options.maxQueuedReads ?? BATCHER_DEFAULTS.maxQueuedReads,
    };
    const { maxConcurrentMessages, maxReadsPerMessage, maxQueuedReads } = this.settings;
    invariant(
      maxConcurrentMessages >= 1 && maxReadsPerMessage >= 1 && maxQueuedReads >= 1,
      'TenantReadBatcher bounds must be >= 1',
    );
  }

  read(tenantId: string, statements: readonly TenantStatement[]): Promise<SqlRow[][]> {
    let inlined: InlinedRead;
    try {
      // Checked and inlined before queueing, so a bad read fails alone and at once.
      inlined = inlineRead({ tenantId, statements });
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.queue.length >= this.settings.maxQueuedReads) {
      return Promise.reject(new ReadQueueFullError(this.queue.length));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ ...inlined, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.settings.maxConcurrentMessages && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.settings.maxReadsPerMessage);
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async send(batch: QueuedRead[]): Promise<void> {
    try {
      const rows = await sendInlinedReads(this.db, batch);
      batch.forEach((read, i) => {
        read.resolve(rows[i]!);
      });
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // Concurrently (the pool bounds the connections), so one slow read that failed the message (a
      // statement timeout, say) does not hold every read that travelled with it for as long again.
      await Promise.all(
        batch.map(async (read) => {
          try {
            const [rows] = await sendInlinedReads(this.db, [read]);
            read.resolve(rows!);
          } catch (alone) {
            read.reject(alone);
          }
        }),
      );
    }
  }
}

/** Replaces each `?` of `sql` by the matching value as a SQL literal (see queryAsTenant for the rules). */
export function inlineBindings(sql: string, bindings: readonly SqlValue[]): string {
  invariant(!sql.includes(';'), 'a tenant statement is a single statement');
  const parts = sql.split('?');
  invariant(
    parts.length === bindings.length + 1,
    `statement has ${parts.length - 1} placeholders for ${bindings.length} values`,
  );
  let out = parts[0]!;
  bindings.forEach((value, i) => {
    out += sqlLiteral(value) + parts[i + 1]!;
  });
  return out;
}

function sqlLiteral(value: SqlValue): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    invariant(Number.isSafeInteger(value), `only safe integers are inlined, got ${value}`);
    return String(value);
  }
  // Control characters (NUL above all, which Postgres text cannot hold) never reach the SQL text.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to refuse them
  if (value.length > MAX_LITERAL_CHARS || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new DomainError('validation_failed', 'value not allowed in a query', { length: value.length });
  }
  return escapeLiteral(value);
}
