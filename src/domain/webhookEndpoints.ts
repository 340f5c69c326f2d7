import { Type } from '@sinclair/typebox';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import {
  type Actor,
  ActorSchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  strictObject,
  TextSchema,
} from './schema.js';
import { parseInstant, requireEntityId, toIso, validationFailed } from './validate.js';

/**
 * A tenant's outbound webhook endpoints: one stream per tenant, `webhook-{t}.endpoints`, so the cap on
 * endpoints is checked race-free under the stream's optimistic concurrency and the whole set is one
 * small fold (the API reads it, the delivery fan-out follows it in log order).
 *
 * Signing secrets are never stored: an event names a secret by its `secretId`, and the secret itself is
 * derived from the operator's key (src/webhooks/secrets.ts). Rotation keeps the previous secret signing
 * beside the new one until `previousExpiresAt` (a grace period, as Stripe does).
 */

/** Live endpoints one tenant may have (Stripe's limit is 16 as well). */
export const MAX_WEBHOOK_ENDPOINTS = 16;
export const MAX_WEBHOOK_URL_LENGTH = 2_048;
export const MAX_WEBHOOK_EVENT_TYPES = 64;
export const MAX_WEBHOOK_DESCRIPTION_LENGTH = 500;
/** Longest grace period of a rotated-away secret. */
export const MAX_SECRET_GRACE_HOURS = 72;
/** A public event type (`wallet.topped_up`) or `*` for every type. */
const EVENT_TYPE_PATTERN = /^(\*|[a-z][a-z_]{0,40}\.[a-z][a-z_]{0,40})$/;
const API_VERSION_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

export type WebhookEndpointStatus = 'enabled' | 'disabled';
export type WebhookDisableReason = 'by_admin' | 'failing';

/** Why the delivery machinery gave up on an endpoint (present on reason `failing`). */
export interface WebhookFailure {
  deliveryId: string;
  /** Since when no delivery to the endpoint succeeded. */
  failingSince: string;
  lastError: string;
}

export interface WebhookSecretRef {
  secretId: string;
  createdAt: string;
  /** null: the current secret. Otherwise it still signs until this instant. */
  expiresAt: string | null;
}

export interface WebhookEndpoint {
  endpointId: string;
  url: string;
  eventTypes: string[];
  description: string | null;
  apiVersion: string;
  status: WebhookEndpointStatus;
  disabled: { reason: WebhookDisableReason; at: string; failure: WebhookFailure | null } | null;
  /** Current secret first, then the previous one while its grace period lasts. */
  secrets: WebhookSecretRef[];
  createdAt: string;
  updatedAt: string;
}

export interface WebhookEndpointsState {
  /** Live (not deleted) endpoints by id. */
  endpoints: ReadonlyMap<string, WebhookEndpoint>;
  /** Ids that were deleted: never reused. */
  deleted: ReadonlySet<string>;
}

// ---------------------------------------------------------------------------------------------------
// Commands

export interface RegisterWebhookEndpoint {
  type: 'RegisterWebhookEndpoint';
  endpointId: string;
  /** Checked by the command layer (scheme, address policy); the decider checks only its shape. */
  url: string;
  eventTypes: string[];
  description: string | null;
  apiVersion: string;
  secretId: string;
  actor: Actor;
  at: string;
}

export interface DisableWebhookEndpoint {
  type: 'DisableWebhookEndpoint';
  endpointId: string;
  reason: WebhookDisableReason;
  failure: WebhookFailure | null;
  actor: Actor;
  at: string;
}

export interface EnableWebhookEndpoint {
  type: 'EnableWebhookEndpoint';
  endpointId: string;
  actor: Actor;
  at: string;
}

export interface RotateWebhookEndpointSecret {
  type: 'RotateWebhookEndpointSecret';
  endpointId: string;
  secretId: string;
  /** How long the previous secret keeps signing (0: it stops at once). */
  graceHours: number;
  actor: Actor;
  at: string;
}

export interface DeleteWebhookEndpoint {
  type: 'DeleteWebhookEndpoint';
  endpointId: string;
  actor: Actor;
  at: string;
}

export type WebhookEndpointCommand =
  | RegisterWebhookEndpoint
  | DisableWebhookEndpoint
  | EnableWebhookEndpoint
  | RotateWebhookEndpointSecret
  | DeleteWebhookEndpoint;

// ---------------------------------------------------------------------------------------------------
// Events

const EndpointIdSchema = EntityIdSchema;
const WebhookFailureSchema = strictObject({
  deliveryId: Type.String({ minLength: 1, maxLength: 100 }),
  failingSince: InstantSchema,
  lastError: Type.String({ maxLength: 500 }),
});

