import type { Knex } from 'knex';
import { escapeLiteral } from 'pg';
import type { Database, SqlRow } from '../db/database.js';
import { DomainError, invariant } from '../domain/errors.js';
import { TENANT_ID_PATTERN } from '../domain/validation-patterns.js';
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
  assertTenantId(tenantId);
  invariant(statements.length > 0, 'queryAsTenant needs at least one statement');
  const message = [
    `SELECT set_config('role', ${escapeLiteral(APP_ROLE)}, true), set_config('app.tenant_id', ${escapeLiteral(tenantId)}, true)`,
    ...statements.map((s) => inlineBindings(s.sql, s.bindings)),
  ].join(';\n');
  const results = await db.simpleQuery(message);
  invariant(
    results.length === statements.length + 1,
    `queryAsTenant: ${results.length} results for ${statements.length + 1} statements`,
  );
  return results.slice(1);
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
