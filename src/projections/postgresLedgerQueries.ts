import type { Knex } from 'knex';
import type { BookingView, PayoutView, TopUpView } from '../contracts/views.js';
import type { Database } from '../db/database.js';
import {
  studentWallet,
  tutorEarningsAvailable,
  tutorEarningsPending,
  tutorReceivable,
} from '../domain/accounts.js';
import type { Discount } from '../domain/bookingPrice.js';
import { DomainError } from '../domain/errors.js';
import {
  BALANCES_CHANGED_CHANNEL,
  BalanceCache,
  type BalanceCacheStats,
  balanceCacheKey,
  parseBalanceChange,
} from './balanceCache.js';
import { availableOf, normalSideOf, pendingOf, postedOf, type Totals } from './balances.js';
import { effectiveSeek } from './effectivePostings.js';
import { readCheckpoint } from './ledgerProjection.js';
import type {
  AccountBalance,
  EntryDetail,
  LedgerQueries,
  MetadataFilter,
  Page,
  StatementLine,
  TrialBalanceRow,
  TutorEarningsView,
  WalletView,
} from './ledgerQueries.js';
import { PROJECTED_CHANNEL } from './projectionRunner.js';
import {
  assertTenantId,
  type SqlValue,
  TenantReadBatcher,
  type TenantReadBatcherOptions,
} from './readTransaction.js';
import { LIVE_SCHEMA } from './schema.js';
import { clientMetadataOf, int8, pageLimit } from './sql.js';
import { type ProjectionStall, readStalls } from './stalls.js';

const S = LIVE_SCHEMA;
/** How long the list of stalled tenants (readyz, metrics) is reused. */
const STALLS_TTL_MS = 1_000;
type Row = Record<string, unknown>;

export interface PostgresLedgerQueriesOptions {
  /** Bound on concurrent read-your-writes waiters; past it a wait resolves false at once. */
  maxWaiters?: number;
  /** Upper bound on any single waitForPosition timeout. */
  maxWaitMs?: number;
  /** How concurrent reads are coalesced into messages (readTransaction.ts, TenantReadBatcher). */
  batching?: TenantReadBatcherOptions;
  /**
   * Keep up to this many wallet balances in memory, dropped by the projection's change notifications
   * (balanceCache.ts). Off (0) by default: only a process whose balances are written by the projection
   * runner (which notifies) may turn it on.
   */
  balanceCacheEntries?: number;
}

export interface AuditEventRow {
  position: bigint;
  eventId: string;
  eventType: string;
  streamName: string;
  category: string;
  entityId: string;
  correlationId: string;
  causationId: string;
  actor: { id: string; role: string };
  occurredAt: string;
  entryId: string | null;
}

interface Waiter {
  position: bigint;
  resolve: (reached: boolean) => void;
  timer: NodeJS.Timeout;
}

/**
 * LedgerQueries over the Postgres read models. Every tenant read runs as `ledger_app` with the tenant
 * set for its transaction only (row-level security; readTransaction.ts), in one round trip: the
 * statements of a read are independent of each other's results (a value one would need from another is
 * a subquery), so they travel together in one message, and concurrent reads share messages
 * (TenantReadBatcher). Queries also filter on tenant_id explicitly so
 * the indexes are used. Read-your-writes waits are woken by the runner's NOTIFY on `ledger_projected`.
 */
export class PostgresLedgerQueries implements LedgerQueries {
  private readonly knex: Knex;
  private readonly maxWaiters: number;
  private readonly maxWaitMs: number;
  private known = -1n;
  private waiters = new Set<Waiter>();
  /** The one subscription to ledger_projected (positionFeed). */
  private positionSubscription: Promise<() => Promise<void>> | undefined;
  private readonly batcher: TenantReadBatcher;
  private readonly balanceCache: BalanceCache<WalletView | null> | undefined;
  private balanceChanges: Promise<() => Promise<void>> | undefined;

  constructor(
    private readonly db: Database,
    options: PostgresLedgerQueriesOptions = {},
  ) {
    this.knex = db.knex;
    this.maxWaiters = options.maxWaiters ?? 10_000;
    this.maxWaitMs = options.maxWaitMs ?? 30_000;
    this.batcher = new TenantReadBatcher(db, options.batching);
    const entries = options.balanceCacheEntries ?? 0;
    this.balanceCache = entries > 0 ? new BalanceCache({ maxEntries: entries }) : undefined;
  }

