import { type Static, type TSchema, Type } from 'typebox';

/**
 * Schemas of the finance API behind the console (src/api/routes/finance.ts, adjustmentProposals.ts).
 * Each response schema has an `$id`: the routes register them once and refer to them, so the OpenAPI
 * document lists them under components/schemas by these names and generated clients get real type
 * names. This file imports nothing but TypeBox, so the console's browser code type-checks against the
 * same definitions (console/src/types.ts).
 *
 * Amounts are integers in minor units; positions and cursors are strings.
 */
const strict = { additionalProperties: false } as const;

/**
 * A reference to a named schema (`{"$ref": "<$id>"}` at run time), typed as the schema itself so the
 * static types of the schemas around it stay exact.
 */
export function ref<T extends TSchema>(schema: T): T {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== 'string') throw new Error('ref() needs a schema with an $id');
  return Type.Ref(id) as unknown as T;
}
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Integer = Type.Integer();
const PositionOut = Type.String({ description: 'global position (64-bit, as a string)' });
const Side = Type.Union([Type.Literal('debit'), Type.Literal('credit')]);
const Effect = Type.Union([Type.Literal('post'), Type.Literal('hold'), Type.Literal('release')]);
const Actor = Type.Object({ id: Type.String(), role: Type.String() }, strict);
const Balances = Type.Object({ posted: Integer, pending: Integer, available: Integer }, strict);

/** The caller's metadata of the command that made an entry (src/domain/clientMetadata.ts); {} when none. */
const Metadata = Type.Record(Type.String(), Type.String());

/** The caller's metadata on a request: the domain's bounds (src/domain/clientMetadata.ts; `{}` is none). */
const MetadataValue = Type.String({ minLength: 1, maxLength: 500, pattern: '^[^\\u0000-\\u001f\\u007f]*$' });
export const MetadataIn = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,40}$' }), MetadataValue, {
  additionalProperties: false,
  maxProperties: 20,
});

// --- Query strings (digit strings: query values are not type-coerced) ---------------------------------

/**
 * `metadata[key]=value` (repeatable): only entries whose metadata has every pair. The key alphabet and
 * value bounds are the domain's (src/domain/clientMetadata.ts; a unit test holds them equal).
 */
export const METADATA_FILTER = {
  patternProperties: {
    '^metadata\\[[A-Za-z0-9_.:-]{1,40}\\]$': MetadataValue,
  },
} as const;

const Instant = Type.String({ format: 'date-time', maxLength: 40 });
const Day = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', maxLength: 10 });
const Currency = Type.String({ pattern: '^[a-z]{3}$', minLength: 3, maxLength: 3 });
const Position = Type.String({ pattern: '^(0|[1-9][0-9]{0,18})$', maxLength: 19 });
const Cursor = Type.String({ minLength: 1, maxLength: 512 });
const Limit = Type.String({ pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', maxLength: 3 });

export const SearchQuery = Type.Object(
  {
    /** Optional only with a metadata filter (the route checks). */
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    limit: Type.Optional(Type.String({ pattern: '^(50|[1-4][0-9]|[1-9])$', maxLength: 2 })),
    consistentWith: Type.Optional(Position),
  },
  { ...strict, ...METADATA_FILTER },
);

export const AccountKindFilter = Type.Union([
  Type.Literal('asset'),
  Type.Literal('liability'),
  Type.Literal('revenue'),
  Type.Literal('expense'),
  Type.Literal('clearing'),
]);

export const AccountListQuery = Type.Object(
  {
    prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_:-]+$' })),
    kind: Type.Optional(AccountKindFilter),
    currency: Type.Optional(Currency),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
    consistentWith: Type.Optional(Position),
  },
  strict,
);

/** "As of effective time T, as known at time K" (docs/ledger-flows.md, "Backdated entries and closed periods"). */
const BitemporalQuery = {
  asOf: Type.Optional(
    Type.String({
      format: 'date-time',
      maxLength: 40,
      description: 'Only entries effective at or before this instant',
    }),
  ),
  knownAt: Type.Optional(
    Type.String({
      format: 'date-time',
      maxLength: 40,
      description: 'As the ledger knew it then: entries recorded later are left out (default: now)',
    }),
  ),
};
export const StatementQuery = Type.Object(
  {
    currency: Type.Optional(Currency),
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    ...BitemporalQuery,
    upTo: Type.Optional(Position),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
    consistentWith: Type.Optional(Position),
  },
  { ...strict, ...METADATA_FILTER },
);
export const StatementCsvQuery = Type.Object(
  {
    currency: Type.Optional(Currency),
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    ...BitemporalQuery,
    upTo: Type.Optional(Position),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
    consistentWith: Type.Optional(Position),
  },
  { ...strict, ...METADATA_FILTER },
);

export const BalanceSeriesQuery = Type.Object(
  {
    currency: Type.Optional(Currency),
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    points: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,3}$', maxLength: 4 })),
    consistentWith: Type.Optional(Position),
  },
  strict,
);

