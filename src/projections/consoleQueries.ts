import type { Database, SqlRow } from '../db/database.js';
import { describeAccount, parseAccount } from '../domain/accounts.js';
import type { ClientMetadata } from '../domain/clientMetadata.js';
import { DomainError, invariant } from '../domain/errors.js';
import type { Side } from '../domain/journal.js';
import { availableOf, normalSideOf, pendingOf, postedOf, type Totals } from './balances.js';
import { METRICS, type Metric } from './dailyMetrics.js';
import { readCheckpoint } from './ledgerProjection.js';
import type { MetadataFilter, Page } from './ledgerQueries.js';
import { type SqlValue, TenantReadBatcher } from './readTransaction.js';
import { type ReferenceKind, STRIPE_OBJECT_ID } from './references.js';
import { LIVE_SCHEMA } from './schema.js';
import { clientMetadataOf, int8, pageLimit } from './sql.js';

/**
 * The finance console's reads, over the read models (the projection's tables, including the console's
 * own: search_terms, event_refs, daily_metrics, daily_active_wallets). Like PostgresLedgerQueries, every
 * read runs as `ledger_app` under row-level security for one tenant (readTransaction.ts) and names the
 * tenant explicitly so the indexes are used; every list is bounded and keyset-paged.
 */
const S = LIVE_SCHEMA;
type Row = SqlRow;

export type AccountKind = 'asset' | 'liability' | 'revenue' | 'expense' | 'clearing';
export const ACCOUNT_KINDS: readonly AccountKind[] = ['asset', 'liability', 'revenue', 'expense', 'clearing'];

/** LIKE patterns of the account paths of each kind (accounts.ts describeAccount is the source of truth). */
const KIND_PATTERNS: Record<AccountKind, string[]> = {
  liability: ['student:%:wallet', 'tutor:%:earnings:pending', 'tutor:%:earnings:available'],
  asset: ['tutor:%:receivable', 'stripe:balance'],
  revenue: ['platform:revenue:%'],
  expense: ['platform:expense:%', 'platform:adjustments'],
  clearing: ['clearing:%'],
};

export interface AccountSummary {
  account: string;
  currency: string;
  kind: AccountKind | 'unknown';
  normalSide: Side;
  posted: number;
  pending: number;
  available: number;
  debitsPosted: number;
  creditsPosted: number;
  debitsPending: number;
  creditsPending: number;
  version: number;
  lastPosition: bigint;
  lastOccurredAt: string;
}

export interface SearchResult {
  kind: ReferenceKind | 'entry' | 'event' | 'account';
  id: string;
  /** The stream the thing lives in, when it has its own. */
  streamName: string | null;
  firstEventType: string | null;
  lastEventType: string | null;
  lastOccurredAt: string | null;
  events: number;
  lastPosition: bigint | null;
  /** For accounts: their currency. */
  currency: string | null;
}

export interface StatementEntry {
  entryId: string;
  position: bigint;
  /** When the ledger recorded it. */
  occurredAt: string;
  /** When it happened (effectivePostings.ts); the statement is in this order. */
  effectiveAt: string;
  eventType: string;
  description: string;
  /** Net change of the account's balances by this entry (all its lines on the account together). */
  change: { posted: number; pending: number; available: number };
  lines: Array<{ side: Side; effect: 'post' | 'hold' | 'release'; amount: number }>;
  balanceAfter: { posted: number; pending: number; available: number };
  versionAfter: number;
  cause: { streamName: string; eventId: string; correlationId: string };
  actor: { id: string; role: string };
  /** The caller's metadata of the command that made the entry ({} when none). */
  metadata: ClientMetadata;
}

export interface StatementQuery {
  currency?: string;
  /** effectiveAt >= from */
  from?: Date;
  /** effectiveAt < to */
  to?: Date;
  /** Only entries effective at or before this instant. */
  asOf?: Date;
  /** As the ledger knew it at this instant: entries recorded since, and their effect, are left out. */
  knownAt?: Date;
  /** Only entries at or before this position (a CSV export pins it at its start). */
  upTo?: bigint;
  /** Only entries whose metadata has every one of these pairs. */
  metadata?: MetadataFilter;
  order: 'asc' | 'desc';
  cursor?: string;
  limit: number;
}

export interface Statement extends Page<StatementEntry> {
  account: string;
  currency: string;
}

export interface BalancePoint {
  at: string;
  posted: number;
  pending: number;
  available: number;
  /** Position of the last entry at or before `at` (-1: none yet). */
  position: bigint;
}

export interface JournalEntryOut {
  entryId: string;
  position: bigint;
  occurredAt: string;
  description: string;
  eventId: string;
  eventType: string;
  streamName: string;
  correlationId: string;
  actor: { id: string; role: string };
  metadata: ClientMetadata;
  postings: Array<{
    line: number;
    account: string;
    side: Side;
    effect: 'post' | 'hold' | 'release';
    amount: number;
    currency: string;
  }>;
}

export interface AuditEvent {
  eventId: string;
  eventType: string;
  streamName: string;
  position: bigint;
  occurredAt: string;
  correlationId: string;
  causationId: string;
  actor: { id: string; role: string };
  entryId: string | null;
}

export interface EventPosting {
  position: bigint;
  line: number;
  account: string;
  side: Side;
  effect: 'post' | 'hold' | 'release';
  amount: number;
  currency: string;
}

export interface CausalChain {
  /** The event asked about first, then its cause, its cause's cause… up to the first that is not an event. */
  chain: AuditEvent[];
  /** What started it: the causation id of the last event of the chain, which is no event of the ledger. */
  origin: { kind: 'request' | 'stripe' | 'scheduler' | 'unknown'; id: string } | null;
  /** Events directly caused by the first one. */
  effects: AuditEvent[];
}

