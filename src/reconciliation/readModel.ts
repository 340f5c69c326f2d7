import type { Database } from '../db/database.js';
import type { EventStore } from '../eventstore/port.js';
import { StreamNotFoundError } from '../eventstore/port.js';
import type {
  ReconciliationItem,
  ReconciliationRun,
  ReconciliationScope,
  ReconciliationSummary,
} from './types.js';

/** Where runs are kept for GET /v1/reconciliation/runs/{id}. */
export interface ReconciliationReadModel {
  started(tenantId: string, runId: string, scope: ReconciliationScope, startedAt: string): Promise<void>;
  items(tenantId: string, runId: string, chunk: number, items: ReconciliationItem[]): Promise<void>;
  completed(
    tenantId: string,
    runId: string,
    summary: ReconciliationSummary,
    completedAt: string,
  ): Promise<void>;
  failed(tenantId: string, runId: string, error: string, failedAt: string): Promise<void>;
  get(tenantId: string, runId: string, options: { maxItems: number }): Promise<ReconciliationRun | null>;
}

const ITEM_SEQ_PER_CHUNK = 1_000;

/** Postgres tables reconciliation_runs / reconciliation_items (migration 0041). */
export class PostgresReconciliationReadModel implements ReconciliationReadModel {
  constructor(private readonly db: Database) {}

  async started(
    tenantId: string,
    runId: string,
    scope: ReconciliationScope,
    startedAt: string,
  ): Promise<void> {
    await this.db
      .knex('reconciliation_runs')
      .insert({
        tenant_id: tenantId,
        run_id: runId,
        status: 'running',
        scope: JSON.stringify(scope),
        started_at: startedAt,
      })
      .onConflict(['tenant_id', 'run_id'])
      .ignore();
  }

  async items(tenantId: string, runId: string, chunk: number, items: ReconciliationItem[]): Promise<void> {
    if (items.length === 0) return;
    await this.db
      .knex('reconciliation_items')
      .insert(
        items.map((i, n) => ({
          tenant_id: tenantId,
          run_id: runId,
          seq: chunk * ITEM_SEQ_PER_CHUNK + n,
          classification: i.classification,
          stripe_object_id: i.stripeObjectId,
          balance_transaction_id: i.balanceTransactionId,
          currency: i.currency,
          stripe_amount: i.stripeAmount,
          ledger_amount: i.ledgerAmount,
          stripe_fee: i.stripeFee,
          ledger_fee: i.ledgerFee,
          detail: JSON.stringify({ type: i.type, feeBooked: i.feeBooked, detail: i.detail }),
        })),
      )
      .onConflict(['tenant_id', 'run_id', 'seq'])
      .ignore();
  }

  async completed(
    tenantId: string,
    runId: string,
    summary: ReconciliationSummary,
    completedAt: string,
  ): Promise<void> {
    await this.db
      .knex('reconciliation_runs')
      .where({ tenant_id: tenantId, run_id: runId })
      .update({ status: 'completed', completed_at: completedAt, summary: JSON.stringify(summary) });
  }

  async failed(tenantId: string, runId: string, error: string, failedAt: string): Promise<void> {
    await this.db
      .knex('reconciliation_runs')
      .where({ tenant_id: tenantId, run_id: runId })
      .update({ status: 'failed', completed_at: failedAt, error });
  }

  async get(
    tenantId: string,
    runId: string,
    options: { maxItems: number },
  ): Promise<ReconciliationRun | null> {
    const run = await this.db
      .knex('reconciliation_runs')
      .where({ tenant_id: tenantId, run_id: runId })
      .first();
    if (!run) return null;
    const rows = await this.db
      .knex('reconciliation_items')
      .where({ tenant_id: tenantId, run_id: runId })
      .orderBy('seq')
      .limit(options.maxItems);
    const parse = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
    return {
      runId,
      tenantId,
      status: run.status,
      scope: parse<ReconciliationScope>(run.scope),
      startedAt: new Date(run.started_at).toISOString(),
      completedAt: run.completed_at ? new Date(run.completed_at).toISOString() : null,
      summary: run.summary ? parse<ReconciliationSummary>(run.summary) : null,
      error: run.error ?? null,
      items: rows.map((r) => {
        const d = parse<{ type: string | null; feeBooked: boolean; detail: string }>(r.detail);
        return {
          classification: r.classification,
          stripeObjectId: r.stripe_object_id,
          balanceTransactionId: r.balance_transaction_id,
          type: d.type,
          currency: r.currency,
          stripeAmount: r.stripe_amount,
          ledgerAmount: r.ledger_amount,
          stripeFee: r.stripe_fee,
          ledgerFee: r.ledger_fee,
          feeBooked: d.feeBooked,
          detail: d.detail,
        };
      }),
    };
  }
}

/** Rebuilds a run from its events (no database needed: the embedded default and tests). */
export async function loadRunFromEvents(
  store: EventStore,
  tenantId: string,
  runId: string,
  options: { maxItems: number },
): Promise<ReconciliationRun | null> {
  let events: Awaited<ReturnType<EventStore['readStream']>>;
  try {
    events = await store.readStream(`reconciliation-${tenantId}.${runId}`, { maxCount: 10_000 });
  } catch (error) {
    if (error instanceof StreamNotFoundError) return null;
    throw error;
  }
  let run: ReconciliationRun | null = null;
  for (const e of events) {
    const d = e.data as Record<string, unknown>;
    if (e.type === 'ReconciliationRunStarted') {
      run = {
        runId,
        tenantId,
        status: 'running',
        scope: d.scope as unknown as ReconciliationScope,
        startedAt: String(d.startedAt),
        completedAt: null,
        summary: null,
        error: null,
        items: [],
      };
    } else if (run && e.type === 'ReconciliationItemsRecorded') {
      for (const item of d.items as unknown as ReconciliationItem[]) {
        if (run.items.length < options.maxItems) run.items.push(item);
      }
    } else if (run && e.type === 'ReconciliationRunCompleted') {
      run.status = 'completed';
      run.summary = d.summary as unknown as ReconciliationSummary;
      run.completedAt = String(d.completedAt);
    } else if (run && e.type === 'ReconciliationRunFailed') {
      run.status = 'failed';
      run.error = String(d.error);
      run.completedAt = String(d.failedAt);
    }
  }
  return run;
}