export const JournalQuery = Type.Object(
  {
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    upTo: Type.Optional(Position),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
    consistentWith: Type.Optional(Position),
  },
  { ...strict, ...METADATA_FILTER },
);
export const JournalCsvQuery = Type.Object(
  {
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    upTo: Type.Optional(Position),
    consistentWith: Type.Optional(Position),
  },
  { ...strict, ...METADATA_FILTER },
);

export const ClearingQuery = Type.Object(
  { limit: Type.Optional(Limit), consistentWith: Type.Optional(Position) },
  strict,
);

export const AnalyticsQuery = Type.Object(
  {
    from: Day,
    to: Day,
    granularity: Type.Optional(
      Type.Union([Type.Literal('day'), Type.Literal('week'), Type.Literal('month')]),
    ),
    currency: Currency,
    consistentWith: Type.Optional(Position),
  },
  strict,
);

// --- Responses ----------------------------------------------------------------------------------------

export const SearchResult = Type.Object(
  {
    kind: Type.String({
      description:
        'student, tutor, booking, payout, topup, refund, adjustment, adjustment_proposal, reconciliation_run, ' +
        'course, subscription, promotion, stripe, idempotency_key, entry, event or account',
    }),
    id: Type.String(),
    streamName: Nullable(Type.String()),
    firstEventType: Nullable(Type.String()),
    lastEventType: Nullable(Type.String()),
    lastOccurredAt: Nullable(Type.String()),
    events: Integer,
    lastPosition: Nullable(PositionOut),
    currency: Nullable(Type.String()),
  },
  { ...strict, $id: 'SearchResult' },
);

export const SearchResults = Type.Object(
  { query: Type.String(), results: Type.Array(ref(SearchResult)) },
  { ...strict, $id: 'SearchResults' },
);

export const AccountSummary = Type.Object(
  {
    account: Type.String(),
    currency: Type.String(),
    kind: Type.String({ description: 'asset, liability, revenue, expense, clearing (or unknown)' }),
    normalSide: Side,
    posted: Integer,
    pending: Integer,
    available: Integer,
    debitsPosted: Integer,
    creditsPosted: Integer,
    debitsPending: Integer,
    creditsPending: Integer,
    version: Integer,
    lastPosition: PositionOut,
    lastOccurredAt: Type.String(),
  },
  { ...strict, $id: 'AccountSummary' },
);

export const AccountPage = Type.Object(
  { items: Type.Array(ref(AccountSummary)), nextCursor: Nullable(Type.String()) },
  { ...strict, $id: 'AccountPage' },
);

export const StatementEntry = Type.Object(
  {
    entryId: Type.String(),
    position: PositionOut,
    occurredAt: Type.String({ description: 'When the ledger recorded the entry' }),
    effectiveAt: Type.String({ description: 'When it happened; statements list in this order' }),
    eventType: Type.String(),
    description: Type.String(),
    change: Balances,
    lines: Type.Array(Type.Object({ side: Side, effect: Effect, amount: Integer }, strict)),
    balanceAfter: Balances,
    versionAfter: Integer,
    cause: Type.Object(
      { streamName: Type.String(), eventId: Type.String(), correlationId: Type.String() },
      strict,
    ),
    actor: Actor,
    metadata: Metadata,
  },
  { ...strict, $id: 'StatementEntry' },
);

export const Statement = Type.Object(
  {
    account: Type.String(),
    currency: Type.String(),
    items: Type.Array(ref(StatementEntry)),
    nextCursor: Nullable(Type.String()),
  },
  { ...strict, $id: 'Statement' },
);

export const BalanceSeries = Type.Object(
  {
    account: Type.String(),
    currency: Type.String(),
    points: Type.Array(
      Type.Object(
        { at: Type.String(), posted: Integer, pending: Integer, available: Integer, position: Type.String() },
        strict,
      ),
    ),
  },
  { ...strict, $id: 'BalanceSeries' },
);

