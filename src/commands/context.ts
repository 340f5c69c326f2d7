import type { ClientMetadata } from '../domain/clientMetadata.js';
import type { Actor } from '../domain/schema.js';

/** Who is asking, on whose behalf, and how to make the request idempotent. Built by the API edge. */
export interface CommandContext {
  tenantId: string;
  actor: Actor;
  /** Client-supplied (or derived, for webhooks and jobs) key; same key + same input = same events. */
  idempotencyKey: string;
  correlationId: string;
  /** Id of the event or request that caused this command. */
  causationId: string;
  /** The caller's metadata (clientMetadata.ts), stored on every event the command appends. */
  clientMetadata?: ClientMetadata;
}

/** Every command result carries the global position of its last event (for read-your-writes). */
export interface CommandResult {
  position: bigint;
}
