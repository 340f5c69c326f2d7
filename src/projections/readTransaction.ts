import type { Knex } from 'knex';
import { DomainError } from '../domain/errors.js';
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