export interface StoryRead {
  events: AuditEvent[];
  postings: EventPosting[];
  balances: AccountSummary[];
  truncated: boolean;
}

export interface TrialBalanceGroup {
  currency: string;
  group: string;
  kind: AccountKind | 'unknown';
  /** LIKE pattern to list the group's accounts (GET /v1/accounts?prefix=). */
  prefix: string;
  accounts: number;
  debitsPosted: number;
  creditsPosted: number;
  debitsPending: number;
  creditsPending: number;
}

export interface ClearingAccount extends AccountSummary {
  ageSeconds: number;
}

export interface AnalyticsPeriod {
  start: string;
  metrics: Record<string, { amount: number; count: number }>;
  activeWallets: number;
}

export interface AnalyticsQuery {
  from: string;
  to: string;
  granularity: 'day' | 'week' | 'month';
  currency?: string;
}

/** Bound on a story's events; a thing with more (a student over years) is read on its account page. */
export const STORY_MAX_EVENTS = 500;
const CAUSE_MAX_DEPTH = 32;
const SEARCH_MAX = 50;

/** The console's reads as the API sees them (PostgresConsoleQueries; tests may pass a double). */
export type ConsoleQueries = Pick<
  PostgresConsoleQueries,
  | 'projectedPosition'
  | 'search'
  | 'listAccounts'
  | 'accountCurrencies'
  | 'getStatement'
  | 'getBalanceSeries'
  | 'accountSpan'
  | 'getJournal'
  | 'getEvent'
  | 'eventIdOfEntry'
  | 'getCauses'
  | 'getStory'
  | 'getTrialBalanceGroups'
  | 'getOpenClearing'
  | 'getAnalytics'
  | 'listReferences'
>;

export class PostgresConsoleQueries {
  private readonly batcher: TenantReadBatcher;

  constructor(private readonly db: Database) {
    this.batcher = new TenantReadBatcher(db);
  }

  private read(tenantId: string, ...statements: Array<[sql: string, bindings: SqlValue[]]>) {
    return this.batcher.read(
      tenantId,
      statements.map(([sql, bindings]) => ({ sql, bindings })),
    );
  }

  private async readOne(tenantId: string, sql: string, bindings: SqlValue[]): Promise<Row[]> {
    const [rows] = await this.read(tenantId, [sql, bindings]);
    return rows!;
  }

  /** Position every read model has applied (a CSV export pins its rows to it). */
  projectedPosition(): Promise<bigint> {
    return readCheckpoint(this.db.knex, S);
  }

  // ------------------------------------------------------------------------------------------------
  // Search

  /**
   * Search by `query`; with a metadata filter, only the journal entries carrying every pair of it (newest
   * first; the GIN index finds them), narrowed by `query` as an entry id prefix when one is given.
   */
  async search(
    tenantId: string,
    query: string,
    limit: number,
    metadata?: MetadataFilter,
  ): Promise<SearchResult[]> {
    const q = query.trim().toLowerCase();
    const max = Math.min(Math.max(1, limit), SEARCH_MAX);
    if (metadata && Object.keys(metadata).length > 0)
      return this.searchByMetadata(tenantId, q, max, metadata);
    const [low, high] = prefixBounds(q);
    const statements: Array<[string, SqlValue[]]> = [
      [
        // In the prefix index's order, so the exact match (the smallest term in the range) comes first
        // and the scan stops after `max` rows however many terms share the prefix.
        `SELECT kind, ref, first_event_type, last_event_type, last_position, last_occurred_at, events
           FROM ${S}.search_terms WHERE tenant_id = ? AND ${startsWith('term')}
          ORDER BY term USING ~<~, kind LIMIT ?`,
        [tenantId, low, high, max],
      ],
    ];
    // Ids are UUIDs (lowercase hex): only a hex-and-dash query can match an entry or an event.
    const idLike = /^[0-9a-f-]{4,36}$/.test(q);
    if (idLike) {
      statements.push(
        [
          `SELECT event_id, event_type, stream_name, position, occurred_at FROM ${S}.audit_events
            WHERE tenant_id = ? AND ${startsWith('event_id')} ORDER BY event_id USING ~<~ LIMIT ?`,
          [tenantId, low, high, max],
        ],
        [
          `SELECT e.entry_id, e.position, a.event_type, a.stream_name, a.occurred_at
             FROM ${S}.journal_entries e
             JOIN ${S}.audit_events a ON a.tenant_id = e.tenant_id AND a.position = e.position
            WHERE e.tenant_id = ? AND ${startsWith('e.entry_id')} ORDER BY e.entry_id USING ~<~ LIMIT ?`,
          [tenantId, low, high, max],
        ],
      );
    }
    // An account path (platform:revenue:…, clearing:booking:…): accounts by prefix.
    const accountLike = q.includes(':');
    if (accountLike) {
      statements.push([
        `SELECT account, currency, last_position, last_occurred_at, version FROM ${S}.balances
          WHERE tenant_id = ? AND ${startsWith('account')} ORDER BY account USING ~<~, currency LIMIT ?`,
        [tenantId, ...prefixBounds(query.trim()), max],
      ]);
    }
    const results = await this.read(tenantId, ...statements);
    const out: SearchResult[] = [];
    for (const r of results[0]!) {
      out.push({
        kind: String(r.kind) as ReferenceKind,
        id: String(r.ref),
        streamName: null,
        firstEventType: String(r.first_event_type),
        lastEventType: String(r.last_event_type),
        lastOccurredAt: iso(r.last_occurred_at),
        events: Number(r.events),
        lastPosition: BigInt(Number(r.last_position)),
        currency: null,
      });
    }
    let next = 1;
    if (idLike) {
      for (const r of results[next++]!) {
        out.push({
          kind: 'event',
          id: String(r.event_id),
          streamName: String(r.stream_name),
          firstEventType: String(r.event_type),
          lastEventType: String(r.event_type),
          lastOccurredAt: iso(r.occurred_at),
          events: 1,
          lastPosition: BigInt(Number(r.position)),
          currency: null,
        });
      }
      for (const r of results[next++]!) {
        out.push({
          kind: 'entry',
          id: String(r.entry_id),
          streamName: String(r.stream_name),
          firstEventType: String(r.event_type),
          lastEventType: String(r.event_type),
          lastOccurredAt: iso(r.occurred_at),
          events: 1,
          lastPosition: BigInt(Number(r.position)),
          currency: null,
        });
      }
    }
    if (accountLike) {
      for (const r of results[next++]!) {
        out.push({
          kind: 'account',
          id: String(r.account),
          streamName: null,
          firstEventType: null,
          lastEventType: null,
          lastOccurredAt: iso(r.last_occurred_at),
          events: Number(r.version),
          lastPosition: BigInt(Number(r.last_position)),
          currency: String(r.currency),
        });
      }
    }
    // Exact id matches lead whatever table they came from.
    const exact = (r: SearchResult) => (r.id.toLowerCase() === q ? 0 : 1);
    return out.sort((a, b) => exact(a) - exact(b)).slice(0, max);
  }

