import { type TSchema, Type } from '@fastify/type-provider-typebox';
import {
  CLIENT_METADATA_KEY_PATTERN,
  ClientMetadataSchema,
  ClientMetadataValueSchema,
  MAX_CLIENT_METADATA_KEYS,
} from '../domain/clientMetadata.js';
import {
  ENTITY_ID_CHARS,
  ENTITY_ID_PATTERN,
  IDEMPOTENCY_KEY_PATTERN,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  TENANT_ID_CHARS,
} from '../domain/ids.js';
import { CURRENCY_CODE_PATTERN } from '../domain/money.js';
import {
  MAX_REFERRAL_CLAWBACK_DAYS,
  MAX_REFERRAL_CREDIT,
  MAX_REFERRAL_MONTHLY_CAP,
} from '../domain/referral.js';
import { ProblemSchema } from './problem.js';

/** Request and response schemas (TypeBox, JSON Schema underneath). Objects never allow extra properties. */
const strict = { additionalProperties: false } as const;
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ENTITY_ID = ENTITY_ID_PATTERN.source;
export const EntityId = Type.String({ pattern: ENTITY_ID, minLength: 1, maxLength: 64 });
export const Currency = Type.String({ pattern: CURRENCY_CODE_PATTERN.source, minLength: 3, maxLength: 3 });
export const Amount = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
/** Non-negative amount in responses (balances may be zero; read models keep them safe integers). */
const AmountOut = Type.Integer();
export const Money = Type.Object({ amount: Amount, currency: Currency }, strict);
const MoneyOut = Type.Object({ amount: AmountOut, currency: Type.String() }, strict);
/** Global positions are 64-bit: strings in JSON. */
export const Position = Type.String({ pattern: '^(0|[1-9][0-9]{0,18})$', maxLength: 19 });
const PositionOut = Type.String();
export const Account = Type.String({
  pattern: `^[a-z]+(:${ENTITY_ID_CHARS}){1,4}$`,
  minLength: 3,
  maxLength: 300,
});
export const StreamName = Type.String({
  pattern: `^[a-z]+-${TENANT_ID_CHARS}\\.${ENTITY_ID_CHARS}$`,
  maxLength: 120,
});
const Reason = Type.String({ minLength: 1, maxLength: 500 });
export const Cursor = Type.String({ minLength: 1, maxLength: 512 });
/** Query strings are not type-coerced (bodies must not be): numbers in queries are digit strings. */
export const Limit = Type.String({ pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', maxLength: 3 });
export const DEFAULT_PAGE_LIMIT = 50;

/**
 * The caller's metadata on a money-moving request (src/domain/clientMetadata.ts): string values, at most
 * 20 keys of 1-40 characters of [A-Za-z0-9_.:-], values of 1-500 characters.
 */
export const MetadataIn = Type.Unsafe<Record<string, string>>({
  ...ClientMetadataSchema,
  // `{}` is accepted and means none (the events then carry no clientMetadata).
  minProperties: 0,
  description: `Your own key/value strings, stored with the command's events and returned on its entries (at most ${MAX_CLIENT_METADATA_KEYS} keys; keys ${CLIENT_METADATA_KEY_PATTERN.source}; values 1-500 characters)`,
});
/** Metadata on entries and statement lines: `{}` when the command carried none. */
export const MetadataOut = Type.Record(Type.String(), Type.String());
/** `metadata[key]=value` query parameters: only entries whose metadata has every pair given. */
export const METADATA_FILTER_PATTERN = `^metadata\\[${CLIENT_METADATA_KEY_PATTERN.source.slice(1, -1)}\\]$`;
/** The OpenAPI parameter the filter stands for (added to the document by app.ts). */
export const METADATA_FILTER_PARAMETER = {
  name: 'metadata',
  in: 'query',
  style: 'deepObject',
  explode: true,
  required: false,
  description:
    'metadata[key]=value, repeatable: only entries whose command carried every one of these key/value pairs',
  schema: {
    type: 'object',
    propertyNames: { pattern: CLIENT_METADATA_KEY_PATTERN.source },
    additionalProperties: { type: 'string', minLength: 1, maxLength: 500 },
  },
} as const;
export const metadataFilterProperties = {
  patternProperties: { [METADATA_FILTER_PATTERN]: ClientMetadataValueSchema },
} as const;

export const ConsistencyQuery = Type.Object({ consistentWith: Type.Optional(Position) }, strict);
export const PageQuery = Type.Object(
  { consistentWith: Type.Optional(Position), cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) },
  strict,
);
/** A page of entries, filterable by `metadata[key]=value`. */
export const EntriesQuery = Type.Object(
  { consistentWith: Type.Optional(Position), cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) },
  { ...strict, ...metadataFilterProperties },
);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ pattern: IDEMPOTENCY_KEY_PATTERN.source, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH }),
  ),
});

