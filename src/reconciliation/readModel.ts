import type { Database } from '../db/database.js';
import { decodeEventOf, EVENT_TYPES } from '../domain/events.js';
import { categoryPrefix, parseStreamName, reconciliationStream } from '../domain/streams.js';
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
  /** Runs of a tenant newest first (by startedAt, then runId), without their items. */
  list(tenantId: string, page: RunPageRequest): Promise<ReconciliationRun[]>;
}

/** A page of runs: at most `limit`, strictly older than `before` (the last run of the previous page). */
export interface RunPageRequest {
  limit: number;
  before?: { startedAt: string; runId: string };
}

/** Newest first: later startedAt first, then the larger runId. */
export function compareRunsNewestFirst(
  a: { startedAt: string; runId: string },
  b: { startedAt: string; runId: string },
): number {
  if (a.startedAt !== b.startedAt) return a.startedAt < b.startedAt ? 1 : -1;
  return a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0;
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

  async list(tenantId: string, page: RunPageRequest): Promise<ReconciliationRun[]> {
    let query = this.db.knex('reconciliation_runs').where({ tenant_id: tenantId });
    if (page.before) {
      const { startedAt, runId } = page.before;
      query = query.andWhere((q) =>
        q
          .where('started_at', '<', startedAt)
          .orWhere((same) => same.where('started_at', '=', startedAt).andWhere('run_id', '<', runId)),
      );
    }
    const rows = await query
      .orderBy([
        { column: 'started_at', order: 'desc' },
        { column: 'run_id', order: 'desc' },
      ])
      .limit(page.limit);
    return rows.map((run) => runOf(tenantId, run, []));
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
    return runOf(
      tenantId,
      run,
      rows.map((r) => {
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
    );
  }
}

const parse = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

/** A reconciliation_runs row as a run. */
function runOf(
  tenantId: string,
  run: Record<string, unknown>,
  items: ReconciliationItem[],
): ReconciliationRun {
  return {
    runId: String(run.run_id),
    tenantId,
    status: run.status as ReconciliationRun['status'],
    scope: parse<ReconciliationScope>(run.scope),
    startedAt: new Date(run.started_at as string).toISOString(),
    completedAt: run.completed_at ? new Date(run.completed_at as string).toISOString() : null,
    summary: run.summary ? parse<ReconciliationSummary>(run.summary) : null,
    error: (run.error as string | null) ?? null,
    items,
  };
}

/** Runs of a tenant rebuilt from their event streams (no read model), newest first, one page. */
export async function listRunsFromEvents(
  store: EventStore,
  tenantId: string,
  page: RunPageRequest,
): Promise<ReconciliationRun[]> {
  const runIds: string[] = [];
  let after: bigint | undefined;
  for (;;) {
    const batch = await store.readAll({
      ...(after !== undefined ? { after } : {}),
      maxCount: 1_000,
      filter: {
        streamNamePrefixes: [categoryPrefix('reconciliation', tenantId)],
        eventTypes: ['ReconciliationRunStarted'],
      },
    });
    for (const e of batch) {
      const id = parseStreamName(e.streamName)?.id;
      if (id) runIds.push(id);
    }
    const last = batch[batch.length - 1];
    if (!last || batch.length < 1_000) break;
    after = last.position;
  }
  const runs: ReconciliationRun[] = [];
  for (const runId of runIds) {
    const run = await loadRunFromEvents(store, tenantId, runId, { maxItems: 0 });
    if (run && (!page.before || compareRunsNewestFirst(page.before, run) < 0)) runs.push(run);
  }
  return runs.sort(compareRunsNewestFirst).slice(0, page.limit);
}

const RUN_EVENT_TYPES = EVENT_TYPES.reconciliation;

/** Rebuilds a run from its events (no database needed: the embedded default and tests). */
export async function loadRunFromEvents(
  store: EventStore,
  tenantId: string,
  runId: string,
  options: { maxItems: number },
): Promise<ReconciliationRun | null> {
  let events: Awaited<ReturnType<EventStore['readStream']>>;
  try {
    events = await store.readStream(reconciliationStream(tenantId, runId), { maxCount: 10_000 });
  } catch (error) {
    if (error instanceof StreamNotFoundError) return null;
    throw error;
  }
  let run: ReconciliationRun | null = null;
  for (const recorded of events) {
    const e = decodeEventOf(recorded, RUN_EVENT_TYPES);
    switch (e.type) {
      case 'ReconciliationRunStarted':
        run = {
          runId,
          tenantId,
          status: 'running',
          scope: e.data.scope,
          startedAt: e.data.startedAt,
          completedAt: null,
          summary: null,
          error: null,
          items: [],
        };
        break;
      case 'ReconciliationItemsRecorded':
        for (const item of e.data.items) {
          if (run && run.items.length < options.maxItems) run.items.push(item);
        }
        break;
      case 'ReconciliationRunCompleted':
        if (!run) break;
        run.status = 'completed';
        run.summary = e.data.summary;
        run.completedAt = e.data.completedAt;
        break;
      case 'ReconciliationRunFailed':
        if (!run) break;
        run.status = 'failed';
        run.error = e.data.error;
        run.completedAt = e.data.failedAt;
        break;
    }
  }
  return run;
}