  /** Hits, misses and state of the wallet balance cache (undefined when it is off). */
  balanceCacheStats(): BalanceCacheStats | undefined {
    return this.balanceCache?.stats();
  }

  async close(): Promise<void> {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.waiters.clear();
    const unlisten = await this.positionSubscription?.catch(() => undefined);
    this.positionSubscription = undefined;
    await unlisten?.();
    const unlistenChanges = await this.balanceChanges?.catch(() => undefined);
    this.balanceChanges = undefined;
    this.balanceCache?.lost();
    await unlistenChanges?.();
  }

  // ------------------------------------------------------------------------------------------------
  // Read-your-writes

  private stallsRead: { atMs: number; stalls: Promise<ProjectionStall[]> } | undefined;

  projectionStalls(): Promise<ProjectionStall[]> {
    const now = Date.now();
    if (!this.stallsRead || now - this.stallsRead.atMs >= STALLS_TTL_MS) {
      const stalls = readStalls(this.knex, S);
      // A failed read is not kept: the next caller reads again.
      stalls.catch(() => {
        if (this.stallsRead?.stalls === stalls) this.stallsRead = undefined;
      });
      this.stallsRead = { atMs: now, stalls };
    }
    return this.stallsRead.stalls;
  }

  async projectionStallOf(tenantId: string): Promise<ProjectionStall | null> {
    return (await readStalls(this.knex, S, tenantId))[0] ?? null;
  }

  async projectedPosition(): Promise<bigint> {
    const position = await readCheckpoint(this.knex, S);
    this.observe(position);
    return position;
  }