// --- Resources --------------------------------------------------------------------------------------

export const TopUpStatus = Type.Union(
  ['pending', 'succeeded', 'failed', 'refunded', 'partially_refunded'].map((s) => Type.Literal(s)),
);
const topUpFields = {
  topUpId: Type.String(),
  studentId: Type.String(),
  status: Type.String(),
  amount: MoneyOut,
  paymentIntentId: Nullable(Type.String()),
  clientSecret: Nullable(Type.String()),
  failureReason: Nullable(Type.String()),
};
export const TopUpOut = Type.Object(topUpFields, strict);
export const TopUpCreated = Type.Object({ ...topUpFields, position: PositionOut }, strict);

const bookingFields = {
  bookingId: Type.String(),
  studentId: Type.String(),
  tutorId: Type.String(),
  price: MoneyOut,
  scheduledAt: Type.String(),
  status: Type.String(),
  holdId: Type.String(),
  captured: AmountOut,
  refunded: AmountOut,
  tutorShare: AmountOut,
  commission: AmountOut,
  cancellationFee: AmountOut,
  /** Discounts off the price; the student pays price - their sum (the tutor earns on the price). */
  discounts: Type.Array(
    Type.Object({ kind: Type.String(), reference: Type.String(), amount: AmountOut }, strict),
  ),
};
export const BookingOut = Type.Object(bookingFields, strict);
export const BookingChanged = Type.Object({ ...bookingFields, position: PositionOut }, strict);
export const RefundCreated = Type.Object(
  { refundId: Type.String(), booking: BookingOut, position: PositionOut },
  strict,
);

const payoutFields = {
  payoutId: Type.String(),
  tutorId: Type.String(),
  amount: MoneyOut,
  status: Type.String(),
  stripeTransferId: Nullable(Type.String()),
  stripePayoutId: Nullable(Type.String()),
  failureReason: Nullable(Type.String()),
};
export const PayoutOut = Type.Object(payoutFields, strict);
export const PayoutCreated = Type.Object({ ...payoutFields, position: PositionOut }, strict);

/** A tutor's Stripe Express account (PayoutAccountView in src/contracts/views.ts). */
export const PayoutAccountOut = Type.Object(
  {
    tutorId: Type.String(),
    stripeAccountId: Type.String(),
    chargesEnabled: Type.Boolean(),
    payoutsEnabled: Type.Boolean(),
    detailsSubmitted: Type.Boolean(),
    requirements: Type.Object(
      {
        currentlyDue: Type.Array(Type.String()),
        pastDue: Type.Array(Type.String()),
        disabledReason: Nullable(Type.String()),
      },
      strict,
    ),
    /** What keeps the account from taking payouts (Stripe's requirement names); empty when it can. */
    missing: Type.Array(Type.String()),
  },
  { ...strict, $id: 'PayoutAccount' },
);
export const PayoutAccountOpened = Type.Object(
  {
    account: PayoutAccountOut,
    /** Stripe's hosted onboarding for the tutor (single use, expires in minutes); null once nothing is due. */
    onboarding: Nullable(Type.Object({ url: Type.String(), expiresAt: Type.String() }, strict)),
    position: PositionOut,
  },
  strict,
);