  private async searchByMetadata(
    tenantId: string,
    q: string,
    max: number,
    metadata: MetadataFilter,
  ): Promise<SearchResult[]> {
    const rows = await this.readOne(
      tenantId,
      `SELECT e.entry_id, e.position, a.event_type, a.stream_name, a.occurred_at
         FROM ${S}.journal_entries e
         JOIN ${S}.audit_events a ON a.tenant_id = e.tenant_id AND a.position = e.position
        WHERE e.tenant_id = ? AND e.client_metadata @> ?::jsonb
          ${q ? `AND ${startsWith('e.entry_id')}` : ''}
        ORDER BY e.position DESC LIMIT ?`,
      [tenantId, JSON.stringify(metadata), ...(q ? prefixBounds(q) : []), max],
    );
    return rows.map((r) => ({
      kind: 'entry' as const,
      id: String(r.entry_id),
      streamName: String(r.stream_name),
      firstEventType: String(r.event_type),
      lastEventType: String(r.event_type),
      lastOccurredAt: iso(r.occurred_at),
      events: 1,
      lastPosition: BigInt(Number(r.position)),
      currency: null,
    }));
  }

  /** The most recently active things of one kind (from search_terms), newest first. */
  async listReferences(tenantId: string, kind: string, limit: number): Promise<string[]> {
    const rows = await this.readOne(
      tenantId,
      `SELECT ref FROM ${S}.search_terms WHERE tenant_id = ? AND kind = ? ORDER BY last_position DESC LIMIT ?`,
      [tenantId, kind, pageLimit(limit)],
    );
    return rows.map((r) => String(r.ref));
  }

  // ------------------------------------------------------------------------------------------------
  // Accounts