  async waitForPosition(position: bigint, timeoutMs: number): Promise<boolean> {
    if (position <= this.known) return this.cacheHeard(position, true);
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new DomainError('validation_failed', 'timeoutMs must be >= 0', { field: 'timeoutMs' });
    }
    // Bounded by the caller's wait: LISTEN on an unreachable server must not outlast it.
    const subscribed = await settlesWithin(this.positionFeed(), Math.min(timeoutMs, this.maxWaitMs));
    if (!subscribed || this.waiters.size >= this.maxWaiters) {
      return this.cacheHeard(position, (await this.projectedPosition()) >= position);
    }
    // Register before reading the checkpoint so a notification between the two cannot be missed.
    const reached = new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        position,
        resolve,
        timer: setTimeout(
          () => {
            this.waiters.delete(waiter);
            // One last look: a notification can be lost while the LISTEN connection reconnects.
            this.projectedPosition().then(
              (p) => resolve(p >= position),
              () => resolve(false),
            );
          },
          Math.min(timeoutMs, this.maxWaitMs),
        ),
      };
      this.waiters.add(waiter);
    });
    await this.projectedPosition();
    return this.cacheHeard(position, await reached);
  }

  /**
   * The one subscription to the runner's ledger_projected: it wakes read-your-writes waiters and tells
   * the balance cache up to where it has heard every change. A failed LISTEN is tried again by the next
   * caller.
   */
  private positionFeed(): Promise<() => Promise<void>> {
    if (this.positionSubscription) return this.positionSubscription;
    const subscription = this.db.listen(
      PROJECTED_CHANNEL,
      (payload) => {
        if (!/^-?\d{1,20}$/.test(payload)) return;
        const position = BigInt(payload);
        this.observe(position);
        this.balanceCache?.heardUpTo(position);
      },
      // Notifications sent while the connection was down are lost: look at the checkpoint once it is
      // back, so that waiters do not sit out their whole timeout.
      (state) => {
        if (state === 'listening' && this.waiters.size > 0) this.projectedPosition().catch(() => undefined);
      },
    );
    this.positionSubscription = subscription;
    subscription.catch(() => {
      if (this.positionSubscription === subscription) this.positionSubscription = undefined;
    });
    return subscription;
  }

  /**
   * A read that waited for `position` must not be answered from a cache that has not yet heard every
   * change up to it. Both notifications of a batch arrive on one connection, balances first, so this
   * only happens when the position was learnt by reading the checkpoint; forgetting the cache is rare
   * and always safe.
   */
  private cacheHeard(position: bigint, reached: boolean): boolean {
    const cache = this.balanceCache;
    if (reached && cache?.isLive && cache.heardPosition < position) cache.flush();
    return reached;
  }

  /** One round trip (shared with concurrent reads): the statements' rows, in order, read as the tenant. */
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

  private observe(position: bigint): void {
    // A rebuild swap may legitimately move the position backwards only if it lost events; it never
    // does (it swaps at or past the live checkpoint), so `known` only rises.
    if (position > this.known) this.known = position;
    for (const w of this.waiters) {
      if (w.position <= this.known) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve(true);
      }
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Balances

  async getAccountBalance(
    tenantId: string,
    account: string,
    asOf?: { position: bigint } | { time: Date; knownAt?: Date },
    options: { currency?: string } = {},
  ): Promise<AccountBalance | null> {
    // The account's balance rows (one per currency, bounded) come with every read: they name its
    // currencies and, without asOf, are the answer.
    const balancesSql = `SELECT * FROM ${S}.balances WHERE tenant_id = ? AND account = ? ORDER BY currency LIMIT 50`;
    if (!asOf) {
      const rows = await this.readOne(tenantId, balancesSql, [tenantId, account]);
      const currency = pickCurrency(rows, account, options.currency);
      const row = rows.find((r) => r.currency === currency);
      return row ? toBalance(row, 'last_position') : null;
    }
    if (options.currency === undefined) {
      // The seek needs the currency: learn it first (an account in one currency is the common case).
      const rows = await this.readOne(tenantId, balancesSql, [tenantId, account]);
      const currency = pickCurrency(rows, account, undefined);
      if (!currency) return null;
      return this.getAccountBalance(tenantId, account, asOf, { currency });
    }
    const currency = options.currency;
    // One index seek on (tenant_id, account, currency, position desc, line desc) or the bi-temporal
    // (…, effective_at desc, position desc, line desc, known_at desc) of effectivePostings.ts.
    const seek: [string, SqlValue[]] =
      'position' in asOf
        ? [
            `SELECT * FROM ${S}.postings WHERE tenant_id = ? AND account = ? AND currency = ? AND position <= ?::int8
                ORDER BY position DESC, line DESC LIMIT 1`,
            [tenantId, account, currency, int8(asOf.position)],
          ]
        : effectiveSeek(S, tenantId, account, currency, asOf.time, asOf.knownAt);
    const [balances, postings] = await this.read(tenantId, [balancesSql, [tenantId, account]], seek);
    if (!pickCurrency(balances!, account, currency)) return null;
    const row = postings![0];
    if (!row) {
      return {
        account,
        currency,
        debitsPending: 0,
        debitsPosted: 0,
        creditsPending: 0,
        creditsPosted: 0,
        available: 0,
        version: 0,
        position: -1n,
      };
    }
    if ('position' in asOf) return toBalance(row, 'position');
    return {
      account,
      currency,
      ...totalsOf(row),
      available: availableOf(totalsOf(row), normalSideOf(account)),
      version: Number(row.version),
      position: BigInt(Number(row.position)),
    };
  }

  async getAccountEntries(
    tenantId: string,
    account: string,
    page: { cursor?: string; limit: number; metadata?: MetadataFilter },
  ): Promise<Page<StatementLine>> {
    const limit = pageLimit(page.limit);
    const after = page.cursor === undefined ? null : decodeCursor(page.cursor);
    const filter = page.metadata && Object.keys(page.metadata).length > 0 ? page.metadata : undefined;
    // Filtered by metadata: the entries carrying it come from the GIN index (schema.ts), then their lines
    // on this account (postings by entry position), newest first, keyset-paged like the unfiltered read.
    const rows = filter
      ? await this.readOne(
          tenantId,
          `SELECT p.*, e.description, e.client_metadata, a.event_id, a.event_type, a.stream_name,
                  a.correlation_id, a.actor_id, a.actor_role
             FROM ${S}.journal_entries e
             JOIN ${S}.postings p ON p.tenant_id = e.tenant_id AND p.position = e.position
             JOIN ${S}.audit_events a ON a.tenant_id = e.tenant_id AND a.position = e.position
            WHERE e.tenant_id = ? AND e.client_metadata @> ?::jsonb AND p.account = ?
              ${after ? 'AND (p.position, p.line) < (?::int8, ?::int4)' : ''}
            ORDER BY p.position DESC, p.line DESC
            LIMIT ?`,
          [
            tenantId,
            JSON.stringify(filter),
            account,
            ...(after ? [int8(after.position), after.line] : []),
            limit + 1,
          ],
        )
      : await this.unfilteredAccountEntries(tenantId, account, after, limit);
    const items = rows.slice(0, limit).map(toStatementLine);
    const last = items[items.length - 1];
    const lastRow = rows[limit - 1];
    return {
      items,
      nextCursor:
        rows.length > limit && last && lastRow ? encodeCursor(last.position, Number(lastRow.line)) : null,
    };
  }

  private unfilteredAccountEntries(
    tenantId: string,
    account: string,
    after: { position: bigint; line: number } | null,
    limit: number,
  ): Promise<Row[]> {
    // Newest first, in (position, line) order: stable under concurrent appends (new lines sort first).
    // The postings index leads with (tenant, account, currency), so the page is taken per currency (one
    // backward index scan each, the cursor as an index condition) and the few per-currency pages are
    // merged; every posting's (account, currency) has its balances row, written in the same batch.
    return this.readOne(
      tenantId,
      `SELECT p.*, e.description, e.client_metadata, a.event_id, a.event_type, a.stream_name, a.correlation_id,
                a.actor_id, a.actor_role
           FROM ${S}.balances c
           CROSS JOIN LATERAL (
             SELECT * FROM ${S}.postings q
              WHERE q.tenant_id = c.tenant_id AND q.account = c.account AND q.currency = c.currency
                ${after ? 'AND (q.position, q.line) < (?::int8, ?::int4)' : ''}
              ORDER BY q.position DESC, q.line DESC
              LIMIT ?) p
           JOIN ${S}.audit_events a ON a.tenant_id = p.tenant_id AND a.position = p.position
           JOIN ${S}.journal_entries e ON e.tenant_id = p.tenant_id AND e.entry_id = p.entry_id
          WHERE c.tenant_id = ? AND c.account = ?
          ORDER BY p.position DESC, p.line DESC
          LIMIT ?`,
      [...(after ? [int8(after.position), after.line] : []), limit + 1, tenantId, account, limit + 1],
    );
  }

  async getEntry(tenantId: string, entryId: string): Promise<EntryDetail | null> {
    // The postings and the correlation chain name the entry by subquery, so all three go in one message.
    const [entries, postings, chain] = await this.read(
      tenantId,
      [
        `SELECT e.*, a.event_id, a.event_type, a.stream_name, a.correlation_id, a.causation_id,
                a.actor_id, a.actor_role, a.occurred_at
           FROM ${S}.journal_entries e
           JOIN ${S}.audit_events a ON a.tenant_id = e.tenant_id AND a.position = e.position
          WHERE e.tenant_id = ? AND e.entry_id = ?`,
        [tenantId, entryId],
      ],
      [
        `SELECT account, side, effect, amount, currency FROM ${S}.postings
          WHERE tenant_id = ? AND position = (
            SELECT position FROM ${S}.journal_entries WHERE tenant_id = ? AND entry_id = ?)
          ORDER BY line`,
        [tenantId, tenantId, entryId],
      ],
      [
        // The correlation chain is bounded: a flow has a handful of events; 200 covers any real one.
        `SELECT event_id, event_type, stream_name, position, occurred_at FROM ${S}.audit_events
          WHERE tenant_id = ? AND correlation_id = (
            SELECT a.correlation_id FROM ${S}.journal_entries e
              JOIN ${S}.audit_events a ON a.tenant_id = e.tenant_id AND a.position = e.position
             WHERE e.tenant_id = ? AND e.entry_id = ?)
          ORDER BY position LIMIT 200`,
        [tenantId, tenantId, entryId],
      ],
    );
    const e = entries![0];
    if (!e) return null;
    return {
      entryId: String(e.entry_id),
      position: BigInt(Number(e.position)),
      occurredAt: iso(e.occurred_at),
      description: String(e.description),
      holdId: e.hold_id === null ? null : String(e.hold_id),
      eventId: String(e.event_id),
      eventType: String(e.event_type),
      streamName: String(e.stream_name),
      correlationId: String(e.correlation_id),
      causationId: String(e.causation_id),
      actor: { id: String(e.actor_id), role: String(e.actor_role) },
      metadata: clientMetadataOf(e.client_metadata),
      postings: postings!.map((p) => ({
        account: String(p.account),
        side: p.side as 'debit' | 'credit',
        effect: p.effect as 'post' | 'hold' | 'release',
        amount: Number(p.amount),
        currency: String(p.currency),
      })),
      chain: chain!.map((c) => ({
        eventId: String(c.event_id),
        eventType: String(c.event_type),
        streamName: String(c.stream_name),
        position: BigInt(Number(c.position)),
        occurredAt: iso(c.occurred_at),
      })),
    };
  }

  async getTrialBalance(tenantId: string): Promise<TrialBalanceRow[]> {
    const rows = await this.readOne(
      tenantId,
      `SELECT currency, sum(debits_posted)::int8 AS dp, sum(credits_posted)::int8 AS cp,
              sum(debits_pending)::int8 AS dpe, sum(credits_pending)::int8 AS cpe
         FROM ${S}.balances WHERE tenant_id = ? GROUP BY currency ORDER BY currency`,
      [tenantId],
    );
    return rows.map((x) => ({
      currency: String(x.currency),
      debitsPosted: Number(x.dp),
      creditsPosted: Number(x.cp),
      debitsPending: Number(x.dpe),
      creditsPending: Number(x.cpe),
      postedDifference: Number(x.dp) - Number(x.cp),
      pendingDifference: Number(x.dpe) - Number(x.cpe),
    }));
  }

  async getCurrenciesHeld(tenantId: string): Promise<string[]> {
    const rows = await this.readOne(
      tenantId,
      `SELECT DISTINCT currency FROM ${S}.balances
        WHERE tenant_id = ? AND (debits_posted <> credits_posted OR debits_pending <> credits_pending)
        ORDER BY currency`,
      [tenantId],
    );
    return rows.map((r) => String(r.currency));
  }

  // ------------------------------------------------------------------------------------------------
  // Wallets and tutors (their accounts' balances)

  getWallet(tenantId: string, studentId: string): Promise<WalletView | null> {
    const cache = this.balanceCache;
    if (!cache) return this.readWallet(tenantId, studentId);
    if (!this.balanceChanges) {
      const listening = this.listenForBalanceChanges(cache);
      this.balanceChanges = listening;
      // Until LISTEN works, reads go to the database; the next read tries again.
      listening.catch(() => {
        if (this.balanceChanges === listening) this.balanceChanges = undefined;
      });
    }
    const key = balanceCacheKey(tenantId, studentWallet(studentId));
    const cached = cache.get(key);
    if (cached !== undefined) return Promise.resolve(cached);
    // A wallet that does not exist yet is not kept: probing unknown ids cannot push real entries out.
    return cache.read(
      key,
      () => this.readWallet(tenantId, studentId),
      (wallet) => wallet !== null,
    );
  }

  private async listenForBalanceChanges(
    cache: BalanceCache<WalletView | null>,
  ): Promise<() => Promise<void>> {
    // Both channels ride the one listener connection, in commit order: a batch's balance payloads,
    // then its ledger_projected, which is when the cache has heard that position entirely. The position
    // channel is subscribed first, and the cache goes live only when the balance channel is too: a cache
    // must never be live with one of its feeds missing.
    await this.positionFeed();
    let unlistenBalances: () => Promise<void>;
    try {
      unlistenBalances = await this.db.listen(
        BALANCES_CHANGED_CHANNEL,
        (payload) => {
          const change = parseBalanceChange(payload);
          // Not a payload this code wrote: the only safe reading is "anything may have changed".
          if (change) cache.changed(change);
          else cache.flush();
        },
        (state) => (state === 'listening' ? cache.listening() : cache.lost()),
      );
    } catch (error) {
      cache.lost();
      throw error;
    }
    return async () => {
      cache.lost();
      await unlistenBalances();
    };
  }

  private async readWallet(tenantId: string, studentId: string): Promise<WalletView | null> {
    const account = studentWallet(studentId);
    // A wallet's currency is fixed by its first money event, so there is one row.
    const [row] = await this.readOne(
      tenantId,
      // Only the columns the view needs: parsing the rest (a timestamptz) is most of the client's work.
      `SELECT currency, debits_pending, debits_posted, credits_pending, credits_posted, version
         FROM ${S}.balances WHERE tenant_id = ? AND account = ? ORDER BY version DESC LIMIT 1`,
      [tenantId, account],
    );
    if (!row) return null;
    const t = totalsOf(row);
    // Frozen: the same object may be served to many requests from the balance cache.
    return Object.freeze({
      studentId,
      currency: String(row.currency),
      available: availableOf(t, 'credit'),
      pending: pendingOf(t, 'credit'),
      posted: postedOf(t, 'credit'),
      version: Number(row.version),
    });
  }

  getWalletTransactions(
    tenantId: string,
    studentId: string,
    page: { cursor?: string; limit: number; metadata?: MetadataFilter },
  ): Promise<Page<StatementLine>> {
    return this.getAccountEntries(tenantId, studentWallet(studentId), page);
  }

  async getTutorEarnings(tenantId: string, tutorId: string): Promise<TutorEarningsView | null> {
    const accounts = [
      tutorEarningsPending(tutorId),
      tutorEarningsAvailable(tutorId),
      tutorReceivable(tutorId),
    ];
    const [rows, paid] = await this.read(
      tenantId,
      [
        `SELECT * FROM ${S}.balances WHERE tenant_id = ? AND account IN (?, ?, ?) ORDER BY last_position`,
        [tenantId, ...accounts],
      ],
      // One row per currency the tutor was paid out in (bounded by the allowed currencies).
      [
        `SELECT currency, paid_out FROM ${S}.tutor_payouts WHERE tenant_id = ? AND tutor_id = ?`,
        [tenantId, tutorId],
      ],
    );
    if (rows!.length === 0) return null;
    const currency = String(rows![0]!.currency);
    const of = (account: string): Totals | null => {
      const row = rows!.find((x) => x.account === account && x.currency === currency);
      return row ? totalsOf(row) : null;
    };
    const pending = of(accounts[0]!);
    const available = of(accounts[1]!);
    const receivable = of(accounts[2]!);
    return {
      tutorId,
      currency,
      pending: pending ? postedOf(pending, 'credit') : 0,
      available: available ? availableOf(available, 'credit') : 0,
      receivable: receivable ? postedOf(receivable, 'debit') : 0,
      paidOut: Number(paid!.find((x) => x.currency === currency)?.paid_out ?? 0),
    };
  }

  // ------------------------------------------------------------------------------------------------
  // Entity views

  async getBooking(tenantId: string, bookingId: string): Promise<BookingView | null> {
    const [row] = await this.readOne(
      tenantId,
      `SELECT * FROM ${S}.bookings WHERE tenant_id = ? AND booking_id = ?`,
      [tenantId, bookingId],
    );
    return row ? toBooking(row) : null;
  }

  async getTopUp(tenantId: string, topUpId: string): Promise<TopUpView | null> {
    const [row] = await this.readOne(
      tenantId,
      `SELECT * FROM ${S}.top_ups WHERE tenant_id = ? AND top_up_id = ?`,
      [tenantId, topUpId],
    );
    return row ? toTopUp(row) : null;
  }

  async getPayout(tenantId: string, payoutId: string): Promise<PayoutView | null> {
    const [row] = await this.readOne(
      tenantId,
      `SELECT * FROM ${S}.payouts WHERE tenant_id = ? AND payout_id = ?`,
      [tenantId, payoutId],
    );
    return row ? toPayout(row) : null;
  }

  listBookings(
    tenantId: string,
    filter: { studentId?: string; tutorId?: string; status?: string },
    page: { cursor?: string; limit: number },
  ): Promise<Page<BookingView>> {
    return this.listById(tenantId, 'bookings', 'booking_id', filter, page, toBooking, {
      studentId: 'student_id',
      tutorId: 'tutor_id',
      status: 'status',
    });
  }

  listPayouts(
    tenantId: string,
    filter: { tutorId?: string; status?: string },
    page: { cursor?: string; limit: number },
  ): Promise<Page<PayoutView>> {
    return this.listById(tenantId, 'payouts', 'payout_id', filter, page, toPayout, {
      tutorId: 'tutor_id',
      status: 'status',
    });
  }

  listTopUps(
    tenantId: string,
    filter: { studentId?: string; status?: string },
    page: { cursor?: string; limit: number },
  ): Promise<Page<TopUpView>> {
    return this.listById(tenantId, 'top_ups', 'top_up_id', filter, page, toTopUp, {
      studentId: 'student_id',
      status: 'status',
    });
  }

  /** The audit trail for finance admins: every event, filtered by entity, correlation id, actor or type. */
  async listAuditEvents(
    tenantId: string,
    filter: {
      category?: string;
      entityId?: string;
      correlationId?: string;
      actorId?: string;
      eventType?: string;
    },
    page: { cursor?: string; limit: number },
  ): Promise<Page<AuditEventRow>> {
    const limit = pageLimit(page.limit);
    const after = page.cursor === undefined ? null : decodeCursor(page.cursor);
    const where: string[] = ['tenant_id = ?'];
    const args: Array<string | number> = [tenantId];
    const columns = {
      category: 'category',
      entityId: 'entity_id',
      correlationId: 'correlation_id',
      actorId: 'actor_id',
      eventType: 'event_type',
    } as const;
    for (const [key, column] of Object.entries(columns)) {
      const value = filter[key as keyof typeof columns];
      if (value !== undefined) {
        where.push(`${column} = ?`);
        args.push(value);
      }
    }
    if (after) {
      where.push('position > ?::int8');
      args.push(int8(after.position));
    }
    {
      const rows = await this.readOne(
        tenantId,
        `SELECT * FROM ${S}.audit_events WHERE ${where.join(' AND ')} ORDER BY position LIMIT ?`,
        [...args, limit + 1],
      );
      const items: AuditEventRow[] = rows.slice(0, limit).map((a) => ({
        position: BigInt(Number(a.position)),
        eventId: String(a.event_id),
        eventType: String(a.event_type),
        streamName: String(a.stream_name),
        category: String(a.category),
        entityId: String(a.entity_id),
        correlationId: String(a.correlation_id),
        causationId: String(a.causation_id),
        actor: { id: String(a.actor_id), role: String(a.actor_role) },
        occurredAt: iso(a.occurred_at),
        entryId: a.entry_id === null ? null : String(a.entry_id),
      }));
      const last = items[items.length - 1];
      return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.position, 0) : null };
    }
  }

  private async listById<T, F extends Record<string, string | undefined>>(
    tenantId: string,
    table: 'bookings' | 'payouts' | 'top_ups',
    idColumn: string,
    filter: F,
    page: { cursor?: string; limit: number },
    map: (row: Row) => T,
    columns: Record<keyof F, string>,
  ): Promise<Page<T>> {
    assertTenantId(tenantId);
    const limit = pageLimit(page.limit);
    const where: string[] = ['tenant_id = ?'];
    const args: Array<string | number> = [tenantId];
    for (const key of Object.keys(columns) as Array<keyof F>) {
      const value = filter[key];
      if (value !== undefined) {
        where.push(`${columns[key]} = ?`);
        args.push(value);
      }
    }
    if (page.cursor !== undefined) {
      where.push(`${idColumn} > ?`);
      args.push(decodeIdCursor(page.cursor));
    }
    const rows = await this.readOne(
      tenantId,
      `SELECT * FROM ${S}.${table} WHERE ${where.join(' AND ')} ORDER BY ${idColumn} LIMIT ?`,
      [...args, limit + 1],
    );
    const lastRow = rows[limit - 1];
    return {
      items: rows.slice(0, limit).map(map),
      nextCursor: rows.length > limit && lastRow ? encodeIdCursor(String(lastRow[idColumn])) : null,
    };
  }
}

