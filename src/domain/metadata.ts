import { type Static, Type } from '@sinclair/typebox';
import { ClientMetadataSchema } from './clientMetadata.js';
import { MAX_IDEMPOTENCY_KEY_LENGTH } from './ids.js';
import { ActorSchema, InstantSchema, strictObject, TenantIdSchema } from './schema.js';

/**
 * Metadata stored with every event: whose tenant it is, what caused it (correlation and causation ids,
 * the actor, the idempotency key of the command), when (the injected clock, never the store's) and the
 * schema version of its data. Events a command appended also name the command and the hash of its
 * payload, so a retried key can be told from a reused one.
 */
export const EVENT_SCHEMA_VERSION = 1;

const Id = Type.String({ minLength: 1, maxLength: 512 });

export const EventMetadataSchema = strictObject({
  tenantId: TenantIdSchema,
  correlationId: Id,
  causationId: Id,
  actor: ActorSchema,
  idempotencyKey: Type.String({ minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH }),
  occurredAt: InstantSchema,
  /** Version of the event's data schema; this code reads version 1 (an upcaster would map older ones). */
  schemaVersion: Type.Integer({ minimum: 1, maximum: EVENT_SCHEMA_VERSION }),
  /** The command that appended the event (absent on events written outside a command, e.g. a reconciliation run). */
  commandType: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  /** The command's payload hash (stableHash, or the step's key for a flow step). */
  commandHash: Type.Optional(Type.String({ minLength: 1, maxLength: 600 })),
  /**
   * The caller's metadata of the command (clientMetadata.ts), on every event the command and the flow
   * steps it triggered appended; absent when it gave none (and on every event written before it existed).
   */
  clientMetadata: Type.Optional(ClientMetadataSchema),
});
export type EventMetadata = Static<typeof EventMetadataSchema>;

/** Metadata of an event a command appended. */
export type CommandEventMetadata = EventMetadata & { commandType: string; commandHash: string };
