import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { StreamNotFoundError } from '../../eventstore/port.js';
import type { AccountBalance, EntryDetail, Page, StatementLine } from '../../projections/ledgerQueries.js';
import type { Policy } from '../auth.js';
import { ApiError } from '../problem.js';
import { instantParam, metadataFilterParam, positionParam } from '../requestValues.js';
import {
  Account,
  AccountBalanceOut,
  BalanceQuery,
  BookingOut,
  ConsistencyQuery,
  DEFAULT_PAGE_LIMIT,
  EarningsOut,
  EntityId,
  EntriesQuery,
  EntryOut,
  errorResponses,
  PayoutOut,
  SettingsOut,
  StatementPage,
  StreamEventsOut,
  StreamEventsQuery,
  StreamName,
  TopUpOut,
  TrialBalanceOut,
  WalletOut,
} from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/** Reads: every GET accepts consistentWith=<position> (src/api/v1/readYourWrites.ts). */
const policies = {
  wallet: [
    { role: 'student', own: { kind: 'param', name: 'studentId' } },
    { role: 'guardian', own: { kind: 'guardianOf', param: 'studentId' } },
    { role: 'finance_admin' },
    { role: 'service' },
  ],
  topUp: [
    { role: 'student', own: { kind: 'topUp', param: 'topUpId', field: 'studentId' } },
    { role: 'finance_admin' },
    { role: 'service' },
  ],
  booking: [
    { role: 'student', own: { kind: 'booking', param: 'bookingId', field: 'studentId' } },
    { role: 'tutor', own: { kind: 'booking', param: 'bookingId', field: 'tutorId' } },
    { role: 'finance_admin' },
    { role: 'service' },
  ],
  earnings: [
    { role: 'tutor', own: { kind: 'param', name: 'tutorId' } },
    { role: 'finance_admin' },
    { role: 'service' },
  ],
  payout: [
    { role: 'tutor', own: { kind: 'payout', param: 'payoutId', field: 'tutorId' } },
    { role: 'finance_admin' },
    { role: 'service' },
  ],
  account: [
    { role: 'student', own: { kind: 'account', param: 'account', prefix: 'student' } },
    { role: 'tutor', own: { kind: 'account', param: 'account', prefix: 'tutor' } },
    { role: 'finance_admin' },
    // Tenant admins read the ledger of their tenant (the finance console); they do not move money.
    { role: 'tenant_admin' },
    { role: 'service' },
  ],
  audit: [{ role: 'finance_admin' }, { role: 'tenant_admin' }, { role: 'service' }],
  settings: [{ role: 'tenant_admin' }, { role: 'finance_admin' }, { role: 'service' }],
} satisfies Record<string, Policy>;

const read = (policy: Policy) => ({ policy });
const strict = { additionalProperties: false } as const;

function page(query: { cursor?: string; limit?: string }): { cursor?: string; limit: number } {
  const limit = query.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(query.limit);
  return query.cursor === undefined ? { limit } : { cursor: query.cursor, limit };
}

/** A page of entries, with the `metadata[key]=value` filter when the query has one. */
function entriesPage(query: { cursor?: string; limit?: string }) {
  const metadata = metadataFilterParam(query);
  return metadata ? { ...page(query), metadata } : page(query);
}

function statementOut(line: StatementLine) {
  return { ...line, position: String(line.position) };
}
function statementPageOut(p: Page<StatementLine>) {
  return { items: p.items.map(statementOut), nextCursor: p.nextCursor };
}
function balanceOut(b: AccountBalance) {
  return { ...b, position: String(b.position) };
}
function entryOut(e: EntryDetail) {
  return {
    ...e,
    position: String(e.position),
    chain: e.chain.map((c) => ({ ...c, position: String(c.position) })),
  };
}
function found<T>(value: T | null, what: string): T {
  if (value === null) throw new ApiError('not_found', `${what} not found`);
  return value;
}