// --------------------------------------------------------------------------------------------------
// Mapping and cursors

function iso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString();
}

/**
 * The account's currency among its balance rows: the given one if it has it, else its only one. An
 * account with balances in several currencies (e.g. stripe:balance) needs the caller to name one.
 */
function pickCurrency(rows: Row[], account: string, currency: string | undefined): string | null {
  const currencies = rows.map((x) => String(x.currency));
  if (currency !== undefined) return currencies.includes(currency) ? currency : null;
  if (currencies.length > 1) {
    throw new DomainError('validation_failed', `account ${account} has balances in several currencies`, {
      field: 'currency',
      currencies,
    });
  }
  return currencies[0] ?? null;
}

function totalsOf(row: Row): Totals {
  return {
    debitsPending: Number(row.debits_pending),
    debitsPosted: Number(row.debits_posted),
    creditsPending: Number(row.credits_pending),
    creditsPosted: Number(row.credits_posted),
  };
}

function toBalance(row: Row, positionColumn: 'last_position' | 'position'): AccountBalance {
  const t = totalsOf(row);
  return {
    account: String(row.account),
    currency: String(row.currency),
    ...t,
    available: Number(row.available),
    version: Number(row.version),
    position: BigInt(Number(row[positionColumn])),
  };
}

function toStatementLine(row: Row): StatementLine {
  const side = normalSideOf(String(row.account));
  const t = totalsOf(row);
  return {
    entryId: String(row.entry_id),
    position: BigInt(Number(row.position)),
    occurredAt: iso(row.occurred_at),
    eventType: String(row.event_type),
    description: String(row.description),
    side: row.side as 'debit' | 'credit',
    effect: row.effect as 'post' | 'hold' | 'release',
    amount: Number(row.amount),
    currency: String(row.currency),
    balanceAfter: {
      posted: postedOf(t, side),
      pending: pendingOf(t, side),
      available: Number(row.available),
    },
    versionAfter: Number(row.version),
    cause: {
      streamName: String(row.stream_name),
      eventId: String(row.event_id),
      correlationId: String(row.correlation_id),
    },
    actor: { id: String(row.actor_id), role: String(row.actor_role) },
    metadata: clientMetadataOf(row.client_metadata),
  };
}

