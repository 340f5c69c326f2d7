import { type Static, type TSchema, Type } from '@fastify/type-provider-typebox';
import { ENTITY_ID_PATTERN } from '../domain/ids.js';
import {
  MAX_SECRET_GRACE_HOURS,
  MAX_WEBHOOK_EVENT_TYPES,
  MAX_WEBHOOK_URL_LENGTH,
} from '../domain/webhookEndpoints.js';
import { Account, Limit } from './schemas.js';

/**
 * Schemas of the webhook endpoint and balance monitor routes (src/api/routes/webhooks.ts,
 * balanceMonitors.ts). Response schemas carry an `$id`: the routes register them once and refer to
 * them, so the OpenAPI document names them under components/schemas.
 */
const strict = { additionalProperties: false } as const;
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** A reference to a registered schema, typed as the schema itself. */
export function ref<T extends TSchema>(schema: T): T {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== 'string') throw new Error('ref() needs a schema with an $id');
  return Type.Unsafe<Static<T>>({ $ref: id }) as unknown as T;
}

const Id = Type.String({ pattern: ENTITY_ID_PATTERN.source });
const Instant = Type.String({ format: 'date-time' });
const Position = Type.String({
  pattern: '^\\d{1,20}$',
  description: 'global position (64-bit, as a string)',
});

export const EndpointParams = Type.Object({ endpointId: Id }, strict);
export const DeliveryParams = Type.Object(
  { endpointId: Id, deliveryId: Type.String({ format: 'uuid' }) },
  strict,
);
export const MonitorParams = Type.Object({ monitorId: Id }, strict);

export const CreateWebhookEndpointBody = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: MAX_WEBHOOK_URL_LENGTH,
      description: 'http(s) URL receiving POSTs',
    }),
    eventTypes: Type.Array(Type.String({ minLength: 1, maxLength: 83 }), {
      minItems: 1,
      maxItems: MAX_WEBHOOK_EVENT_TYPES,
      description: 'public event types (docs/webhooks.md), or ["*"] for all',
    }),
    description: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 500 }))),
    apiVersion: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' })),
  },
  { ...strict, $id: 'CreateWebhookEndpoint' },
);

export const RotateSecretBody = Type.Object(
  {
    graceHours: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_SECRET_GRACE_HOURS,
        description: 'how long the previous secret keeps signing (default 24)',
      }),
    ),
  },
  { ...strict, $id: 'RotateWebhookSecret' },
);

const Failure = Type.Object(
  { deliveryId: Type.String(), failingSince: Instant, lastError: Type.String() },
  strict,
);

export const WebhookEndpointOut = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    eventTypes: Type.Array(Type.String()),
    description: Nullable(Type.String()),
    apiVersion: Type.String(),
    status: Type.Union([Type.Literal('enabled'), Type.Literal('disabled')]),
    disabled: Nullable(
      Type.Object(
        {
          reason: Type.Union([Type.Literal('by_admin'), Type.Literal('failing')]),
          at: Instant,
          failure: Nullable(Failure),
        },
        strict,
      ),
    ),
    secrets: Type.Array(
      Type.Object({ id: Type.String(), createdAt: Instant, expiresAt: Nullable(Instant) }, strict),
      {
        description:
          'secrets that sign deliveries (ids only): the current one, and a previous one in its grace period',
      },
    ),
    health: Type.Object(
      {
        failingSince: Nullable(Instant),
        lastSuccessAt: Nullable(Instant),
        lastFailureAt: Nullable(Instant),
        consecutiveFailures: Type.Integer(),
        lastError: Nullable(Type.String()),
      },
      strict,
    ),
    createdAt: Instant,
    updatedAt: Instant,
  },
  { ...strict, $id: 'WebhookEndpoint' },
);

export const WebhookEndpointWithSecret = Type.Object(
  {
    endpoint: ref(WebhookEndpointOut),
    secret: Type.String({ description: 'the signing secret (whsec_…): shown only here, keep it safe' }),
    position: Position,
  },
  { ...strict, $id: 'WebhookEndpointWithSecret' },
);

export const WebhookEndpointChanged = Type.Object(
  { endpoint: ref(WebhookEndpointOut), position: Position },
  { ...strict, $id: 'WebhookEndpointChanged' },
);

export const WebhookEndpointList = Type.Object(
  { items: Type.Array(ref(WebhookEndpointOut)) },
  { ...strict, $id: 'WebhookEndpointList' },
);

export const WebhookEndpointDeleted = Type.Object(
  { deleted: Type.Literal(true), position: Position },
  { ...strict, $id: 'WebhookEndpointDeleted' },
);

const DeliveryStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('paused'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);