  async listAccounts(
    tenantId: string,
    filter: { prefix?: string; kind?: AccountKind; currency?: string },
    page: { cursor?: string; limit: number },
  ): Promise<Page<AccountSummary>> {
    const limit = pageLimit(page.limit);
    const where = ['tenant_id = ?'];
    const args: SqlValue[] = [tenantId];
    if (filter.prefix !== undefined) {
      where.push(startsWith('account'));
      args.push(...prefixBounds(filter.prefix));
    }
    if (filter.kind !== undefined) {
      const patterns = KIND_PATTERNS[filter.kind];
      where.push(`(${patterns.map(() => 'account LIKE ?').join(' OR ')})`);
      args.push(...patterns);
    }
    if (filter.currency !== undefined) {
      where.push('currency = ?');
      args.push(filter.currency);
    }
    if (page.cursor !== undefined) {
      const after = decodeAccountCursor(page.cursor);
      where.push('(account, currency) > (?, ?)');
      args.push(after.account, after.currency);
    }
    const rows = await this.readOne(
      tenantId,
      `SELECT * FROM ${S}.balances WHERE ${where.join(' AND ')} ORDER BY account, currency LIMIT ?`,
      [...args, limit + 1],
    );
    const items = rows.slice(0, limit).map(toAccountSummary);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: rows.length > limit && last ? encodeAccountCursor(last.account, last.currency) : null,
    };
  }

  /** The account's balance rows (one per currency, bounded). */
  async accountCurrencies(tenantId: string, account: string): Promise<AccountSummary[]> {
    const rows = await this.readOne(
      tenantId,
      `SELECT * FROM ${S}.balances WHERE tenant_id = ? AND account = ? ORDER BY currency LIMIT 50`,
      [tenantId, account],
    );
    return rows.map(toAccountSummary);
  }

  // ------------------------------------------------------------------------------------------------
  // Statement: one line per entry on the account (a capture's release and post read as one line)

  async getStatement(tenantId: string, account: string, query: StatementQuery): Promise<Statement | null> {
    const currency = await this.currencyOf(tenantId, account, query.currency);
    if (currency === null) return null;
    const limit = pageLimit(query.limit);
    const desc = query.order === 'desc';
    // In effective order, each line in its version known at knownAt (effectivePostings.ts): the
    // DISTINCT ON keeps the newest version per line, which the as-of index hands over first.
    const where = ['p.tenant_id = ?', 'p.account = ?', 'p.currency = ?'];
    const args: SqlValue[] = [tenantId, account, currency];
    if (query.from) {
      where.push('p.effective_at >= ?');
      args.push(query.from.toISOString());
    }
    if (query.to) {
      where.push('p.effective_at < ?');
      args.push(query.to.toISOString());
    }
    if (query.asOf) {
      where.push('p.effective_at <= ?');
      args.push(query.asOf.toISOString());
    }
    if (query.knownAt) {
      where.push('p.known_at <= ?');
      args.push(query.knownAt.toISOString());
    }
    if (query.upTo !== undefined) {
      where.push('p.known_position <= ?::int8');
      args.push(int8(query.upTo));
    }
    if (query.metadata && Object.keys(query.metadata).length > 0) {
      where.push(`EXISTS (SELECT 1 FROM ${S}.journal_entries m
                   WHERE m.tenant_id = p.tenant_id AND m.entry_id = p.entry_id AND m.client_metadata @> ?::jsonb)`);
      args.push(JSON.stringify(query.metadata));
    }
    if (query.cursor !== undefined) {
      const after = decodeTimeCursor(query.cursor);
      where.push(`(p.effective_at, p.position) ${desc ? '<' : '>'} (?::timestamptz, ?::int8)`);
      args.push(after.occurredAt, int8(after.position));
    }
    const dir = desc ? 'DESC' : 'ASC';
    const rows = await this.readOne(
      tenantId,
      `SELECT g.*, a.occurred_at, e.description, e.client_metadata, a.event_id, a.event_type, a.stream_name,
              a.correlation_id, a.actor_id, a.actor_role
         FROM (
           SELECT v.position, v.effective_at, min(v.entry_id) AS entry_id,
                  json_agg(json_build_array(v.side, v.effect, v.amount) ORDER BY v.line) AS lines,
                  (array_agg(v.debits_pending ORDER BY v.line DESC))[1] AS debits_pending,
                  (array_agg(v.debits_posted ORDER BY v.line DESC))[1] AS debits_posted,
                  (array_agg(v.credits_pending ORDER BY v.line DESC))[1] AS credits_pending,
                  (array_agg(v.credits_posted ORDER BY v.line DESC))[1] AS credits_posted,
                  max(v.version) AS version
             FROM (SELECT DISTINCT ON (p.effective_at, p.position, p.line) p.*
                     FROM ${S}.effective_postings p
                    WHERE ${where.join(' AND ')}
                    ORDER BY p.effective_at ${dir}, p.position ${dir}, p.line ${dir}, p.known_at DESC) v
            GROUP BY v.effective_at, v.position
            ORDER BY v.effective_at ${dir}, v.position ${dir}
            LIMIT ?) g
         JOIN ${S}.audit_events a ON a.tenant_id = ? AND a.position = g.position
         JOIN ${S}.journal_entries e ON e.tenant_id = ? AND e.entry_id = g.entry_id
        ORDER BY g.effective_at ${dir}, g.position ${dir}`,
      [...args, limit + 1, tenantId, tenantId],
    );
    const side = normalSideOf(account);
    const items = rows.slice(0, limit).map((r) => toStatementEntry(r, side));
    const last = items[items.length - 1];
    return {
      account,
      currency,
      items,
      nextCursor: rows.length > limit && last ? encodeTimeCursor(last.effectiveAt, last.position) : null,
    };
  }

  /** The account's currency: the given one if it has it, else its only one; null if it has none. */
  private async currencyOf(tenantId: string, account: string, currency?: string): Promise<string | null> {
    const rows = await this.accountCurrencies(tenantId, account);
    const currencies = rows.map((r) => r.currency);
    if (currency !== undefined) return currencies.includes(currency) ? currency : null;
    if (currencies.length > 1) {
      throw new DomainError('validation_failed', `account ${account} has balances in several currencies`, {
        field: 'currency',
        currencies,
      });
    }
    return currencies[0] ?? null;
  }

  // ------------------------------------------------------------------------------------------------
  // Balance over time, from the as-of index: one backward seek per point

  async getBalanceSeries(
    tenantId: string,
    account: string,
    query: { currency?: string; from: Date; to: Date; points: number },
  ): Promise<{ account: string; currency: string; points: BalancePoint[] } | null> {
    const currency = await this.currencyOf(tenantId, account, query.currency);
    if (currency === null) return null;
    const points = Math.min(Math.max(2, Math.trunc(query.points)), 1_000);
    const fromMs = query.from.getTime();
    const stepMs = Math.max(1, Math.floor((query.to.getTime() - fromMs) / (points - 1)));
    // The instants are a plain column (generate_series over timestamptz, then `to`), so the lateral
    // seek's `occurred_at <= t.at` is a bare comparison that row-level security lets into the index
    // condition. Computed per row inside the lateral (CASE and timestamptz + interval, which are not
    // leakproof), it stayed a filter under RLS: every point scanned the account's postings (10 s for
    // 240 points on 100,000 entries, docs/benchmarks.md "Finance console").
    const lastGridMs = fromMs + (points - 2) * stepMs;
    const rows = await this.readOne(
      tenantId,
      `WITH t AS (
         SELECT g.at, g.i
           FROM generate_series(?::timestamptz, ?::timestamptz, ?::int8 * interval '1 millisecond')
                WITH ORDINALITY AS g(at, i)
         UNION ALL SELECT ?::timestamptz, ?::int8)
       SELECT t.at, p.position, p.debits_pending, p.debits_posted, p.credits_pending, p.credits_posted, p.available
         FROM t
         LEFT JOIN LATERAL (
           SELECT q.position, q.debits_pending, q.debits_posted, q.credits_pending, q.credits_posted, q.available
             FROM ${S}.postings q
            WHERE q.tenant_id = ? AND q.account = ? AND q.currency = ? AND q.occurred_at <= t.at
            ORDER BY q.occurred_at DESC, q.position DESC, q.line DESC
            LIMIT 1) p ON true
        ORDER BY t.i`,
      [
        query.from.toISOString(),
        new Date(lastGridMs).toISOString(),
        stepMs,
        query.to.toISOString(),
        points,
        tenantId,
        account,
        currency,
      ],
    );
    invariant(rows.length === points, () => `balance series: ${rows.length} points instead of ${points}`);
    const side = normalSideOf(account);
    return {
      account,
      currency,
      points: rows.map((r) => {
        const t = r.position === null ? null : totalsOf(r);
        return {
          at: iso(r.at),
          posted: t ? postedOf(t, side) : 0,
          pending: t ? pendingOf(t, side) : 0,
          available: t ? Number(r.available) : 0,
          position: r.position === null ? -1n : BigInt(Number(r.position)),
        };
      }),
    };
  }

  /** First and last moment the account moved (for the chart's default range). */
  async accountSpan(
    tenantId: string,
    account: string,
    currency: string,
  ): Promise<{ first: string; last: string } | null> {
    const [first, last] = await this.read(
      tenantId,
      [
        `SELECT occurred_at FROM ${S}.postings WHERE tenant_id = ? AND account = ? AND currency = ?
          ORDER BY occurred_at, position, line LIMIT 1`,
        [tenantId, account, currency],
      ],
      [
        `SELECT occurred_at FROM ${S}.postings WHERE tenant_id = ? AND account = ? AND currency = ?
          ORDER BY occurred_at DESC, position DESC, line DESC LIMIT 1`,
        [tenantId, account, currency],
      ],
    );
    const a = first![0];
    const b = last![0];
    return a && b ? { first: iso(a.occurred_at), last: iso(b.occurred_at) } : null;
  }

  // ------------------------------------------------------------------------------------------------
  // Journal for a period (for an accountant)

  async getJournal(
    tenantId: string,
    query: {
      from?: Date;
      to?: Date;
      upTo?: bigint;
      metadata?: MetadataFilter;
      cursor?: string;
      limit: number;
    },
  ): Promise<Page<JournalEntryOut>> {
    const limit = pageLimit(query.limit);
    const where = ['a.tenant_id = ?', 'a.entry_id IS NOT NULL'];
    const args: SqlValue[] = [tenantId];
    if (query.from) {
      where.push('a.occurred_at >= ?');
      args.push(query.from.toISOString());
    }
    if (query.to) {
      where.push('a.occurred_at < ?');
      args.push(query.to.toISOString());
    }
    if (query.upTo !== undefined) {
      where.push('a.position <= ?::int8');
      args.push(int8(query.upTo));
    }
    if (query.metadata && Object.keys(query.metadata).length > 0) {
      where.push('e.client_metadata @> ?::jsonb');
      args.push(JSON.stringify(query.metadata));
    }
    if (query.cursor !== undefined) {
      const after = decodeTimeCursor(query.cursor);
      where.push('(a.occurred_at, a.position) > (?::timestamptz, ?::int8)');
      args.push(after.occurredAt, int8(after.position));
    }
    const rows = await this.readOne(
      tenantId,
      `SELECT a.position, a.occurred_at, a.entry_id, a.event_id, a.event_type, a.stream_name, a.correlation_id,
              a.actor_id, a.actor_role, e.description, e.client_metadata,
              (SELECT json_agg(json_build_array(p.line, p.account, p.side, p.effect, p.amount, p.currency)
                                ORDER BY p.line)
                 FROM ${S}.postings p WHERE p.tenant_id = a.tenant_id AND p.position = a.position) AS postings
         FROM ${S}.audit_events a
         JOIN ${S}.journal_entries e ON e.tenant_id = a.tenant_id AND e.entry_id = a.entry_id
        WHERE ${where.join(' AND ')}
        ORDER BY a.occurred_at, a.position
        LIMIT ?`,
      [...args, limit + 1],
    );
    const items = rows.slice(0, limit).map((r): JournalEntryOut => {
      const postings = jsonArray(r.postings) as Array<
        [number, string, Side, 'post' | 'hold' | 'release', number, string]
      >;
      return {
        entryId: String(r.entry_id),
        position: BigInt(Number(r.position)),
        occurredAt: iso(r.occurred_at),
        description: String(r.description),
        eventId: String(r.event_id),
        eventType: String(r.event_type),
        streamName: String(r.stream_name),
        correlationId: String(r.correlation_id),
        actor: { id: String(r.actor_id), role: String(r.actor_role) },
        metadata: clientMetadataOf(r.client_metadata),
        postings: postings.map(([line, account, side, effect, amount, currency]) => ({
          line: Number(line),
          account,
          side,
          effect,
          amount: Number(amount),
          currency,
        })),
      };
    });
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: rows.length > limit && last ? encodeTimeCursor(last.occurredAt, last.position) : null,
    };
  }

  // ------------------------------------------------------------------------------------------------
  // Events, causes and stories

  async getEvent(
    tenantId: string,
    eventId: string,
  ): Promise<{ event: AuditEvent; postings: EventPosting[] } | null> {
    const [events, postings] = await this.read(
      tenantId,
      [`SELECT * FROM ${S}.audit_events WHERE tenant_id = ? AND event_id = ? LIMIT 1`, [tenantId, eventId]],
      [
        `SELECT * FROM ${S}.postings WHERE tenant_id = ? AND position = (
           SELECT position FROM ${S}.audit_events WHERE tenant_id = ? AND event_id = ? LIMIT 1)
          ORDER BY line`,
        [tenantId, tenantId, eventId],
      ],
    );
    const e = events![0];
    return e ? { event: toAuditEvent(e), postings: postings!.map(toEventPosting) } : null;
  }

  async eventIdOfEntry(tenantId: string, entryId: string): Promise<string | null> {
    const [row] = await this.readOne(
      tenantId,
      `SELECT a.event_id FROM ${S}.journal_entries e
         JOIN ${S}.audit_events a ON a.tenant_id = e.tenant_id AND a.position = e.position
        WHERE e.tenant_id = ? AND e.entry_id = ?`,
      [tenantId, entryId],
    );
    return row ? String(row.event_id) : null;
  }

  /** From an event back through its causes (causation ids that are events of the ledger), and its effects. */
  async getCauses(tenantId: string, eventId: string): Promise<CausalChain | null> {
    const [chainRows, effectRows] = await this.read(
      tenantId,
      [
        `WITH RECURSIVE chain(depth, position, causation_id) AS (
           SELECT 0, position, causation_id FROM ${S}.audit_events WHERE tenant_id = ? AND event_id = ?
           UNION ALL
           SELECT c.depth + 1, a.position, a.causation_id
             FROM chain c
             JOIN LATERAL (SELECT position, causation_id FROM ${S}.audit_events
                            WHERE tenant_id = ? AND event_id = c.causation_id
                            ORDER BY position LIMIT 1) a ON true
            WHERE c.depth < ?)
         SELECT a.*, c.depth FROM chain c JOIN ${S}.audit_events a ON a.tenant_id = ? AND a.position = c.position
          ORDER BY c.depth`,
        [tenantId, eventId, tenantId, CAUSE_MAX_DEPTH, tenantId],
      ],
      [
        `SELECT * FROM ${S}.audit_events WHERE tenant_id = ? AND causation_id = ? ORDER BY position LIMIT 100`,
        [tenantId, eventId],
      ],
    );
    if (chainRows!.length === 0) return null;
    const chain = chainRows!.map(toAuditEvent);
    const root = chain[chain.length - 1]!;
    return { chain, origin: originOf(root), effects: effectRows!.map(toAuditEvent) };
  }

  /**
   * Every event that refers to `(kind, id)`, every event those events caused directly (an approved
   * proposal's adjustment), and every event that refers to a Stripe object they refer to (a top-up's
   * payment intent brings its Stripe fee and dispute), in position order,
   * with their postings and the current balances of the accounts they touched.
   */
  async getStory(tenantId: string, kind: string, id: string): Promise<StoryRead> {
    const [rows] = await this.read(tenantId, [
      `WITH own AS (
         SELECT position FROM ${S}.event_refs WHERE tenant_id = ? AND kind = ? AND ref = ?
          ORDER BY position LIMIT ?),
       stripe AS (
         SELECT DISTINCT r.ref FROM ${S}.event_refs r JOIN own o ON r.position = o.position
          WHERE r.tenant_id = ? AND r.kind = 'stripe' LIMIT 20),
       caused AS (
         SELECT c.position FROM ${S}.audit_events a JOIN own o ON a.tenant_id = ? AND a.position = o.position
           JOIN ${S}.audit_events c ON c.tenant_id = ? AND c.causation_id = a.event_id
          LIMIT ?),
       related AS (
         SELECT position FROM own
         UNION
         SELECT position FROM caused
         UNION
         SELECT r.position FROM ${S}.event_refs r JOIN stripe s ON r.ref = s.ref
          WHERE r.tenant_id = ? AND r.kind = 'stripe')
       SELECT a.* FROM related x JOIN ${S}.audit_events a ON a.tenant_id = ? AND a.position = x.position
        ORDER BY a.position LIMIT ?`,
      [
        tenantId,
        kind,
        id,
        STORY_MAX_EVENTS + 1,
        tenantId,
        tenantId,
        tenantId,
        STORY_MAX_EVENTS + 1,
        tenantId,
        tenantId,
        STORY_MAX_EVENTS + 1,
      ],
    ]);
    const events = rows!.slice(0, STORY_MAX_EVENTS).map(toAuditEvent);
    if (events.length === 0) return { events, postings: [], balances: [], truncated: false };
    const positions = events.map((e) => int8(e.position));
    const [postingRows] = await this.read(tenantId, [
      `SELECT * FROM ${S}.postings WHERE tenant_id = ? AND position = ANY(?::int8[]) ORDER BY position, line`,
      [tenantId, `{${positions.join(',')}}`],
    ]);
    const postings = postingRows!.map(toEventPosting);
    const accounts = [...new Set(postings.map((p) => p.account))].slice(0, 200);
    let balances: AccountSummary[] = [];
    if (accounts.length > 0) {
      const [balanceRows] = await this.read(tenantId, [
        `SELECT * FROM ${S}.balances WHERE tenant_id = ? AND account = ANY(?::text[]) ORDER BY account, currency`,
        [tenantId, pgTextArray(accounts)],
      ]);
      balances = balanceRows!.map(toAccountSummary);
    }
    return { events, postings, balances, truncated: rows!.length > STORY_MAX_EVENTS };
  }

  // ------------------------------------------------------------------------------------------------
  // Finance views

  async getTrialBalanceGroups(tenantId: string): Promise<TrialBalanceGroup[]> {
    // Accounts are grouped by their path with the entity id replaced (student:*:wallet, clearing:booking:*).
    const rows = await this.readOne(
      tenantId,
      `SELECT currency,
              CASE
                WHEN account LIKE 'student:%' OR account LIKE 'tutor:%'
                  THEN split_part(account, ':', 1) || ':*:' || substr(account, length(split_part(account, ':', 1)) + length(split_part(account, ':', 2)) + 3)
                WHEN account LIKE 'clearing:%' THEN 'clearing:' || split_part(account, ':', 2) || ':*'
                ELSE account
              END AS grp,
              count(*) AS accounts, sum(debits_posted) AS debits_posted, sum(credits_posted) AS credits_posted,
              sum(debits_pending) AS debits_pending, sum(credits_pending) AS credits_pending
         FROM ${S}.balances WHERE tenant_id = ?
        GROUP BY currency, grp ORDER BY currency, grp LIMIT 1000`,
      [tenantId],
    );
    return rows.map((r) => {
      const group = String(r.grp);
      const sample = group.replace('*', 'x');
      const ref = parseAccount(sample);
      return {
        currency: String(r.currency),
        group,
        kind: ref ? describeAccount(ref).kind : 'unknown',
        prefix: group.includes('*') ? group.slice(0, group.indexOf('*')) : group,
        accounts: Number(r.accounts),
        debitsPosted: Number(r.debits_posted),
        creditsPosted: Number(r.credits_posted),
        debitsPending: Number(r.debits_pending),
        creditsPending: Number(r.credits_pending),
      };
    });
  }

  /** Clearing accounts not back at zero (posted or pending), oldest first. */
  async getOpenClearing(tenantId: string, now: Date, limit: number): Promise<ClearingAccount[]> {
    const rows = await this.readOne(
      tenantId,
      `SELECT * FROM ${S}.balances
        WHERE tenant_id = ? AND account LIKE 'clearing:%'
          AND (debits_posted <> credits_posted OR debits_pending <> 0 OR credits_pending <> 0)
        ORDER BY last_occurred_at, account, currency LIMIT ?`,
      [tenantId, pageLimit(limit)],
    );
    return rows.map((r) => {
      const summary = toAccountSummary(r);
      return {
        ...summary,
        ageSeconds: Math.max(0, Math.floor((now.getTime() - Date.parse(summary.lastOccurredAt)) / 1000)),
      };
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Analytics (daily aggregates)

  /**
   * Every period from the one holding `from` up to `to` (excluded), empty ones included: flows summed
   * per period, stocks as their balance at the period's end (the running sum of their daily changes:
   * one row per day a stock changed, over the tenant's history), distinct active wallets per period.
   */
  async getAnalytics(tenantId: string, query: AnalyticsQuery): Promise<AnalyticsPeriod[]> {
    const unit = query.granularity;
    const currencyFilter = query.currency ? 'AND currency = ?' : '';
    const currencyArgs = query.currency ? [query.currency] : [];
    const stockMetrics = Object.entries(METRICS)
      .filter(([, m]) => m.kind === 'stock')
      .map(([name]) => name);
    const [flows, stocks, wallets] = await this.read(
      tenantId,
      [
        `SELECT date_trunc('${unit}', day)::date::text AS period, metric, sum(amount) AS amount, sum(count) AS count
           FROM ${S}.daily_metrics
          WHERE tenant_id = ? AND day >= ?::date AND day < ?::date ${currencyFilter}
          GROUP BY period, metric ORDER BY period, metric`,
        [tenantId, query.from, query.to, ...currencyArgs],
      ],
      [
        `SELECT day::text AS day, metric, sum(sum(amount)) OVER (PARTITION BY metric ORDER BY day) AS running
           FROM ${S}.daily_metrics
          WHERE tenant_id = ? AND day < ?::date AND metric IN (${stockMetrics.map(() => '?').join(', ')})
                ${currencyFilter}
          GROUP BY day, metric ORDER BY day, metric`,
        [tenantId, query.to, ...stockMetrics, ...currencyArgs],
      ],
      [
        `SELECT date_trunc('${unit}', day)::date::text AS period, count(DISTINCT student_id) AS wallets
           FROM ${S}.daily_active_wallets
          WHERE tenant_id = ? AND day >= ?::date AND day < ?::date
          GROUP BY period ORDER BY period`,
        [tenantId, query.from, query.to],
      ],
    );
    const starts = periodStarts(query.from, query.to, unit);
    const periods = new Map<string, AnalyticsPeriod>(
      starts.map((start) => [start, { start, metrics: {}, activeWallets: 0 }]),
    );
    const stockNames = new Set(stockMetrics);
    for (const r of flows!) {
      const metric = String(r.metric) as Metric;
      if (stockNames.has(metric)) continue;
      const p = periods.get(String(r.period));
      if (p) p.metrics[metric] = { amount: Number(r.amount), count: Number(r.count) };
    }
    // Each period's end: the next period's start, the last one's is `to`.
    const ends = [...starts.slice(1), query.to];
    const running = stocks!.map((r) => ({
      day: String(r.day),
      metric: String(r.metric),
      amount: Number(r.running),
    }));
    const balance = new Map<string, number>();
    let next = 0;
    starts.forEach((start, i) => {
      const end = ends[i]!;
      while (next < running.length && running[next]!.day < end) {
        balance.set(running[next]!.metric, running[next]!.amount);
        next++;
      }
      const p = periods.get(start)!;
      for (const metric of stockMetrics) p.metrics[metric] = { amount: balance.get(metric) ?? 0, count: 0 };
    });
    for (const r of wallets!) {
      const p = periods.get(String(r.period));
      if (p) p.activeWallets = Number(r.wallets);
    }
    return [...periods.values()];
  }
}

// --------------------------------------------------------------------------------------------------
// Mapping

function iso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString();
}

function jsonArray(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return JSON.parse(v) as unknown[];
  return [];
}

function totalsOf(row: Row): Totals {
  return {
    debitsPending: Number(row.debits_pending),
    debitsPosted: Number(row.debits_posted),
    creditsPending: Number(row.credits_pending),
    creditsPosted: Number(row.credits_posted),
  };
}

export function kindOfAccount(account: string): AccountKind | 'unknown' {
  const ref = parseAccount(account);
  return ref ? describeAccount(ref).kind : 'unknown';
}

function toAccountSummary(r: Row): AccountSummary {
  const account = String(r.account);
  const side = normalSideOf(account);
  const t = totalsOf(r);
  return {
    account,
    currency: String(r.currency),
    kind: kindOfAccount(account),
    normalSide: side,
    posted: postedOf(t, side),
    pending: pendingOf(t, side),
    available: availableOf(t, side),
    ...t,
    version: Number(r.version),
    lastPosition: BigInt(Number(r.last_position)),
    lastOccurredAt: iso(r.last_occurred_at),
  };
}

function toStatementEntry(r: Row, side: Side): StatementEntry {
  const lines = (jsonArray(r.lines) as Array<[Side, 'post' | 'hold' | 'release', number]>).map(
    ([lineSide, effect, amount]) => ({ side: lineSide, effect, amount: Number(amount) }),
  );
  const t = totalsOf(r);
  // The change is the fold of the entry's own lines from zero, in the account's normal direction.
  const change: Totals = { debitsPending: 0, debitsPosted: 0, creditsPending: 0, creditsPosted: 0 };
  for (const l of lines) {
    if (l.effect === 'post') {
      if (l.side === 'debit') change.debitsPosted += l.amount;
      else change.creditsPosted += l.amount;
    } else {
      const delta = l.effect === 'hold' ? l.amount : -l.amount;
      if (l.side === 'debit') change.debitsPending += delta;
      else change.creditsPending += delta;
    }
  }
  return {
    entryId: String(r.entry_id),
    position: BigInt(Number(r.position)),
    occurredAt: iso(r.occurred_at),
    effectiveAt: iso(r.effective_at ?? r.occurred_at),
    eventType: String(r.event_type),
    description: String(r.description),
    change: {
      posted: postedOf(change, side),
      pending: pendingOf(change, side),
      available: availableOf(change, side),
    },
    lines,
    balanceAfter: {
      posted: postedOf(t, side),
      pending: pendingOf(t, side),
      available:
        r.available === undefined || r.available === null ? availableOf(t, side) : Number(r.available),
    },
    versionAfter: Number(r.version),
    cause: {
      streamName: String(r.stream_name),
      eventId: String(r.event_id),
      correlationId: String(r.correlation_id),
    },
    actor: { id: String(r.actor_id), role: String(r.actor_role) },
    metadata: clientMetadataOf(r.client_metadata),
  };
}

function toAuditEvent(a: Row): AuditEvent {
  return {
    eventId: String(a.event_id),
    eventType: String(a.event_type),
    streamName: String(a.stream_name),
    position: BigInt(Number(a.position)),
    occurredAt: iso(a.occurred_at),
    correlationId: String(a.correlation_id),
    causationId: String(a.causation_id),
    actor: { id: String(a.actor_id), role: String(a.actor_role) },
    entryId: a.entry_id === null || a.entry_id === undefined ? null : String(a.entry_id),
  };
}

function toEventPosting(p: Row): EventPosting {
  return {
    position: BigInt(Number(p.position)),
    line: Number(p.line),
    account: String(p.account),
    side: p.side as Side,
    effect: p.effect as 'post' | 'hold' | 'release',
    amount: Number(p.amount),
    currency: String(p.currency),
  };
}

/** What a causation id that is no event of the ledger stands for. */
function originOf(root: AuditEvent): CausalChain['origin'] {
  const id = root.causationId;
  if (STRIPE_OBJECT_ID.test(id) || /^evt_/.test(id)) return { kind: 'stripe', id };
  if (root.actor.role === 'service' && /^(expire|clear):/.test(id)) return { kind: 'scheduler', id };
  if (id.length > 0) return { kind: 'request', id };
  return { kind: 'unknown', id };
}

/**
 * "`column` starts with a prefix" as a range in byte order (the `~>=~`/`~<=~` operators of the
 * `text_pattern_ops` indexes, schema.ts consoleIndexStatements), bound to `prefixBounds(prefix)`. Not
 * `LIKE 'p%'`: reads run under row-level security (readTransaction.ts), where only leakproof operators
 * may reach an index condition, and LIKE is not leakproof, so it scanned every row of the tenant
 * (docs/benchmarks.md, "Finance console"). The pattern operators are leakproof.
 */
function startsWith(column: string): string {
  return `${column} ~>=~ ? AND ${column} ~<=~ ?`;
}

/**
 * The range of strings that start with `prefix`: from the prefix itself to the prefix followed by the
 * last code point, U+10FFFF (UTF-8 byte order is code point order). The range misses only strings that
 * continue past a U+10FFFF after the prefix, which no id, key or account path contains.
 */
function prefixBounds(prefix: string): [string, string] {
  return [prefix, `${prefix}\u{10FFFF}`];
}

/** A text[] literal for ANY(?::text[]): each element quoted and escaped. */
function pgTextArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

function badCursor(): DomainError {
  return new DomainError('validation_failed', 'invalid cursor', { field: 'cursor' });
}

function encodeAccountCursor(account: string, currency: string): string {
  return Buffer.from(JSON.stringify([account, currency])).toString('base64url');
}

function decodeAccountCursor(cursor: string): { account: string; currency: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') {
      if (v[0].length <= 300 && /^[a-z]{3}$/.test(v[1])) return { account: v[0], currency: v[1] };
    }
  } catch {
    // fall through
  }
  throw badCursor();
}