export const WEBHOOK_ENDPOINT_EVENTS = {
  WebhookEndpointRegistered: strictObject({
    endpointId: EndpointIdSchema,
    url: Type.String({ minLength: 1, maxLength: MAX_WEBHOOK_URL_LENGTH }),
    eventTypes: Type.Array(Type.String({ pattern: EVENT_TYPE_PATTERN.source }), {
      minItems: 1,
      maxItems: MAX_WEBHOOK_EVENT_TYPES,
    }),
    description: Nullable(TextSchema(MAX_WEBHOOK_DESCRIPTION_LENGTH)),
    apiVersion: Type.String({ pattern: API_VERSION_PATTERN.source }),
    secretId: EntityIdSchema,
    actor: ActorSchema,
    registeredAt: InstantSchema,
  }),
  WebhookEndpointDisabled: strictObject({
    endpointId: EndpointIdSchema,
    reason: Type.Union([Type.Literal('by_admin'), Type.Literal('failing')]),
    failure: Nullable(WebhookFailureSchema),
    actor: ActorSchema,
    disabledAt: InstantSchema,
  }),
  WebhookEndpointEnabled: strictObject({
    endpointId: EndpointIdSchema,
    actor: ActorSchema,
    enabledAt: InstantSchema,
  }),
  WebhookEndpointSecretRotated: strictObject({
    endpointId: EndpointIdSchema,
    secretId: EntityIdSchema,
    previousSecretId: EntityIdSchema,
    /** Until when the previous secret still signs (equal to rotatedAt: not at all). */
    previousExpiresAt: InstantSchema,
    actor: ActorSchema,
    rotatedAt: InstantSchema,
  }),
  WebhookEndpointDeleted: strictObject({
    endpointId: EndpointIdSchema,
    actor: ActorSchema,
    deletedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type WebhookEndpointEvent = EventsOf<typeof WEBHOOK_ENDPOINT_EVENTS>;
export type WebhookEndpointRegistered = EventOf<typeof WEBHOOK_ENDPOINT_EVENTS, 'WebhookEndpointRegistered'>;
export type WebhookEndpointDisabled = EventOf<typeof WEBHOOK_ENDPOINT_EVENTS, 'WebhookEndpointDisabled'>;
export type WebhookEndpointEnabled = EventOf<typeof WEBHOOK_ENDPOINT_EVENTS, 'WebhookEndpointEnabled'>;
export type WebhookEndpointSecretRotated = EventOf<
  typeof WEBHOOK_ENDPOINT_EVENTS,
  'WebhookEndpointSecretRotated'
>;
export type WebhookEndpointDeleted = EventOf<typeof WEBHOOK_ENDPOINT_EVENTS, 'WebhookEndpointDeleted'>;

export const WEBHOOK_ENDPOINT_EVENT_TYPES = Object.keys(
  WEBHOOK_ENDPOINT_EVENTS,
) as WebhookEndpointEvent['type'][];

/** The one entity id of a tenant's endpoints stream: `webhook-{t}.endpoints`. */
export const WEBHOOK_ENDPOINTS_ID = 'endpoints';

// ---------------------------------------------------------------------------------------------------
// Validation

function requireInstant(value: unknown, field: string): string {
  return toIso(parseInstant(value, field));
}

function requireActor(value: unknown): Actor {
  const actor = value as Actor | null;
  if (
    !actor ||
    typeof actor.id !== 'string' ||
    actor.id.length === 0 ||
    actor.id.length > 200 ||
    typeof actor.role !== 'string' ||
    actor.role.length === 0 ||
    actor.role.length > 64
  ) {
    validationFailed('actor must be {id, role}', { field: 'actor' });
  }
  return { id: actor.id, role: actor.role };
}

/** Shape only: scheme and address policy are the command layer's (they need DNS). */
export function requireWebhookUrl(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_WEBHOOK_URL_LENGTH) {
    validationFailed(`url must be 1-${MAX_WEBHOOK_URL_LENGTH} characters`, { field: 'url' });
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    validationFailed('url is not a valid absolute URL', { field: 'url' });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    validationFailed('url must use http:// or https://', { field: 'url' });
  }
  if (parsed.username !== '' || parsed.password !== '') {
    validationFailed('url may not carry credentials (user:password@)', { field: 'url' });
  }
  if (parsed.hash !== '') validationFailed('url may not have a #fragment', { field: 'url' });
  return parsed.toString();
}

export function requireEventTypes(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_WEBHOOK_EVENT_TYPES) {
    validationFailed(`eventTypes must list 1-${MAX_WEBHOOK_EVENT_TYPES} event types`, {
      field: 'eventTypes',
    });
  }
  const seen = new Set<string>();
  for (const type of value) {
    if (typeof type !== 'string' || !EVENT_TYPE_PATTERN.test(type)) {
      validationFailed('eventTypes entries are public event types like wallet.topped_up, or *', {
        field: 'eventTypes',
      });
    }
    if (seen.has(type)) validationFailed(`eventTypes lists ${type} twice`, { field: 'eventTypes' });
    seen.add(type);
  }
  return [...seen].sort();
}

function requireDescription(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_WEBHOOK_DESCRIPTION_LENGTH) {
    validationFailed(`description must be 1-${MAX_WEBHOOK_DESCRIPTION_LENGTH} characters or null`, {
      field: 'description',
    });
  }
  return value;
}