function toBooking(row: Row): BookingView {
  return {
    bookingId: String(row.booking_id),
    studentId: String(row.student_id),
    tutorId: String(row.tutor_id),
    price: { amount: Number(row.price), currency: String(row.currency) },
    scheduledAt: String(row.scheduled_at),
    status: row.status as BookingView['status'],
    holdId: String(row.hold_id),
    captured: Number(row.captured),
    refunded: Number(row.refunded),
    tutorShare: Number(row.tutor_share),
    commission: Number(row.commission),
    cancellationFee: Number(row.cancellation_fee),
    discounts: discountsOf(row.discounts),
  };
}

/** The jsonb discounts column (node-postgres parses jsonb; a text value is parsed here). */
function discountsOf(value: unknown): Discount[] {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  return Array.isArray(parsed) ? (parsed as Discount[]) : [];
}

function toTopUp(row: Row): TopUpView {
  return {
    topUpId: String(row.top_up_id),
    studentId: String(row.student_id),
    status: row.status as TopUpView['status'],
    amount: { amount: Number(row.amount), currency: String(row.currency) },
    paymentIntentId: row.payment_intent_id === null ? null : String(row.payment_intent_id),
    clientSecret: row.client_secret === null ? null : String(row.client_secret),
    failureReason: row.failure_reason === null ? null : String(row.failure_reason),
  };
}

