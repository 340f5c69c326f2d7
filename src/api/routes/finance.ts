import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { ChainStore } from '../../chain/chainStore.js';
import type { AdjustmentProposals } from '../../commands/adjustmentProposals.js';
import { type DecodedEvent, decodeEvent } from '../../domain/events.js';
import { parseStreamName } from '../../domain/streams.js';
import type { EventStore } from '../../eventstore/port.js';
import type {
  AccountSummary,
  AuditEvent,
  ConsoleQueries,
  EventPosting,
  JournalEntryOut,
  StatementEntry,
} from '../../projections/consoleQueries.js';
import { METRICS } from '../../projections/dailyMetrics.js';
import { referencesOf, STREAM_REFERENCES } from '../../projections/references.js';
import type { Policy } from '../auth.js';
import { CHAIN_HEAD_HEADER, type ExportChainHead, exportChainHead } from '../chainHeadExport.js';
import {
  AccountListQuery,
  AccountPage,
  AnalyticsQuery,
  AnalyticsReport,
  BalanceSeries,
  BalanceSeriesQuery,
  CausalChain,
  ClearingQuery,
  FINANCE_SCHEMAS,
  JournalCsvQuery,
  JournalPage,
  JournalQuery,
  LedgerEvent,
  OpenClearing,
  ref,
  SearchQuery,
  SearchResults,
  Statement,
  StatementCsvQuery,
  StatementQuery,
  Story,
  TrialBalanceGroups,
} from '../financeSchemas.js';
import { ApiError } from '../problem.js';
import { instantParam, metadataFilterParam } from '../requestValues.js';
import { Account, DEFAULT_PAGE_LIMIT, EntityId, errorResponses } from '../schemas.js';
import type { RouteKit, RouteModule } from '../v1/routeKit.js';
import { adjustmentProposalRoutes } from './adjustmentProposals.js';

/**
 * The finance API behind the console (docs/console.md): search, accounts, statements (one line per
 * entry) and their CSV, the balance over time, the journal of a period and its CSV, events with their
 * causes, money stories, trial balance groups, open clearing accounts and analytics. Reads only, for
 * finance and tenant admins (and internal services) of the caller's tenant.
 */
export const FINANCE_READ: Policy = [
  { role: 'finance_admin' },
  { role: 'tenant_admin' },
  { role: 'service' },
];

export interface FinanceRoutesOptions {
  queries: ConsoleQueries;
  store: EventStore;
  /**
   * The tenants' hash chains: the CSV exports end with the head at their position
   * (chainHeadExport.ts). Absent only where there is no database (the shell harness).
   */
  chain?: ChainStore;
  /** Four-eyes adjustments (their routes share this module's named schemas). */
  proposals: AdjustmentProposals;
  clock?: () => Date;
}