function requireFailure(value: unknown): WebhookFailure {
  const f = value as WebhookFailure | null;
  if (!f || typeof f.deliveryId !== 'string' || typeof f.lastError !== 'string') {
    validationFailed('failure must be {deliveryId, failingSince, lastError}', { field: 'failure' });
  }
  return {
    deliveryId: f.deliveryId,
    failingSince: requireInstant(f.failingSince, 'failure.failingSince'),
    lastError: f.lastError.slice(0, 500),
  };
}

function live(state: WebhookEndpointsState, endpointId: string): WebhookEndpoint {
  const endpoint = state.endpoints.get(requireEntityId(endpointId, 'endpointId'));
  if (!endpoint) throw new DomainError('not_found', `no webhook endpoint ${endpointId}`);
  return endpoint;
}

// ---------------------------------------------------------------------------------------------------
// Decider

function decide(command: WebhookEndpointCommand, state: WebhookEndpointsState): WebhookEndpointEvent[] {
  switch (command.type) {
    case 'RegisterWebhookEndpoint': {
      const endpointId = requireEntityId(command.endpointId, 'endpointId');
      if (state.endpoints.has(endpointId) || state.deleted.has(endpointId)) {
        throw new DomainError('invalid_state', `webhook endpoint ${endpointId} exists already`);
      }
      if (state.endpoints.size >= MAX_WEBHOOK_ENDPOINTS) {
        throw new DomainError(
          'limit_exceeded',
          `a tenant may have at most ${MAX_WEBHOOK_ENDPOINTS} endpoints`,
          {
            limit: MAX_WEBHOOK_ENDPOINTS,
          },
        );
      }
      if (typeof command.apiVersion !== 'string' || !API_VERSION_PATTERN.test(command.apiVersion)) {
        validationFailed('apiVersion must be a YYYY-MM-DD version', { field: 'apiVersion' });
      }
      return [
        {
          type: 'WebhookEndpointRegistered',
          data: {
            endpointId,
            url: requireWebhookUrl(command.url),
            eventTypes: requireEventTypes(command.eventTypes),
            description: requireDescription(command.description),
            apiVersion: command.apiVersion,
            secretId: requireEntityId(command.secretId, 'secretId'),
            actor: requireActor(command.actor),
            registeredAt: requireInstant(command.at, 'at'),
          },
        },
      ];
    }
    case 'DisableWebhookEndpoint': {
      const endpoint = live(state, command.endpointId);
      if (command.reason !== 'by_admin' && command.reason !== 'failing') {
        validationFailed('reason must be by_admin or failing', { field: 'reason' });
      }
      // Disabling a disabled endpoint changes nothing (a late automatic disable after an admin's own).
      if (endpoint.status === 'disabled') return [];
      return [
        {
          type: 'WebhookEndpointDisabled',
          data: {
            endpointId: endpoint.endpointId,
            reason: command.reason,
            failure: command.reason === 'failing' ? requireFailure(command.failure) : null,
            actor: requireActor(command.actor),
            disabledAt: requireInstant(command.at, 'at'),
          },
        },
      ];
    }
    case 'EnableWebhookEndpoint': {
      const endpoint = live(state, command.endpointId);
      if (endpoint.status === 'enabled') return [];
      return [
        {
          type: 'WebhookEndpointEnabled',
          data: {
            endpointId: endpoint.endpointId,
            actor: requireActor(command.actor),
            enabledAt: requireInstant(command.at, 'at'),
          },
        },
      ];
    }
    case 'RotateWebhookEndpointSecret': {
      const endpoint = live(state, command.endpointId);
      const secretId = requireEntityId(command.secretId, 'secretId');
      if (endpoint.secrets.some((s) => s.secretId === secretId)) {
        throw new DomainError('invalid_state', `secret ${secretId} is in use already`);
      }
      if (
        !Number.isInteger(command.graceHours) ||
        command.graceHours < 0 ||
        command.graceHours > MAX_SECRET_GRACE_HOURS
      ) {
        validationFailed(`graceHours must be an integer in 0..${MAX_SECRET_GRACE_HOURS}`, {
          field: 'graceHours',
        });
      }
      const atMs = parseInstant(command.at, 'at');
      const current = endpoint.secrets[0];
      invariant(
        current && current.expiresAt === null,
        `endpoint ${endpoint.endpointId} has no current secret`,
      );
      return [
        {
          type: 'WebhookEndpointSecretRotated',
          data: {
            endpointId: endpoint.endpointId,
            secretId,
            previousSecretId: current.secretId,
            previousExpiresAt: toIso(atMs + command.graceHours * 3_600_000),
            actor: requireActor(command.actor),
            rotatedAt: toIso(atMs),
          },
        },
      ];
    }
    case 'DeleteWebhookEndpoint': {
      const endpoint = live(state, command.endpointId);
      return [
        {
          type: 'WebhookEndpointDeleted',
          data: {
            endpointId: endpoint.endpointId,
            actor: requireActor(command.actor),
            deletedAt: requireInstant(command.at, 'at'),
          },
        },
      ];
    }
  }
}