const PostingOut = Type.Object(
  {
    line: Integer,
    account: Type.String(),
    side: Side,
    effect: Effect,
    amount: Integer,
    currency: Type.String(),
  },
  strict,
);

export const JournalEntry = Type.Object(
  {
    entryId: Type.String(),
    position: PositionOut,
    occurredAt: Type.String(),
    description: Type.String(),
    eventId: Type.String(),
    eventType: Type.String(),
    streamName: Type.String(),
    correlationId: Type.String(),
    actor: Actor,
    metadata: Metadata,
    postings: Type.Array(PostingOut),
  },
  { ...strict, $id: 'JournalEntry' },
);

export const JournalPage = Type.Object(
  { items: Type.Array(ref(JournalEntry)), nextCursor: Nullable(Type.String()) },
  { ...strict, $id: 'JournalPage' },
);

export const AuditEvent = Type.Object(
  {
    eventId: Type.String(),
    eventType: Type.String(),
    streamName: Type.String(),
    position: PositionOut,
    occurredAt: Type.String(),
    correlationId: Type.String(),
    causationId: Type.String(),
    actor: Actor,
    entryId: Nullable(Type.String()),
  },
  { ...strict, $id: 'AuditEvent' },
);

export const LedgerEvent = Type.Object(
  {
    event: ref(AuditEvent),
    data: Type.Record(Type.String(), Type.Unknown()),
    postings: Type.Array(PostingOut),
    stripeObjects: Type.Array(Type.String()),
  },
  { ...strict, $id: 'LedgerEvent' },
);

export const CausalChain = Type.Object(
  {
    chain: Type.Array(ref(AuditEvent), {
      description: 'the event asked about first, then its cause, then that cause…',
    }),
    origin: Nullable(
      Type.Object(
        {
          kind: Type.Union([
            Type.Literal('request'),
            Type.Literal('stripe'),
            Type.Literal('scheduler'),
            Type.Literal('unknown'),
          ]),
          id: Type.String(),
        },
        strict,
      ),
    ),
    effects: Type.Array(ref(AuditEvent), { description: 'events the first one caused directly' }),
  },
  { ...strict, $id: 'CausalChain' },
);

export const StoryEvent = Type.Object(
  {
    event: ref(AuditEvent),
    data: Type.Record(Type.String(), Type.Unknown()),
    postings: Type.Array(PostingOut),
    stripeObjects: Type.Array(Type.String()),
  },
  { ...strict, $id: 'StoryEvent' },
);

export const Story = Type.Object(
  {
    kind: Type.String(),
    id: Type.String(),
    events: Type.Array(ref(StoryEvent)),
    streams: Type.Array(Type.String()),
    stripeObjects: Type.Array(Type.String()),
    accounts: Type.Array(ref(AccountSummary)),
    state: Type.Object(
      {
        status: Nullable(Type.String()),
        lastEventType: Nullable(Type.String()),
        view: Nullable(Type.Record(Type.String(), Type.Unknown())),
      },
      strict,
    ),
    truncated: Type.Boolean(),
  },
  { ...strict, $id: 'Story' },
);

export const TrialBalanceGroups = Type.Object(
  {
    groups: Type.Array(
      Type.Object(
        {
          currency: Type.String(),
          group: Type.String(),
          kind: Type.String(),
          prefix: Type.String(),
          accounts: Integer,
          debitsPosted: Integer,
          creditsPosted: Integer,
          debitsPending: Integer,
          creditsPending: Integer,
        },
        strict,
      ),
    ),
  },
  { ...strict, $id: 'TrialBalanceGroups' },
);

export const OpenClearing = Type.Object(
  {
    asOf: Type.String(),
    accounts: Type.Array(Type.Object({ account: ref(AccountSummary), ageSeconds: Integer }, strict)),
  },
  { ...strict, $id: 'OpenClearing' },
);

export const AnalyticsReport = Type.Object(
  {
    from: Type.String(),
    to: Type.String(),
    granularity: Type.String(),
    currency: Type.String(),
    metrics: Type.Array(
      Type.Object({ name: Type.String(), kind: Type.String(), label: Type.String() }, strict),
    ),
    periods: Type.Array(
      Type.Object(
        {
          start: Type.String(),
          metrics: Type.Record(Type.String(), Type.Object({ amount: Integer, count: Integer }, strict)),
          activeWallets: Integer,
          refundRateBps: Nullable(Integer),
        },
        strict,
      ),
    ),
  },
  { ...strict, $id: 'AnalyticsReport' },
);