export const WalletOut = Type.Object(
  {
    studentId: Type.String(),
    currency: Type.String(),
    available: AmountOut,
    pending: AmountOut,
    posted: AmountOut,
    version: Type.Integer(),
  },
  strict,
);

export const EarningsOut = Type.Object(
  {
    tutorId: Type.String(),
    currency: Type.String(),
    pending: AmountOut,
    available: AmountOut,
    receivable: AmountOut,
    paidOut: AmountOut,
  },
  strict,
);

const Side = Type.Union([Type.Literal('debit'), Type.Literal('credit')]);
const Effect = Type.Union([Type.Literal('post'), Type.Literal('hold'), Type.Literal('release')]);
const ActorOut = Type.Object({ id: Type.String(), role: Type.String() }, strict);

export const StatementLineOut = Type.Object(
  {
    entryId: Type.String(),
    position: PositionOut,
    occurredAt: Type.String(),
    eventType: Type.String(),
    description: Type.String(),
    side: Side,
    effect: Effect,
    amount: AmountOut,
    currency: Type.String(),
    balanceAfter: Type.Object({ posted: AmountOut, pending: AmountOut, available: AmountOut }, strict),
    versionAfter: Type.Integer(),
    cause: Type.Object(
      { streamName: Type.String(), eventId: Type.String(), correlationId: Type.String() },
      strict,
    ),
    actor: ActorOut,
    metadata: MetadataOut,
  },
  strict,
);
export const StatementPage = Type.Object(
  { items: Type.Array(StatementLineOut), nextCursor: Nullable(Type.String()) },
  strict,
);

export const AccountBalanceOut = Type.Object(
  {
    account: Type.String(),
    currency: Type.String(),
    debitsPending: AmountOut,
    debitsPosted: AmountOut,
    creditsPending: AmountOut,
    creditsPosted: AmountOut,
    available: AmountOut,
    version: Type.Integer(),
    position: PositionOut,
  },
  strict,
);
export const BalanceQuery = Type.Object(
  {
    consistentWith: Type.Optional(Position),
    asOf: Type.Optional(
      Type.String({
        format: 'date-time',
        maxLength: 40,
        description: 'Effective time: the balance after every entry effective by then',
      }),
    ),
    knownAt: Type.Optional(
      Type.String({
        format: 'date-time',
        maxLength: 40,
        description: 'Knowledge time: only entries the ledger had recorded by then (default: now)',
      }),
    ),
    position: Type.Optional(Position),
  },
  strict,
);

export const EntryOut = Type.Object(
  {
    entryId: Type.String(),
    position: PositionOut,
    occurredAt: Type.String(),
    description: Type.String(),
    holdId: Nullable(Type.String()),
    eventId: Type.String(),
    eventType: Type.String(),
    streamName: Type.String(),
    correlationId: Type.String(),
    causationId: Type.String(),
    actor: ActorOut,
    metadata: MetadataOut,
    postings: Type.Array(
      Type.Object(
        { account: Type.String(), side: Side, effect: Effect, amount: AmountOut, currency: Type.String() },
        strict,
      ),
    ),
    chain: Type.Array(
      Type.Object(
        {
          eventId: Type.String(),
          eventType: Type.String(),
          streamName: Type.String(),
          position: PositionOut,
          occurredAt: Type.String(),
        },
        strict,
      ),
    ),
  },
  strict,
);

export const TrialBalanceOut = Type.Object(
  {
    balanced: Type.Boolean(),
    currencies: Type.Array(
      Type.Object(
        {
          currency: Type.String(),
          debitsPosted: AmountOut,
          creditsPosted: AmountOut,
          debitsPending: AmountOut,
          creditsPending: AmountOut,
          postedDifference: Type.Integer(),
          pendingDifference: Type.Integer(),
        },
        strict,
      ),
    ),
  },
  strict,
);

