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
