import { type TSchema, Type } from '@fastify/type-provider-typebox';
import { ProblemSchema } from './problem.js';

/** Request and response schemas (TypeBox, JSON Schema underneath). Objects never allow extra properties. */
const strict = { additionalProperties: false } as const;
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ENTITY_ID = '^[A-Za-z0-9_-]{1,64}$';
export const EntityId = Type.String({ pattern: ENTITY_ID, minLength: 1, maxLength: 64 });
export const Currency = Type.String({ pattern: '^[a-z]{3}$', minLength: 3, maxLength: 3 });
export const Amount = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
/** Non-negative amount in responses (balances may be zero; read models keep them safe integers). */
const AmountOut = Type.Integer();
export const Money = Type.Object({ amount: Amount, currency: Currency }, strict);
const MoneyOut = Type.Object({ amount: AmountOut, currency: Type.String() }, strict);
/** Global positions are 64-bit: strings in JSON. */
export const Position = Type.String({ pattern: '^(0|[1-9][0-9]{0,18})$', maxLength: 19 });
const PositionOut = Type.String();
export const Account = Type.String({
  pattern: '^[a-z]+(:[A-Za-z0-9_-]{1,64}){1,4}$',
  minLength: 3,
  maxLength: 300,
});
export const StreamName = Type.String({
  pattern: '^[a-z]+-[a-z0-9_]{1,40}\\.[A-Za-z0-9_-]{1,64}$',
  maxLength: 120,
});
const Reason = Type.String({ minLength: 1, maxLength: 500 });
export const Cursor = Type.String({ minLength: 1, maxLength: 512 });
/** Query strings are not type-coerced (bodies must not be): numbers in queries are digit strings. */
export const Limit = Type.String({ pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', maxLength: 3 });
export const DEFAULT_PAGE_LIMIT = 50;

export const ConsistencyQuery = Type.Object({ consistentWith: Type.Optional(Position) }, strict);
export const PageQuery = Type.Object(
  { consistentWith: Type.Optional(Position), cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) },
  strict,
);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ pattern: '^[\\x21-\\x7e]{1,255}$', maxLength: 255 })),
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
    asOf: Type.Optional(Type.String({ format: 'date-time', maxLength: 40 })),
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
  },
  strict,
);
export const CancelBody = Type.Object({ reason: Reason }, strict);
export const RefundBody = Type.Object({ amount: Type.Optional(Amount), reason: Reason }, strict);
export const PayoutBody = Type.Object({ amount: Amount, currency: Currency }, strict);
export const AdjustmentBody = Type.Object(
  { account: Account, direction: Side, amount: Amount, currency: Currency, reason: Reason },
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
    status: Type.String(),
    checks: Type.Array(Type.Object({ name: Type.String(), ok: Type.Boolean() }, strict)),
  },
  strict,
);

/** Error responses every authenticated route can return. */
export function errorResponses(...statuses: number[]): Record<number, typeof ProblemSchema> {
  const out: Record<number, typeof ProblemSchema> = {};
  for (const s of [400, 401, 403, 404, 429, 503, ...statuses]) out[s] = ProblemSchema;
  return out;
}
