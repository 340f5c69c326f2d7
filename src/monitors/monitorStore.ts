import type { Database } from '../db/database.js';
import type { BalanceCondition, BalanceMonitorDefinition } from '../domain/balanceMonitor.js';

/**
 * The balance monitors' definitions by account (table balance_monitors): what the evaluator looks up
 * for every posting, and what the API lists. Written from the monitors' own events (by the evaluator,
 * in log order, and by the API right after its append, so a list shows a monitor at once); both
 * writes are idempotent. The monitors' state (triggered or not) is in their streams, not here.
 */
export interface MonitorRow extends BalanceMonitorDefinition {
  tenantId: string;
  createdPosition: bigint;
  deletedPosition: bigint | null;
}

type Row = Record<string, unknown>;

function rowOf(r: Row): MonitorRow {
  return {
    tenantId: String(r.tenant_id),
    monitorId: String(r.monitor_id),
    account: String(r.account),
    currency: (r.currency as string | null) ?? null,
    condition: { field: r.field, op: r.op, amount: Number(r.amount) } as BalanceCondition,
    description: (r.description as string | null) ?? null,
    createdAt: (r.created_at instanceof Date ? r.created_at : new Date(String(r.created_at))).toISOString(),
    createdPosition: BigInt(r.created_position as string),
    deletedPosition: r.deleted_position === null ? null : BigInt(r.deleted_position as string),
  };
}

export class MonitorStore {
  constructor(private readonly db: Database) {}

  async recordCreated(tenantId: string, monitor: BalanceMonitorDefinition, position: bigint): Promise<void> {
    await this.db
      .knex('balance_monitors')
      .insert({
        tenant_id: tenantId,
        monitor_id: monitor.monitorId,
        account: monitor.account,
        currency: monitor.currency,
        field: monitor.condition.field,
        op: monitor.condition.op,
        amount: monitor.condition.amount,
        description: monitor.description,
        created_position: position.toString(),
        created_at: monitor.createdAt,
      })
      .onConflict(['tenant_id', 'monitor_id'])
      .ignore();
  }

  async recordDeleted(tenantId: string, monitorId: string, position: bigint): Promise<void> {
    await this.db
      .knex('balance_monitors')
      .where({ tenant_id: tenantId, monitor_id: monitorId })
      .whereNull('deleted_position')
      .update({ deleted_position: position.toString() });
  }

  /** Every monitor not deleted (the evaluator's index; bounded by the per-tenant limit). */
  async active(): Promise<MonitorRow[]> {
    return ((await this.db.knex('balance_monitors').whereNull('deleted_position')) as Row[]).map(rowOf);
  }

  async countActive(tenantId: string): Promise<number> {
    const row = (await this.db
      .knex('balance_monitors')
      .where({ tenant_id: tenantId })
      .whereNull('deleted_position')
      .count({ n: '*' })
      .first()) as Row | undefined;
    return Number(row?.n ?? 0);
  }

  /** A tenant's monitors, oldest first, paged by monitor id after `after`. */
  async list(
    tenantId: string,
    options: { limit: number; after?: string; account?: string },
  ): Promise<MonitorRow[]> {
    let query = this.db
      .knex('balance_monitors')
      .where({ tenant_id: tenantId })
      .whereNull('deleted_position')
      .orderBy('monitor_id')
      .limit(options.limit);
    if (options.after) query = query.andWhere('monitor_id', '>', options.after);
    if (options.account) query = query.andWhere({ account: options.account });
    return ((await query) as Row[]).map(rowOf);
  }
}