const strict = { additionalProperties: false } as const;
const read = { policy: FINANCE_READ };
/** Rows per page a CSV export reads (it streams page after page). */
const CSV_PAGE_ROWS = 200;
/** Longest a CSV export may take before it is cut (the client sees a truncated download and retries). */
const MAX_CSV_PAGES = 50_000;
const STORY_KINDS = Type.Union(
  [
    'booking',
    'topup',
    'payout',
    'refund',
    'adjustment',
    'adjustment_proposal',
    'reconciliation_run',
    'course',
    'subscription',
    'promotion',
    'stripe',
    'idempotency_key',
    'student',
    'tutor',
  ].map((k) => Type.Literal(k)),
);
const StoryParams = Type.Object(
  { kind: STORY_KINDS, id: Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' }) },
  strict,
);
const EventParams = Type.Object({ eventId: Type.String({ pattern: '^[0-9a-f-]{36}$' }) }, strict);
const EntryParams = Type.Object({ entryId: EntityId }, strict);
const AccountParams = Type.Object({ account: Account }, strict);

function limitOf(limit: string | undefined): number {
  return limit === undefined ? DEFAULT_PAGE_LIMIT : Number(limit);
}

function instant(value: string | undefined, field: string): Date | undefined {
  // instantParam bounds it to years 1..9999: Postgres has no year 0 (from=0000-01-01 was a 500).
  return value === undefined ? undefined : instantParam(value, `querystring/${field}`);
}

function range(from?: string, to?: string): { from?: Date; to?: Date } {
  const a = instant(from, 'from');
  const b = instant(to, 'to');
  if (a && b && !(a < b)) throw new ApiError('validation_failed', 'from must be before to');
  return { ...(a ? { from: a } : {}), ...(b ? { to: b } : {}) };
}

function accountOut(a: AccountSummary) {
  return { ...a, lastPosition: String(a.lastPosition) };
}
function statementEntryOut(e: StatementEntry) {
  return { ...e, position: String(e.position) };
}
function auditOut(e: AuditEvent) {
  return { ...e, position: String(e.position) };
}
function postingOut(p: EventPosting) {
  return {
    line: p.line,
    account: p.account,
    side: p.side,
    effect: p.effect,
    amount: p.amount,
    currency: p.currency,
  };
}
function journalOut(e: JournalEntryOut) {
  return { ...e, position: String(e.position) };
}

/** Statement CSV columns: the JSON's fields, flattened, amounts in minor units. */
export const STATEMENT_CSV_COLUMNS = [
  'position',
  'occurred_at',
  'effective_at',
  'entry_id',
  'event_type',
  'description',
  'currency',
  'posted_change_minor',
  'pending_change_minor',
  'available_change_minor',
  'posted_after_minor',
  'pending_after_minor',
  'available_after_minor',
  'version_after',
  'stream',
  'event_id',
  'correlation_id',
  'actor_id',
  'actor_role',
  'metadata',
] as const;

/** The metadata cell of a CSV row: the JSON object, or empty when the command carried none. */
const metadataCell = (metadata: Record<string, string>) =>
  Object.keys(metadata).length === 0 ? '' : JSON.stringify(metadata);

export function statementCsvRow(e: ReturnType<typeof statementEntryOut>, currency: string): unknown[] {
  return [
    e.position,
    e.occurredAt,
    e.effectiveAt,
    e.entryId,
    e.eventType,
    e.description,
    currency,
    e.change.posted,
    e.change.pending,
    e.change.available,
    e.balanceAfter.posted,
    e.balanceAfter.pending,
    e.balanceAfter.available,
    e.versionAfter,
    e.cause.streamName,
    e.cause.eventId,
    e.cause.correlationId,
    e.actor.id,
    e.actor.role,
    metadataCell(e.metadata),
  ];
}

/** Journal CSV: one row per posting line. */
export const JOURNAL_CSV_COLUMNS = [
  'position',
  'occurred_at',
  'entry_id',
  'description',
  'event_type',
  'stream',
  'event_id',
  'correlation_id',
  'actor_id',
  'actor_role',
  'line',
  'account',
  'side',
  'effect',
  'amount_minor',
  'currency',
  'metadata',
] as const;

export function journalCsvRows(e: ReturnType<typeof journalOut>): unknown[][] {
  return e.postings.map((p) => [
    e.position,
    e.occurredAt,
    e.entryId,
    e.description,
    e.eventType,
    e.streamName,
    e.eventId,
    e.correlationId,
    e.actor.id,
    e.actor.role,
    p.line,
    p.account,
    p.side,
    p.effect,
    p.amount,
    p.currency,
    metadataCell(e.metadata),
  ]);
}

/**
 * Streams a CSV (RFC 4180, header row, CRLF) page by page. Text cells that a spreadsheet would read as a
 * formula (leading = + - @ tab CR) get a leading apostrophe (csv-stringify's escape_formulas): the
 * documented difference from the JSON, where descriptions and reasons are as written.
 */
function sendCsv(
  reply: FastifyReply,
  filename: string,
  columns: readonly string[],
  pages: () => AsyncGenerator<unknown[][]>,
  upTo: bigint,
  chainHead: ExportChainHead | undefined,
): FastifyReply {
  const csv = stringify({
    header: true,
    columns: [...columns],
    escape_formulas: true,
    record_delimiter: 'windows',
  });
  const source = Readable.from(
    (async function* () {
      for await (const rows of pages()) for (const row of rows) yield row;
    })(),
  );
  source.on('error', (error) => csv.destroy(error));
  source.pipe(csv);
  const body = chainHead
    ? Readable.from(
        (async function* () {
          for await (const chunk of csv) yield chunk as string;
          yield `${chainHead.line}\r\n`;
        })(),
      )
    : csv;
  if (chainHead?.anchor) reply.header(CHAIN_HEAD_HEADER, chainHead.anchor);
  return reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename}"`)
    .header('x-ledger-position', String(upTo))
    .send(body);
}

