/**
 * Shapes of the API answers the console reads. The finance endpoints' types come straight from their
 * TypeBox schemas (src/api/financeSchemas.ts imports nothing but TypeBox, so the browser build checks
 * against the same definitions the server validates with); the older ones are restated here as the
 * OpenAPI document gives them.
 */
export type {
  AccountPageOut as AccountPage,
  AccountSummaryOut as AccountSummary,
  AdjustmentProposalApprovedOut as AdjustmentProposalApproved,
  AdjustmentProposalCreatedOut as AdjustmentProposalCreated,
  AdjustmentProposalListOut as AdjustmentProposalList,
  AdjustmentProposalOut as AdjustmentProposal,
  AnalyticsReportOut as AnalyticsReport,
  AuditEventOut as AuditEvent,
  BalanceSeriesOut as BalanceSeries,
  CausalChainOut as CausalChain,
  JournalPageOut as JournalPage,
  LedgerEventOut as LedgerEvent,
  OpenClearingOut as OpenClearing,
  SearchResultsOut as SearchResults,
  StatementEntryOut as StatementEntry,
  StatementOut as Statement,
  StoryEventOut as StoryEvent,
  StoryOut as Story,
  TrialBalanceGroupsOut as TrialBalanceGroups,
} from '../../src/api/financeSchemas';

export interface TrialBalance {
  balanced: boolean;
  currencies: Array<{
    currency: string;
    debitsPosted: number;
    creditsPosted: number;
    debitsPending: number;
    creditsPending: number;
    postedDifference: number;
    pendingDifference: number;
  }>;
}

export interface AccountBalance {
  account: string;
  currency: string;
  debitsPending: number;
  debitsPosted: number;
  creditsPending: number;
  creditsPosted: number;
  available: number;
  version: number;
  position: string;
}

export interface EntryDetail {
  entryId: string;
  position: string;
  occurredAt: string;
  description: string;
  holdId: string | null;
  eventId: string;
  eventType: string;
  streamName: string;
  correlationId: string;
  causationId: string;
  actor: { id: string; role: string };
  postings: Array<{
    account: string;
    side: 'debit' | 'credit';
    effect: 'post' | 'hold' | 'release';
    amount: number;
    currency: string;
  }>;
  chain: Array<{
    eventId: string;
    eventType: string;
    streamName: string;
    position: string;
    occurredAt: string;
  }>;
}

/** GET /v1/documents (DocumentList) and GET /v1/documents/{id} (Document): src/api/routes/documents.ts. */
export interface DocumentSummary {
  documentId: string;
  kind: 'receipt' | 'refund_receipt' | 'invoice' | 'credit_note';
  number: string;
  seriesId: string;
  sequence: number;
  owner: { kind: string; id: string };
  issuedAt: string;
  currency: string;
  total: number;
  subject: { kind: string; id: string };
  references: { documentId: string; number: string } | null;
  position: string;
}

export interface DocumentList {
  items: DocumentSummary[];
  nextCursor: string | null;
}

interface DocumentParty {
  kind: string;
  id: string;
  name: string;
  address: string[];
  taxId: string | null;
}

export interface DocumentDetail extends DocumentSummary {
  issuer: DocumentParty;
  recipient: DocumentParty;
  locale: string;
  lines: Array<{ description: string; amount: number; taxAmount: number }>;
  subtotal: number;
  tax: number;
  taxRate: { rateBps: number; inclusive: boolean } | null;
  settlement: string;
  source: { eventId: string; eventType: string };
  pdfSha256: string;
}