const Money = Type.Object({ amount: Integer, currency: Type.String() }, strict);

export const AdjustmentProposal = Type.Object(
  {
    proposalId: Type.String(),
    status: Type.Union([
      Type.Literal('proposed'),
      Type.Literal('approved'),
      Type.Literal('rejected'),
      Type.Literal('expired'),
    ]),
    account: Type.String(),
    direction: Side,
    amount: Money,
    reason: Type.String(),
    proposedBy: Actor,
    proposedAt: Type.String(),
    expiresAt: Type.String(),
    threshold: Integer,
    approvedBy: Nullable(Actor),
    rejectedBy: Nullable(Actor),
  },
  { ...strict, $id: 'AdjustmentProposal' },
);

export const AdjustmentProposalCreated = Type.Object(
  { proposal: ref(AdjustmentProposal), position: PositionOut },
  { ...strict, $id: 'AdjustmentProposalCreated' },
);

export const AdjustmentProposalApproved = Type.Object(
  { proposal: ref(AdjustmentProposal), entryId: Type.String(), position: PositionOut },
  { ...strict, $id: 'AdjustmentProposalApproved' },
);

export const AdjustmentProposalList = Type.Object(
  { items: Type.Array(ref(AdjustmentProposal)) },
  { ...strict, $id: 'AdjustmentProposalList' },
);

export const AdjustmentProposalBody = Type.Object(
  {
    account: Type.String({ pattern: '^[a-z]+(:[A-Za-z0-9_-]{1,64}){1,4}$', minLength: 3, maxLength: 300 }),
    direction: Side,
    amount: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    currency: Currency,
    reason: Type.String({ minLength: 1, maxLength: 500 }),
    metadata: Type.Optional(MetadataIn),
  },
  strict,
);
export const RejectProposalBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 500 }) },
  strict,
);
export const ProposalListQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Union([
        Type.Literal('proposed'),
        Type.Literal('approved'),
        Type.Literal('rejected'),
        Type.Literal('expired'),
      ]),
    ),
    consistentWith: Type.Optional(Position),
  },
  strict,
);

/** Every named schema, in an order where each one's references come before it. */
export const FINANCE_SCHEMAS: readonly TSchema[] = [
  SearchResult,
  SearchResults,
  AccountSummary,
  AccountPage,
  StatementEntry,
  Statement,
  BalanceSeries,
  JournalEntry,
  JournalPage,
  AuditEvent,
  LedgerEvent,
  CausalChain,
  StoryEvent,
  Story,
  TrialBalanceGroups,
  OpenClearing,
  AnalyticsReport,
  AdjustmentProposal,
  AdjustmentProposalCreated,
  AdjustmentProposalApproved,
  AdjustmentProposalList,
];

export type SearchResultsOut = Static<typeof SearchResults>;
export type AccountSummaryOut = Static<typeof AccountSummary>;
export type AccountPageOut = Static<typeof AccountPage>;
export type StatementOut = Static<typeof Statement>;
export type StatementEntryOut = Static<typeof StatementEntry>;
export type BalanceSeriesOut = Static<typeof BalanceSeries>;
export type JournalPageOut = Static<typeof JournalPage>;
export type AuditEventOut = Static<typeof AuditEvent>;
export type LedgerEventOut = Static<typeof LedgerEvent>;
export type CausalChainOut = Static<typeof CausalChain>;
export type StoryOut = Static<typeof Story>;
export type StoryEventOut = Static<typeof StoryEvent>;
export type TrialBalanceGroupsOut = Static<typeof TrialBalanceGroups>;
export type OpenClearingOut = Static<typeof OpenClearing>;
export type AnalyticsReportOut = Static<typeof AnalyticsReport>;
export type AdjustmentProposalOut = Static<typeof AdjustmentProposal>;
export type AdjustmentProposalListOut = Static<typeof AdjustmentProposalList>;
export type AdjustmentProposalCreatedOut = Static<typeof AdjustmentProposalCreated>;
export type AdjustmentProposalApprovedOut = Static<typeof AdjustmentProposalApproved>;