function safeFilename(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 120);
}

/** The event at `position` (one index seek on every store), decoded: the store's bytes checked at this edge. */
async function eventAt(store: EventStore, position: bigint): Promise<DecodedEvent | null> {
  const [event] = await store.readAll({ ...(position > 0n ? { after: position - 1n } : {}), maxCount: 1 });
  return event && event.position === position ? decodeEvent(event) : null;
}

async function eventsAt(store: EventStore, positions: readonly bigint[]): Promise<Map<bigint, DecodedEvent>> {
  const out = new Map<bigint, DecodedEvent>();
  const queue = [...positions];
  const worker = async () => {
    for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
      const event = await eventAt(store, p);
      if (event) out.set(p, event);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
  return out;
}

function stripeObjectsOf(event: DecodedEvent): string[] {
  return referencesOf(event)
    .filter((r) => r.kind === 'stripe')
    .map((r) => r.id);
}

/** Current state of a story's subject, from the entity view the ledger keeps for its kind. */
async function viewOf(
  kit: RouteKit,
  proposals: AdjustmentProposals,
  tenantId: string,
  kind: string,
  id: string,
) {
  const view =
    kind === 'adjustment_proposal'
      ? await proposals.get(tenantId, id)
      : kind === 'booking'
        ? await kit.queries.getBooking(tenantId, id)
        : kind === 'topup'
          ? await kit.queries.getTopUp(tenantId, id)
          : kind === 'payout'
            ? await kit.queries.getPayout(tenantId, id)
            : null;
  if (!view) return null;
  // A top-up's client secret is for the paying client only, never for the console.
  const { clientSecret: _secret, ...rest } = view as unknown as Record<string, unknown>;
  return rest;
}

export function financeRoutes(options: FinanceRoutesOptions): RouteModule {
  const { queries, store, chain } = options;
  const clock = options.clock ?? (() => new Date());
  const proposalRoutes = adjustmentProposalRoutes({ proposals: options.proposals, queries });
  return async (app, { kit }) => {
    for (const schema of FINANCE_SCHEMAS) app.addSchema(schema);
    // In this plugin's own context, where the schemas above are registered.
    await proposalRoutes(app, { kit });
    const tenant = (request: Parameters<RouteKit['principal']>[0]) => kit.principal(request).tenantId;

    app.get(
      '/search',
      {
        config: read,
        schema: {
          operationId: 'search',
          tags: ['finance'],
          summary:
            'Search students, tutors, bookings, payouts, top-ups, refunds, journal entries, event ids, idempotency keys, Stripe objects and accounts; with metadata[key]=value (repeatable), the journal entries carrying those pairs (q then optional: an entry id prefix)',
          querystring: SearchQuery,
          response: { 200: ref(SearchResults), ...errorResponses() },
        },
      },
      async (request) => {
        const metadata = metadataFilterParam(request.query);
        const q = (request.query.q ?? '').trim();
        if (q.length === 0 && !metadata) {
          throw new ApiError('validation_failed', 'q must not be blank (or give metadata[key]=value)');
        }
        const results = await queries.search(tenant(request), q, Number(request.query.limit ?? 20), metadata);
        return {
          query: q,
          results: results.map((r) => ({
            ...r,
            lastPosition: r.lastPosition === null ? null : String(r.lastPosition),
          })),
        };
      },
    );

    app.get(
      '/accounts',
      {
        config: read,
        schema: {
          operationId: 'listAccounts',
          tags: ['finance'],
          summary: 'Accounts with their balances, by path prefix, kind and currency (paged, in path order)',
          querystring: AccountListQuery,
          response: { 200: ref(AccountPage), ...errorResponses() },
        },
      },
      async (request) => {
        const { prefix, kind, currency, cursor } = request.query;
        const page = await queries.listAccounts(
          tenant(request),
          { ...(prefix ? { prefix } : {}), ...(kind ? { kind } : {}), ...(currency ? { currency } : {}) },
          { ...(cursor ? { cursor } : {}), limit: limitOf(request.query.limit) },
        );
        return { items: page.items.map(accountOut), nextCursor: page.nextCursor };
      },
    );

    const statementOf = async (
      tenantId: string,
      account: string,
      q: {
        currency?: string;
        from?: string;
        to?: string;
        asOf?: string;
        knownAt?: string;
        upTo?: string;
        order?: 'asc' | 'desc';
      },
      cursor: string | undefined,
      limit: number,
    ) => {
      const metadata = metadataFilterParam(q);
      const statement = await queries.getStatement(tenantId, account, {
        ...(q.currency ? { currency: q.currency } : {}),
        ...range(q.from, q.to),
        ...(q.asOf !== undefined ? { asOf: instantParam(q.asOf, 'querystring/asOf') } : {}),
        ...(q.knownAt !== undefined ? { knownAt: instantParam(q.knownAt, 'querystring/knownAt') } : {}),
        ...(q.upTo !== undefined ? { upTo: BigInt(q.upTo) } : {}),
        ...(metadata ? { metadata } : {}),
        order: q.order ?? 'desc',
        ...(cursor ? { cursor } : {}),
        limit,
      });
      if (!statement) throw new ApiError('not_found', 'account not found');
      return statement;
    };

    app.get(
      '/accounts/:account/statement',
      {
        config: read,
        schema: {
          operationId: 'getAccountStatement',
          tags: ['finance'],
          summary:
            'Account statement: one line per journal entry (a capture reads as one line), with the running balance after it and the metadata of its command (filter: metadata[key]=value, repeatable)',
          params: AccountParams,
          querystring: StatementQuery,
          response: { 200: ref(Statement), ...errorResponses() },
        },
      },
      async (request) => {
        const s = await statementOf(
          tenant(request),
          request.params.account,
          request.query,
          request.query.cursor,
          limitOf(request.query.limit),
        );
        return { ...s, items: s.items.map(statementEntryOut) };
      },
    );

    app.get(
      '/accounts/:account/statement.csv',
      {
        config: read,
        schema: {
          operationId: 'exportAccountStatementCsv',
          tags: ['finance'],
          summary:
            'The account statement as CSV (streamed; the same lines as the JSON statement with the same filters, pinned to the position in X-Ledger-Position)',
          params: AccountParams,
          querystring: StatementCsvQuery,
          produces: ['text/csv'],
          response: {
            200: { description: 'text/csv', content: { 'text/csv': { schema: Type.String() } } },
            ...errorResponses(),
          },
        },
      },
      async (request, reply) => {
        const tenantId = tenant(request);
        const { account } = request.params;
        const upTo =
          request.query.upTo !== undefined ? BigInt(request.query.upTo) : await queries.projectedPosition();
        const q = { ...request.query, upTo: String(upTo) };
        // The first page before any byte is sent: a missing account is still a 404 problem.
        const first = await statementOf(tenantId, account, q, undefined, CSV_PAGE_ROWS);
        const currency = first.currency;
        const chainHead = chain ? await exportChainHead(chain, tenantId, upTo) : undefined;
        return sendCsv(
          reply,
          safeFilename(`statement-${account}-${currency}.csv`),
          STATEMENT_CSV_COLUMNS,
          async function* () {
            let page = first;
            for (let n = 0; n < MAX_CSV_PAGES; n++) {
              yield page.items.map((e) => statementCsvRow(statementEntryOut(e), currency));
              if (!page.nextCursor) return;
              page = await statementOf(tenantId, account, { ...q, currency }, page.nextCursor, CSV_PAGE_ROWS);
            }
          },
          upTo,
          chainHead,
        );
      },
    );

    app.get(
      '/accounts/:account/balance-series',
      {
        config: read,
        schema: {
          operationId: 'getAccountBalanceSeries',
          tags: ['finance'],
          summary:
            'The balance over time: the as-of balance at evenly spaced instants (one index seek each), for charts',
          params: AccountParams,
          querystring: BalanceSeriesQuery,
          response: { 200: ref(BalanceSeries), ...errorResponses() },
        },
      },
      async (request) => {
        const tenantId = tenant(request);
        const { account } = request.params;
        const currencies = await queries.accountCurrencies(tenantId, account);
        const currency =
          request.query.currency ?? (currencies.length === 1 ? currencies[0]!.currency : undefined);
        if (currencies.length === 0) throw new ApiError('not_found', 'account not found');
        if (!currency) {
          throw new ApiError('validation_failed', `account ${account} has balances in several currencies`, {
            details: { currencies: currencies.map((c) => c.currency) },
          });
        }
        let { from, to } = range(request.query.from, request.query.to);
        if (!from || !to) {
          const span = await queries.accountSpan(tenantId, account, currency);
          if (!span) throw new ApiError('not_found', 'account not found');
          from ??= new Date(span.first);
          to ??= new Date(Math.max(Date.parse(span.last), from.getTime() + 1000));
        }
        const series = await queries.getBalanceSeries(tenantId, account, {
          currency,
          from,
          to,
          points: Number(request.query.points ?? 200),
        });
        if (!series) throw new ApiError('not_found', 'account not found');
        return { ...series, points: series.points.map((p) => ({ ...p, position: String(p.position) })) };
      },
    );

    app.get(
      '/journal',
      {
        config: read,
        schema: {
          operationId: 'getJournal',
          tags: ['finance'],
          summary: 'The journal of a period: every entry with its postings, in time order (paged)',
          querystring: JournalQuery,
          response: { 200: ref(JournalPage), ...errorResponses() },
        },
      },
      async (request) => {
        const { cursor, upTo } = request.query;
        const metadata = metadataFilterParam(request.query);
        const page = await queries.getJournal(tenant(request), {
          ...range(request.query.from, request.query.to),
          ...(upTo !== undefined ? { upTo: BigInt(upTo) } : {}),
          ...(metadata ? { metadata } : {}),
          ...(cursor ? { cursor } : {}),
          limit: limitOf(request.query.limit),
        });
        return { items: page.items.map(journalOut), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/journal.csv',
      {
        config: read,
        schema: {
          operationId: 'exportJournalCsv',
          tags: ['finance'],
          summary:
            'The journal of a period as CSV for an accountant, one row per posting (streamed; the same entries as GET /journal, pinned to X-Ledger-Position)',
          querystring: JournalCsvQuery,
          produces: ['text/csv'],
          response: {
            200: { description: 'text/csv', content: { 'text/csv': { schema: Type.String() } } },
            ...errorResponses(),
          },
        },
      },
      async (request, reply) => {
        const tenantId = tenant(request);
        const period = range(request.query.from, request.query.to);
        const metadata = metadataFilterParam(request.query);
        const upTo =
          request.query.upTo !== undefined ? BigInt(request.query.upTo) : await queries.projectedPosition();
        const name = `journal-${tenantId}-${request.query.from?.slice(0, 10) ?? 'start'}-${request.query.to?.slice(0, 10) ?? 'now'}.csv`;
        const chainHead = chain ? await exportChainHead(chain, tenantId, upTo) : undefined;
        return sendCsv(
          reply,
          safeFilename(name),
          JOURNAL_CSV_COLUMNS,
          async function* () {
            let cursor: string | undefined;
            for (let n = 0; n < MAX_CSV_PAGES; n++) {
              const page = await queries.getJournal(tenantId, {
                ...period,
                upTo,
                ...(metadata ? { metadata } : {}),
                ...(cursor ? { cursor } : {}),
                limit: CSV_PAGE_ROWS,
              });
              yield page.items.flatMap((e) => journalCsvRows(journalOut(e)));
              if (!page.nextCursor) return;
              cursor = page.nextCursor;
            }
          },
          upTo,
          chainHead,
        );
      },
    );

    app.get(
      '/events/:eventId',
      {
        config: read,
        schema: {
          operationId: 'getEvent',
          tags: ['finance'],
          summary: 'One event of the ledger: its data, metadata, postings and the Stripe objects it names',
          params: EventParams,
          response: { 200: ref(LedgerEvent), ...errorResponses() },
        },
      },
      async (request) => {
        const found = await queries.getEvent(tenant(request), request.params.eventId);
        if (!found) throw new ApiError('not_found', 'event not found');
        const recorded = await eventAt(store, found.event.position);
        return {
          event: auditOut(found.event),
          data: (recorded?.data ?? {}) as Record<string, unknown>,
          postings: found.postings.map(postingOut),
          stripeObjects: recorded ? stripeObjectsOf(recorded) : [],
        };
      },
    );

    const causes = async (tenantId: string, eventId: string) => {
      const chain = await queries.getCauses(tenantId, eventId);
      if (!chain) throw new ApiError('not_found', 'event not found');
      return { chain: chain.chain.map(auditOut), origin: chain.origin, effects: chain.effects.map(auditOut) };
    };

    app.get(
      '/events/:eventId/causes',
      {
        config: read,
        schema: {
          operationId: 'getEventCauses',
          tags: ['finance'],
          summary: 'The chain of causes of an event back to the request (or webhook, or job) that started it',
          params: EventParams,
          response: { 200: ref(CausalChain), ...errorResponses() },
        },
      },
      async (request) => causes(tenant(request), request.params.eventId),
    );

    app.get(
      '/entries/:entryId/causes',
      {
        config: read,
        schema: {
          operationId: 'getEntryCauses',
          tags: ['finance'],
          summary: "The chain of causes of a journal entry's event back to the request that started it",
          params: EntryParams,
          response: { 200: ref(CausalChain), ...errorResponses() },
        },
      },
      async (request) => {
        const tenantId = tenant(request);
        const eventId = await queries.eventIdOfEntry(tenantId, request.params.entryId);
        if (!eventId) throw new ApiError('not_found', 'entry not found');
        return causes(tenantId, eventId);
      },
    );

    app.get(
      '/stories/:kind/:id',
      {
        config: read,
        schema: {
          operationId: 'getMoneyStory',
          tags: ['finance'],
          summary:
            'The money story of a booking, top-up, payout, refund, adjustment, Stripe object…: every event of the flow in every stream, in order, with postings, actor, causation, correlation and the current state',
          params: StoryParams,
          response: { 200: ref(Story), ...errorResponses() },
        },
      },
      async (request) => {
        const tenantId = tenant(request);
        const { kind, id } = request.params;
        const story = await queries.getStory(tenantId, kind, id);
        if (story.events.length === 0) throw new ApiError('not_found', `no ${kind} ${id}`);
        const recorded = await eventsAt(
          store,
          story.events.map((e) => e.position),
        );
        const postingsAt = new Map<bigint, EventPosting[]>();
        for (const p of story.postings) {
          const list = postingsAt.get(p.position) ?? [];
          list.push(p);
          postingsAt.set(p.position, list);
        }
        const stripeObjects = new Set<string>();
        const events = story.events.map((e) => {
          const event = recorded.get(e.position);
          const stripe = event ? stripeObjectsOf(event) : [];
          for (const s of stripe) stripeObjects.add(s);
          return {
            event: auditOut(e),
            data: (event?.data ?? {}) as Record<string, unknown>,
            postings: (postingsAt.get(e.position) ?? []).map(postingOut),
            stripeObjects: stripe,
          };
        });
        const ownCategory = Object.entries(STREAM_REFERENCES).find(([, k]) => k === kind)?.[0];
        const own = story.events.filter((e) => {
          const s = parseStreamName(e.streamName);
          return s !== null && s.category === ownCategory && s.id === id;
        });
        const view = await viewOf(kit, options.proposals, tenantId, kind, id);
        return {
          kind,
          id,
          events,
          streams: [...new Set(story.events.map((e) => e.streamName))],
          stripeObjects: [...stripeObjects],
          accounts: story.balances.map(accountOut),
          state: {
            status: view && typeof view.status === 'string' ? view.status : null,
            lastEventType: own.at(-1)?.eventType ?? story.events.at(-1)?.eventType ?? null,
            view,
          },
          truncated: story.truncated,
        };
      },
    );

    app.get(
      '/ledger/trial-balance/groups',
      {
        config: read,
        schema: {
          operationId: 'getTrialBalanceGroups',
          tags: ['finance'],
          summary:
            'The trial balance per currency broken down by account group (student wallets, tutor earnings, clearing per flow, each platform account), for drill-down',
          response: { 200: ref(TrialBalanceGroups), ...errorResponses() },
        },
      },
      async (request) => ({ groups: await queries.getTrialBalanceGroups(tenant(request)) }),
    );

    app.get(
      '/ledger/clearing',
      {
        config: read,
        schema: {
          operationId: 'listOpenClearingAccounts',
          tags: ['finance'],
          summary: 'Clearing accounts not back at zero, oldest first, with how long they have been open',
          querystring: ClearingQuery,
          response: { 200: ref(OpenClearing), ...errorResponses() },
        },
      },
      async (request) => {
        const now = clock();
        const accounts = await queries.getOpenClearing(tenant(request), now, limitOf(request.query.limit));
        return {
          asOf: now.toISOString(),
          accounts: accounts.map(({ ageSeconds, ...a }) => ({ account: accountOut(a), ageSeconds })),
        };
      },
    );

    app.get(
      '/analytics',
      {
        config: read,
        schema: {
          operationId: 'getFinanceAnalytics',
          tags: ['finance'],
          summary:
            'Finance analytics per day, week or month in one currency: gross booking value, net revenue by source, refunds and their rate, promotions, deferred revenue, payouts, active wallets, money held for students (from daily aggregates)',
          querystring: AnalyticsQuery,
          response: { 200: ref(AnalyticsReport), ...errorResponses() },
        },
      },
      async (request) => {
        const { from, to, currency } = request.query;
        const granularity = request.query.granularity ?? 'day';
        if (Number.isNaN(Date.parse(`${from}T00:00:00Z`)) || Number.isNaN(Date.parse(`${to}T00:00:00Z`))) {
          throw new ApiError('validation_failed', 'from and to must be dates (YYYY-MM-DD)');
        }
        if (!(from < to)) throw new ApiError('validation_failed', 'from must be before to');
        const days = (Date.parse(to) - Date.parse(from)) / 86_400_000;
        if (days > 3 * 366) throw new ApiError('validation_failed', 'a report covers at most three years');
        const periods = await queries.getAnalytics(tenant(request), { from, to, granularity, currency });
        // The fixed metrics in their order, then revenue sources as they appear.
        const names = new Set<string>(Object.keys(METRICS));
        for (const p of periods) for (const m of Object.keys(p.metrics).sort()) names.add(m);
        return {
          from,
          to,
          granularity,
          currency,
          metrics: [...names].map((name) => {
            const fixed = (METRICS as Record<string, { kind: string; label: string }>)[name];
            return {
              name,
              kind: fixed?.kind ?? 'flow',
              label: fixed?.label ?? `Revenue: ${name.replace(/^revenue:/, '')}`,
            };
          }),
          periods: periods.map((p) => {
            const gbv = p.metrics.gross_booking_value?.amount ?? 0;
            const refunds = p.metrics.refunds?.amount ?? 0;
            return {
              ...p,
              refundRateBps: gbv > 0 ? Math.round((refunds * 10_000) / gbv) : null,
            };
          }),
        };
      },
    );
  };
}