export const ledgerRoutes: RouteModule = async (app, { kit }) => {
  const tenant = (request: FastifyRequest) => kit.principal(request).tenantId;

  app.get(
    '/wallets/:studentId',
    {
      config: read(policies.wallet),
      schema: {
        tags: ['wallets'],
        summary: 'Wallet balances',
        params: Type.Object({ studentId: EntityId }, strict),
        querystring: ConsistencyQuery,
        response: { 200: WalletOut, ...errorResponses() },
      },
    },
    async (request) =>
      found(await kit.queries.getWallet(tenant(request), request.params.studentId), 'wallet'),
  );

  app.get(
    '/wallets/:studentId/transactions',
    {
      config: read(policies.wallet),
      schema: {
        tags: ['wallets'],
        summary:
          'Wallet statement with running balance, cause and metadata (filter: metadata[key]=value, repeatable)',
        params: Type.Object({ studentId: EntityId }, strict),
        querystring: EntriesQuery,
        response: { 200: StatementPage, ...errorResponses() },
      },
    },
    async (request) =>
      statementPageOut(
        await kit.queries.getWalletTransactions(
          tenant(request),
          request.params.studentId,
          entriesPage(request.query),
        ),
      ),
  );

  app.get(
    '/top-ups/:topUpId',
    {
      config: read(policies.topUp),
      schema: {
        tags: ['wallets'],
        summary: 'A top-up and its status',
        params: Type.Object({ topUpId: EntityId }, strict),
        querystring: ConsistencyQuery,
        response: { 200: TopUpOut, ...errorResponses() },
      },
    },
    async (request) => found(await kit.queries.getTopUp(tenant(request), request.params.topUpId), 'top-up'),
  );

  app.get(
    '/bookings/:bookingId',
    {
      config: read(policies.booking),
      schema: {
        tags: ['bookings'],
        summary: 'A booking',
        params: Type.Object({ bookingId: EntityId }, strict),
        querystring: ConsistencyQuery,
        response: { 200: BookingOut, ...errorResponses() },
      },
    },
    async (request) =>
      found(await kit.queries.getBooking(tenant(request), request.params.bookingId), 'booking'),
  );

  app.get(
    '/tutors/:tutorId/earnings',
    {
      config: read(policies.earnings),
      schema: {
        tags: ['tutors'],
        summary: 'Tutor earnings: pending, available, receivable, paid out',
        params: Type.Object({ tutorId: EntityId }, strict),
        querystring: ConsistencyQuery,
        response: { 200: EarningsOut, ...errorResponses() },
      },
    },
    async (request) =>
      found(await kit.queries.getTutorEarnings(tenant(request), request.params.tutorId), 'earnings'),
  );

  app.get(
    '/payouts/:payoutId',
    {
      config: read(policies.payout),
      schema: {
        tags: ['tutors'],
        summary: 'A payout',
        params: Type.Object({ payoutId: EntityId }, strict),
        querystring: ConsistencyQuery,
        response: { 200: PayoutOut, ...errorResponses() },
      },
    },
    async (request) => found(await kit.queries.getPayout(tenant(request), request.params.payoutId), 'payout'),
  );

  app.get(
    '/accounts/:account/balance',
    {
      config: read(policies.account),
      schema: {
        tags: ['ledger'],
        summary:
          'Account balance now, as of a position, or as of an effective time (asOf) as known at a time (knownAt)',
        params: Type.Object({ account: Account }, strict),
        querystring: BalanceQuery,
        response: { 200: AccountBalanceOut, ...errorResponses() },
      },
    },
    async (request) => {
      const { asOf, knownAt, position } = request.query;
      if ((asOf !== undefined || knownAt !== undefined) && position !== undefined) {
        throw new ApiError('validation_failed', 'give asOf/knownAt or position, not both');
      }
      const known = knownAt !== undefined ? instantParam(knownAt, 'querystring/knownAt') : undefined;
      const at =
        position !== undefined
          ? { position: positionParam(position, 'querystring/position') }
          : asOf !== undefined || known !== undefined
            ? {
                time: asOf !== undefined ? instantParam(asOf, 'querystring/asOf') : (known as Date),
                ...(known !== undefined ? { knownAt: known } : {}),
              }
            : undefined;
      const balance = await kit.queries.getAccountBalance(tenant(request), request.params.account, at);
      return balanceOut(found(balance, 'account'));
    },
  );

  app.get(
    '/accounts/:account/entries',
    {
      config: read(policies.account),
      schema: {
        tags: ['ledger'],
        summary:
          'Postings of an account with running balances and metadata (filter: metadata[key]=value, repeatable)',
        params: Type.Object({ account: Account }, strict),
        querystring: EntriesQuery,
        response: { 200: StatementPage, ...errorResponses() },
      },
    },
    async (request) =>
      statementPageOut(
        await kit.queries.getAccountEntries(
          tenant(request),
          request.params.account,
          entriesPage(request.query),
        ),
      ),
  );

  app.get(
    '/entries/:entryId',
    {
      config: read(policies.audit),
      schema: {
        tags: ['ledger'],
        summary: 'A journal entry with its postings and its causal chain (audit trail)',
        params: Type.Object({ entryId: EntityId }, strict),
        querystring: ConsistencyQuery,
        response: { 200: EntryOut, ...errorResponses() },
      },
    },
    async (request) =>
      entryOut(found(await kit.queries.getEntry(tenant(request), request.params.entryId), 'entry')),
  );

  app.get(
    '/streams/:stream/events',
    {
      config: read(policies.audit),
      schema: {
        tags: ['ledger'],
        summary: "The events of one stream of the caller's tenant (audit trail)",
        params: Type.Object({ stream: StreamName }, strict),
        querystring: StreamEventsQuery,
        response: { 200: StreamEventsOut, ...errorResponses() },
      },
    },
    async (request) => {
      const { stream } = request.params;
      const tenantId = tenant(request);
      // `{category}-{tenant}.{id}`: another tenant's stream does not exist for this caller.
      const streamTenant = stream.slice(stream.indexOf('-') + 1, stream.indexOf('.'));
      if (streamTenant !== tenantId) throw new ApiError('not_found', 'stream not found');
      const limit = request.query.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(request.query.limit);
      const fromRevision = positionParam(request.query.fromRevision ?? '0', 'querystring/fromRevision');
      let events: Awaited<ReturnType<typeof kit.store.readStream>>;
      try {
        events = await kit.store.readStream(stream, {
          direction: 'forwards',
          fromRevision,
          maxCount: limit + 1,
        });
      } catch (error) {
        if (error instanceof StreamNotFoundError) throw new ApiError('not_found', 'stream not found');
        throw error;
      }
      const pageEvents = events.slice(0, limit).filter((e) => e.metadata.tenantId === tenantId);
      const last = pageEvents.at(-1);
      return {
        streamName: stream,
        events: pageEvents.map((e) => ({
          id: e.id,
          type: e.type,
          revision: String(e.revision),
          position: String(e.position),
          recordedAt: e.recordedAt.toISOString(),
          data: e.data,
          metadata: e.metadata,
        })),
        nextRevision: events.length > limit && last ? String(last.revision + 1n) : null,
      };
    },
  );

  app.get(
    '/ledger/trial-balance',
    {
      config: read(policies.audit),
      schema: {
        tags: ['ledger'],
        summary: 'Trial balance per currency (must be zero)',
        querystring: ConsistencyQuery,
        response: { 200: TrialBalanceOut, ...errorResponses() },
      },
    },
    async (request) => {
      const rows = await kit.queries.getTrialBalance(tenant(request));
      return {
        balanced: rows.every((r) => r.postedDifference === 0 && r.pendingDifference === 0),
        currencies: rows,
      };
    },
  );

  app.get(
    '/tenant/settings',
    {
      config: read(policies.settings),
      schema: {
        tags: ['tenant'],
        summary: 'Tenant settings in force',
        querystring: ConsistencyQuery,
        response: { 200: SettingsOut, ...errorResponses() },
      },
    },
    async (request) => kit.commands.getSettings(tenant(request)),
  );
};