function toPayout(row: Row): PayoutView {
  return {
    payoutId: String(row.payout_id),
    tutorId: String(row.tutor_id),
    amount: { amount: Number(row.amount), currency: String(row.currency) },
    status: row.status as PayoutView['status'],
    stripeTransferId: row.stripe_transfer_id === null ? null : String(row.stripe_transfer_id),
    stripePayoutId: row.stripe_payout_id === null ? null : String(row.stripe_payout_id),
    failureReason: row.failure_reason === null ? null : String(row.failure_reason),
  };
}

function badCursor(): DomainError {
  return new DomainError('validation_failed', 'invalid cursor', { field: 'cursor' });
}

export function encodeCursor(position: bigint, line: number): string {
  return Buffer.from(`${position}.${line}`).toString('base64url');
}

export function decodeCursor(cursor: string): { position: bigint; line: number } {
  const m = /^(\d{1,19})\.(\d{1,6})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw badCursor();
  return { position: BigInt(m[1]!), line: Number(m[2]) };
}

function encodeIdCursor(id: string): string {
  return Buffer.from(`id:${id}`).toString('base64url');
}

function decodeIdCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  if (!text.startsWith('id:') || text.length > 70) throw badCursor();
  return text.slice(3);
}

/** True when `promise` fulfils within `timeoutMs`, false when it is still pending then; rejects with it. */
async function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
