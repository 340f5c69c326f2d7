import type { BookingView, PayoutView, TopUpView } from '../contracts/views.js';
import type { ClientMetadata } from '../domain/clientMetadata.js';
import type { Money } from '../domain/money.js';
import type { ProjectionStall } from './stalls.js';

/**
 * The read side as the API sees it, served from the Postgres read models (src/projections). Every
 * method is scoped to one tenant (and runs under row-level security for it). Lists are cursor-paged
 * with a bounded `limit` (1..200) and a stable order; `nextCursor` is null on the last page.
 * Positions are bigint here and strings in JSON.
 */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface AccountBalance {
  account: string;
  currency: string;
  debitsPending: number;
  debitsPosted: number;
  creditsPending: number;
  creditsPosted: number;
  /** Credit-normal: credits_posted - debits_posted - debits_pending; debit-normal: the mirror. */
  available: number;
  /** Number of entries applied to the account. */
  version: number;
  /** Global position of the last entry applied (-1 when none). */
  position: bigint;
}

export interface StatementLine {
  entryId: string;
  position: bigint;
  occurredAt: string;
  eventType: string;
  description: string;
  side: 'debit' | 'credit';
  effect: 'post' | 'hold' | 'release';
  amount: number;
  currency: string;
  /** Account balances after this line (running). */
  balanceAfter: { posted: number; pending: number; available: number };
  versionAfter: number;
  cause: { streamName: string; eventId: string; correlationId: string };
  actor: { id: string; role: string };
  /** The caller's metadata of the command that made the entry ({} when none). */
  metadata: ClientMetadata;
}

/** Entries whose metadata has every one of these key/value pairs (`?metadata[key]=value`). */
export type MetadataFilter = ClientMetadata;

export interface EntryDetail {
  entryId: string;
  position: bigint;
  occurredAt: string;
  description: string;
  holdId: string | null;
  eventId: string;
  eventType: string;
  streamName: string;
  correlationId: string;
  causationId: string;
  actor: { id: string; role: string };
  /** The caller's metadata of the command that made the entry ({} when none). */
  metadata: ClientMetadata;
  postings: Array<{
    account: string;
    side: 'debit' | 'credit';
    effect: 'post' | 'hold' | 'release';
    amount: number;
    currency: string;
  }>;
  /** Every event sharing the entry's correlation id, in position order. */
  chain: Array<{
    eventId: string;
    eventType: string;
    streamName: string;
    position: bigint;
    occurredAt: string;
  }>;
}

export interface WalletView {
  studentId: string;
  currency: string;
  available: number;
  pending: number;
  posted: number;
  version: number;
}

export interface TutorEarningsView {
  tutorId: string;
  currency: string;
  pending: number;
  available: number;
  receivable: number;
  paidOut: number;
}

export interface TrialBalanceRow {
  currency: string;
  debitsPosted: number;
  creditsPosted: number;
  debitsPending: number;
  creditsPending: number;
  /** debitsPosted - creditsPosted; must be 0. */
  postedDifference: number;
  pendingDifference: number;
}

export interface LedgerQueries {
  /** Resolves when the read models have applied `position` (true), or after timeoutMs (false). */
  waitForPosition(position: bigint, timeoutMs: number): Promise<boolean>;
  /** Position the slowest projection has applied (-1 when none). */
  projectedPosition(): Promise<bigint>;
  /**
   * Tenants whose read models are stopped at an event the projection cannot apply (stalls.ts): all of
   * them (read at most about once a second), or, fresh, the one of `tenantId`.
   */
  projectionStalls?(): Promise<ProjectionStall[]>;
  projectionStallOf?(tenantId: string): Promise<ProjectionStall | null>;

  getWallet(tenantId: string, studentId: string): Promise<WalletView | null>;
  getWalletTransactions(
    tenantId: string,
    studentId: string,
    page: { cursor?: string; limit: number; metadata?: MetadataFilter },
  ): Promise<Page<StatementLine>>;
  getBooking(tenantId: string, bookingId: string): Promise<BookingView | null>;
  getTopUp(tenantId: string, topUpId: string): Promise<TopUpView | null>;
  getPayout(tenantId: string, payoutId: string): Promise<PayoutView | null>;
  getTutorEarnings(tenantId: string, tutorId: string): Promise<TutorEarningsView | null>;

  /**
   * Balance now, or as of a global position, or as of an effective time as known at a time (one index
   * seek each; effectivePostings.ts).
   */
  getAccountBalance(
    tenantId: string,
    account: string,
    asOf?: { position: bigint } | { time: Date; knownAt?: Date },
  ): Promise<AccountBalance | null>;
  getAccountEntries(
    tenantId: string,
    account: string,
    page: { cursor?: string; limit: number; metadata?: MetadataFilter },
  ): Promise<Page<StatementLine>>;
  getEntry(tenantId: string, entryId: string): Promise<EntryDetail | null>;
  getTrialBalance(tenantId: string): Promise<TrialBalanceRow[]>;
  /** Currencies in which some account of the tenant has a non-zero posted or pending balance. */
  getCurrenciesHeld(tenantId: string): Promise<string[]>;

  listBookings(
    tenantId: string,
    filter: { studentId?: string; tutorId?: string; status?: string },
    page: { cursor?: string; limit: number },
  ): Promise<Page<BookingView>>;
  listPayouts(
    tenantId: string,
    filter: { tutorId?: string; status?: string },
    page: { cursor?: string; limit: number },
  ): Promise<Page<PayoutView>>;
}

export type { Money };