export const WebhookAttemptOut = Type.Object(
  {
    attempt: Type.Integer(),
    manual: Type.Boolean(),
    startedAt: Instant,
    latencyMs: Type.Integer(),
    outcome: Type.String({
      description: 'succeeded, http_error, redirect, timeout, network_error, address_not_allowed',
    }),
    statusCode: Nullable(Type.Integer()),
    error: Nullable(Type.String()),
    responseExcerpt: Nullable(Type.String()),
  },
  { ...strict, $id: 'WebhookAttempt' },
);

export const WebhookDeliveryOut = Type.Object(
  {
    id: Type.String(),
    endpointId: Type.String(),
    eventId: Type.String(),
    eventType: Type.String(),
    status: DeliveryStatus,
    attempts: Type.Integer(),
    nextAttemptAt: Nullable(Instant),
    createdAt: Instant,
    lastAttemptAt: Nullable(Instant),
    lastStatusCode: Nullable(Type.Integer()),
    lastError: Nullable(Type.String()),
    /** Present on the single-delivery read. */
    payload: Type.Optional(Type.String({ description: 'the exact body delivered (what is signed)' })),
    attemptLog: Type.Optional(Type.Array(ref(WebhookAttemptOut))),
  },
  { ...strict, $id: 'WebhookDelivery' },
);

export const WebhookDeliveryPage = Type.Object(
  { items: Type.Array(ref(WebhookDeliveryOut)), nextCursor: Nullable(Type.String()) },
  { ...strict, $id: 'WebhookDeliveryPage' },
);

export const DeliveryListQuery = Type.Object(
  {
    status: Type.Optional(DeliveryStatus),
    // A digit string, as every query number (not coerced): an integer schema made ?limit=5 a 400.
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  strict,
);

export const WebhookRetryResult = Type.Object(
  { delivery: ref(WebhookDeliveryOut), attempt: ref(WebhookAttemptOut) },
  { ...strict, $id: 'WebhookRetryResult' },
);

// ---------------------------------------------------------------------------------------------------
// Balance monitors

const Condition = Type.Object(
  {
    field: Type.Union([Type.Literal('available'), Type.Literal('posted'), Type.Literal('pending')]),
    op: Type.Union([Type.Literal('lt'), Type.Literal('lte'), Type.Literal('gt'), Type.Literal('gte')]),
    amount: Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
  },
  { ...strict, $id: 'BalanceCondition' },
);

export const CreateBalanceMonitorBody = Type.Object(
  {
    account: Type.String({ minLength: 1, maxLength: 200 }),
    currency: Type.Optional(Nullable(Type.String({ pattern: '^[a-z]{3}$' }))),
    condition: ref(Condition),
    description: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 500 }))),
  },
  { ...strict, $id: 'CreateBalanceMonitor' },
);

export const BalanceMonitorOut = Type.Object(
  {
    id: Type.String(),
    account: Type.String(),
    currency: Nullable(Type.String()),
    condition: ref(Condition),
    description: Nullable(Type.String()),
    createdAt: Instant,
    states: Type.Array(
      Type.Object({ currency: Type.String(), triggered: Type.Boolean(), since: Position }, strict),
      { description: 'per currency seen so far: whether the condition holds, since which position' },
    ),
    triggeredCount: Type.Integer(),
  },
  { ...strict, $id: 'BalanceMonitor' },
);

export const BalanceMonitorCreated = Type.Object(
  { monitor: ref(BalanceMonitorOut), position: Position },
  { ...strict, $id: 'BalanceMonitorCreated' },
);

export const BalanceMonitorPage = Type.Object(
  { items: Type.Array(ref(BalanceMonitorOut)), nextCursor: Nullable(Type.String()) },
  { ...strict, $id: 'BalanceMonitorPage' },
);

export const BalanceMonitorDeleted = Type.Object(
  { deleted: Type.Literal(true), position: Position },
  { ...strict, $id: 'BalanceMonitorDeleted' },
);

export const MonitorListQuery = Type.Object(
  {
    // An account path (a NUL byte reached Postgres and was a 500: the schema fuzz, seed 1402979271).
    account: Type.Optional(Account),
    // A digit string, as every query number (not coerced): an integer schema made ?limit=5 a 400.
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Id),
  },
  strict,
);

export const WEBHOOK_SCHEMAS: readonly TSchema[] = [
  CreateWebhookEndpointBody,
  RotateSecretBody,
  WebhookEndpointOut,
  WebhookEndpointWithSecret,
  WebhookEndpointChanged,
  WebhookEndpointList,
  WebhookEndpointDeleted,
  WebhookAttemptOut,
  WebhookDeliveryOut,
  WebhookDeliveryPage,
  WebhookRetryResult,
];

export const MONITOR_SCHEMAS: readonly TSchema[] = [
  Condition,
  CreateBalanceMonitorBody,
  BalanceMonitorOut,
  BalanceMonitorCreated,
  BalanceMonitorPage,
  BalanceMonitorDeleted,
];