export const StreamEventsQuery = Type.Object(
  {
    consistentWith: Type.Optional(Position),
    fromRevision: Type.Optional(Position),
    limit: Type.Optional(Limit),
  },
  strict,
);
export const StreamEventsOut = Type.Object(
  {
    streamName: Type.String(),
    events: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          type: Type.String(),
          revision: PositionOut,
          position: PositionOut,
          recordedAt: Type.String(),
          data: Type.Record(Type.String(), Type.Unknown()),
          metadata: Type.Object(
            {
              tenantId: Type.String(),
              correlationId: Type.String(),
              causationId: Type.String(),
              actor: ActorOut,
              idempotencyKey: Type.String(),
              occurredAt: Type.String(),
              schemaVersion: Type.Integer(),
            },
            strict,
          ),
        },
        strict,
      ),
    ),
    /** Revision to pass as fromRevision for the next page; null at the end of the stream. */
    nextRevision: Nullable(Type.String()),
  },
  strict,
);

const settingsFields = {
  commissionRateBps: Type.Integer({ minimum: 0, maximum: 10_000 }),
  earningsHoldPeriodDays: Type.Integer({ minimum: 0, maximum: 365 }),
  cancellationFreeWindowHours: Type.Integer({ minimum: 0, maximum: 24 * 365 }),
  cancellationFeeBps: Type.Integer({ minimum: 0, maximum: 10_000 }),
  holdExpiryDays: Type.Integer({ minimum: 1, maximum: 365 }),
  topUpMin: Amount,
  topUpMax: Amount,
  payoutMin: Amount,
  allowedCurrencies: Type.Array(Currency, { minItems: 1, maxItems: 20, uniqueItems: true }),
  adjustmentApprovalThreshold: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  adjustmentProposalExpiryHours: Type.Integer({ minimum: 1, maximum: 24 * 30 }),
  /** Absolute http(s) URLs of the tutor app for Stripe's onboarding (Account Links); null unsets. */
  payoutOnboardingReturnUrl: Nullable(Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://' })),
  payoutOnboardingRefreshUrl: Nullable(Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://' })),
  /** IANA time zone name (Europe/Berlin, UTC): the calendar of spending limits. */
  timeZone: Type.String({ minLength: 1, maxLength: 64 }),
  /** The hour (UTC, 0-23) of the daily reconciliation of the previous UTC day; null: none. */
  reconciliationDailyHourUtc: Nullable(Type.Integer({ minimum: 0, maximum: 23 })),
  /** Referral credits (minor units of the qualifying booking's currency) for the referee and the referrer. */
  referralRefereeCredit: Type.Integer({ minimum: 0, maximum: MAX_REFERRAL_CREDIT }),
  referralReferrerCredit: Type.Integer({ minimum: 0, maximum: MAX_REFERRAL_CREDIT }),
  /** Rewards per referrer per calendar month (timeZone). */
  referralMonthlyCap: Type.Integer({ minimum: 0, maximum: MAX_REFERRAL_MONTHLY_CAP }),
  /** Days after qualifying in which a full refund of the booking claws the rewards back. */
  referralClawbackDays: Type.Integer({ minimum: 0, maximum: MAX_REFERRAL_CLAWBACK_DAYS }),
};
export const SettingsOut = Type.Object(
  {
    commissionRateBps: Type.Integer(),
    earningsHoldPeriodDays: Type.Integer(),
    cancellationFreeWindowHours: Type.Integer(),
    cancellationFeeBps: Type.Integer(),
    holdExpiryDays: Type.Integer(),
    topUpMin: Type.Integer(),
    topUpMax: Type.Integer(),
    payoutMin: Type.Integer(),
    allowedCurrencies: Type.Array(Type.String()),
    adjustmentApprovalThreshold: Type.Integer(),
    adjustmentProposalExpiryHours: Type.Integer(),
    payoutOnboardingReturnUrl: Nullable(Type.String()),
    payoutOnboardingRefreshUrl: Nullable(Type.String()),
    timeZone: Type.String(),
    reconciliationDailyHourUtc: Nullable(Type.Integer()),
    referralRefereeCredit: Type.Integer(),
    referralReferrerCredit: Type.Integer(),
    referralMonthlyCap: Type.Integer(),
    referralClawbackDays: Type.Integer(),
  },
  strict,
);
export const SettingsPatch = Type.Partial(Type.Object(settingsFields, strict), {
  ...strict,
  minProperties: 1,
});
export const SettingsChanged = Type.Object({ settings: SettingsOut, position: PositionOut }, strict);

// --- Request bodies -------------------------------------------------------------------------------

export const TopUpBody = Type.Object(
  {
    amount: Amount,
    currency: Currency,
    paymentMethod: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_]{1,100}$' })),
    metadata: Type.Optional(MetadataIn),
  },
  strict,
);
export const BookingBody = Type.Object(
  {
    bookingId: Type.Optional(EntityId),
    studentId: EntityId,
    tutorId: EntityId,
    price: Money,
    scheduledAt: Type.String({ format: 'date-time', maxLength: 40 }),
    /** A promo code (case-insensitive): its discount off the price, funded by promotions. */
    promoCode: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$', maxLength: 32 })),
    metadata: Type.Optional(MetadataIn),
  },
  strict,
);
/** Completing a booking needs no input; a body, when sent, may carry metadata. */
export const CompleteBody = Type.Object({ metadata: Type.Optional(MetadataIn) }, strict);
export const CancelBody = Type.Object({ reason: Reason, metadata: Type.Optional(MetadataIn) }, strict);
export const RefundBody = Type.Object(
  { amount: Type.Optional(Amount), reason: Reason, metadata: Type.Optional(MetadataIn) },
  strict,
);
export const PayoutBody = Type.Object(
  { amount: Amount, currency: Currency, metadata: Type.Optional(MetadataIn) },
  strict,
);
/** Backdating and corrections of an adjustment (docs/ledger-flows.md, "Backdated entries and closed periods"). */
export const BackdatingFields = {
  effectiveAt: Type.Optional(
    Type.String({
      format: 'date-time',
      maxLength: 40,
      description:
        'When the adjustment happened, if earlier than now (never later). Unconstrained accounts may reach back into any open period; wallets and tutor earnings only within the current month. Inside a closed period: 422 period_closed.',
    }),
  ),
  corrects: Type.Optional(
    Type.String({
      pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
      description:
        'The entry id this adjustment corrects (a correction of a closed period, booked in an open one)',
    }),
  ),
};
export const AdjustmentBody = Type.Object(
  {
    account: Account,
    direction: Side,
    amount: Amount,
    currency: Currency,
    reason: Reason,
    metadata: Type.Optional(MetadataIn),
    ...BackdatingFields,
  },
  strict,
);
export const AdjustmentCreated = Type.Object({ entryId: Type.String(), position: PositionOut }, strict);
export const DueTasksBody = Type.Object(
  { now: Type.Optional(Type.String({ format: 'date-time', maxLength: 40 })) },
  strict,
);
export const DueTasksOut = Type.Object(
  { expiredHolds: Type.Integer(), clearedEarnings: Type.Integer() },
  strict,
);

export const HealthOut = Type.Object({ status: Type.String() }, strict);
export const ReadyOut = Type.Object(
  {
    /** `ready`, or `degraded`: serving, but some tenant's read models are stopped (`degraded` says which). */
    status: Type.String(),
    checks: Type.Array(Type.Object({ name: Type.String(), ok: Type.Boolean() }, strict)),
    degraded: Type.Optional(
      Type.Array(
        Type.Object(
          {
            projection: Type.String(),
            tenantId: Type.String(),
            position: Type.String(),
            streamName: Type.String(),
            eventType: Type.String(),
            reason: Type.String(),
            since: Type.String(),
          },
          strict,
        ),
      ),
    ),
  },
  strict,
);

/** Error responses every authenticated route can return. */
export function errorResponses(...statuses: number[]): Record<number, typeof ProblemSchema> {
  const out: Record<number, typeof ProblemSchema> = {};
  for (const s of [400, 401, 403, 404, 415, 429, 503, ...statuses]) out[s] = ProblemSchema;
  return out;
}