function evolve(state: WebhookEndpointsState, event: WebhookEndpointEvent): WebhookEndpointsState {
  const endpoints = new Map(state.endpoints);
  const update = (endpointId: string, change: (e: WebhookEndpoint) => WebhookEndpoint) => {
    const endpoint = endpoints.get(endpointId);
    invariant(endpoint, `${event.type} of unknown webhook endpoint ${endpointId}`);
    endpoints.set(endpointId, change(endpoint));
  };
  switch (event.type) {
    case 'WebhookEndpointRegistered': {
      const d = event.data;
      invariant(!endpoints.has(d.endpointId), `webhook endpoint ${d.endpointId} registered twice`);
      endpoints.set(d.endpointId, {
        endpointId: d.endpointId,
        url: d.url,
        eventTypes: [...d.eventTypes],
        description: d.description,
        apiVersion: d.apiVersion,
        status: 'enabled',
        disabled: null,
        secrets: [{ secretId: d.secretId, createdAt: d.registeredAt, expiresAt: null }],
        createdAt: d.registeredAt,
        updatedAt: d.registeredAt,
      });
      return { endpoints, deleted: state.deleted };
    }
    case 'WebhookEndpointDisabled': {
      const d = event.data;
      update(d.endpointId, (e) => ({
        ...e,
        status: 'disabled',
        disabled: { reason: d.reason, at: d.disabledAt, failure: d.failure },
        updatedAt: d.disabledAt,
      }));
      return { endpoints, deleted: state.deleted };
    }
    case 'WebhookEndpointEnabled': {
      const d = event.data;
      update(d.endpointId, (e) => ({ ...e, status: 'enabled', disabled: null, updatedAt: d.enabledAt }));
      return { endpoints, deleted: state.deleted };
    }
    case 'WebhookEndpointSecretRotated': {
      const d = event.data;
      update(d.endpointId, (e) => ({
        ...e,
        // The previous secret signs until its grace period ends; any older one stops now.
        secrets: [
          { secretId: d.secretId, createdAt: d.rotatedAt, expiresAt: null },
          { ...e.secrets[0]!, expiresAt: d.previousExpiresAt },
        ],
        updatedAt: d.rotatedAt,
      }));
      return { endpoints, deleted: state.deleted };
    }
    case 'WebhookEndpointDeleted': {
      const d = event.data;
      invariant(endpoints.delete(d.endpointId), `deleting unknown webhook endpoint ${d.endpointId}`);
      return { endpoints, deleted: new Set([...state.deleted, d.endpointId]) };
    }
  }
}

export const webhookEndpointsDecider: Decider<
  WebhookEndpointCommand,
  WebhookEndpointEvent,
  WebhookEndpointsState
> = {
  initialState: () => ({ endpoints: new Map(), deleted: new Set() }),
  decide,
  evolve,
};

/** Secrets that sign a delivery at `nowMs`: the current one and a rotated-away one still in its grace period. */
export function signingSecretIds(endpoint: WebhookEndpoint, nowMs: number): string[] {
  return endpoint.secrets
    .filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > nowMs)
    .map((s) => s.secretId);
}
