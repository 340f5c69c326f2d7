import type {
  ReconciliationItem,
  ReconciliationScope,
  ReconciliationSummary,
} from '../domain/reconciliationRun.js';

/**
 * Reconciliation results shared by the reconciler, its read model, the HTTP routes and the CLI. What a
 * run records (items, scope, summary, drift) is defined once, as the schemas of the run's events in
 * src/domain/reconciliationRun.ts.
 */
export type {
  Classification,
  DriftRow,
  ReconciliationItem,
  ReconciliationScope,
  ReconciliationSummary,
} from '../domain/reconciliationRun.js';

export interface ReconciliationRun {
  runId: string;
  tenantId: string;
  status: 'running' | 'completed' | 'failed';
  scope: ReconciliationScope;
  startedAt: string;
  completedAt: string | null;
  summary: ReconciliationSummary | null;
  error: string | null;
  items: ReconciliationItem[];
}
