/** Reconciliation results shared by the reconciler, its read model, the HTTP routes and the CLI. */
export type Classification =
  | 'matched'
  | 'missing_in_ledger'
  | 'missing_in_stripe'
  | 'amount_mismatch'
  | 'unbooked_fee';

/** An exception (anything but a clean match). Matched transactions are counted, not listed. */
export interface ReconciliationItem {
  classification: Exclude<Classification, 'matched'>;
  /** pi_/re_/tr_/po_/dp_ id the match was attempted on (null when the transaction had no source). */
  stripeObjectId: string | null;
  balanceTransactionId: string | null;
  type: string | null;
  currency: string;
  stripeAmount: number | null;
  ledgerAmount: number | null;
  stripeFee: number | null;
  ledgerFee: number | null;
  /** For unbooked fees: whether this run booked it (Dr platform:expense:stripe-fees, Cr stripe:balance). */
  feeBooked: boolean;
  detail: string;
}

export type ReconciliationScope =
  | { kind: 'range'; from: string; to: string }
  | { kind: 'payout'; payout: string; connectedAccountId: string | null };

export interface DriftRow {
  currency: string;
  ledger: number;
  stripe: number;
  /** ledger - stripe; 0 when they agree. */
  difference: number;
}

export interface ReconciliationSummary {
  scanned: number;
  matched: number;
  missingInLedger: number;
  missingInStripe: number;
  amountMismatch: number;
  unbookedFee: number;
  feesBooked: number;
  /** Transactions that are not ledger facts (e.g. a connected account's incoming payment). */
  ignored: number;
  /** Transactions whose metadata names another tenant. */
  otherTenant: number;
  itemsRecorded: number;
  /** More exceptions than maxItems: the rest are counted, not listed. */
  truncated: boolean;
  drift: DriftRow[];
  durationMs: number;
}

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