function encodeTimeCursor(occurredAt: string, position: bigint): string {
  return Buffer.from(`${occurredAt}|${position}`).toString('base64url');
}

function decodeTimeCursor(cursor: string): { occurredAt: string; position: bigint } {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z)\|(\d{1,19})$/.exec(
    Buffer.from(cursor, 'base64url').toString(),
  );
  if (!m || Number.isNaN(Date.parse(m[1]!))) throw badCursor();
  return { occurredAt: m[1]!, position: BigInt(m[2]!) };
}

/** Start days (YYYY-MM-DD, UTC) of the periods covering [from, to): weeks start on Monday, as date_trunc's. */
export function periodStarts(from: string, to: string, unit: 'day' | 'week' | 'month'): string[] {
  const d = new Date(`${from}T00:00:00Z`);
  if (unit === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  if (unit === 'month') d.setUTCDate(1);
  const out: string[] = [];
  const end = `${to}`;
  while (out.length < 2_000) {
    const day = d.toISOString().slice(0, 10);
    if (day >= end) break;
    out.push(day);
    if (unit === 'day') d.setUTCDate(d.getUTCDate() + 1);
    else if (unit === 'week') d.setUTCDate(d.getUTCDate() + 7);
    else d.setUTCMonth(d.getUTCMonth() + 1);
  }
  return out;
}
