/**
 * The event store port. Every adapter (memory, postgres, esdb) implements exactly this and passes the
 * contract suite in test/eventstore/. Positions and revisions are bigint so no adapter loses precision
 * (EventStoreDB uses unsigned 64-bit values); convert to string at the HTTP edge.
 */

import type { EventMetadata } from '../domain/metadata.js';
import type { Actor } from '../domain/schema.js';

export type { Actor, EventMetadata };

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** An event proposed for append. `id` is a UUID, deterministic per command (see ids.ts). */
export interface EventToAppend {
  id: string;
  type: string;
  data: JsonObject;
  metadata: EventMetadata;
}

export interface RecordedEvent {
  id: string;
  type: string;
  streamName: string;
  /** 0-based revision of the event within its stream. */
  revision: bigint;
  /** Global position in the store; strictly increasing in commit order. */
  position: bigint;
  data: JsonObject;
  metadata: EventMetadata;
  /** When the store recorded the event (store clock). */
  recordedAt: Date;
}

/**
 * Expected state of the stream before the append:
 *  - 'no_stream': the stream must not exist;
 *  - 'stream_exists': it must exist (any revision);
 *  - 'any': no check;
 *  - bigint: the stream's current (last) revision must be exactly this.
 */
export type ExpectedRevision = 'no_stream' | 'stream_exists' | 'any' | bigint;

export interface AppendOptions {
  expectedRevision: ExpectedRevision;
}

export interface AppendResult {
  /** Revision of the last event of the stream after the append. */
  nextExpectedRevision: bigint;
  /** Global position of the last event written (or of the original write on an idempotent replay). */
  position: bigint;
}

export type Direction = 'forwards' | 'backwards';

export interface ReadStreamOptions {
  direction?: Direction;
  /** Inclusive start revision; defaults to the start (forwards) or the end (backwards). */
  fromRevision?: bigint;
  /** Bound on the number of events returned; required so no read is unbounded. */
  maxCount: number;
}

/** Matches events by stream-name prefix and/or event type. Both present: both must match. */
export interface EventFilter {
  streamNamePrefixes?: string[];
  eventTypes?: string[];
}

export interface ReadAllOptions {
  direction?: Direction;
  /**
   * Exclusive start position: forwards returns events with position > after (default: from the start);
   * backwards returns events with position < before (default: from the end).
   */
  after?: bigint;
  before?: bigint;
  maxCount: number;
  filter?: EventFilter;
}

export interface SubscribeOptions {
  /** Exclusive: deliver events with position > after. Omitted: from the very start. */
  after?: bigint;
  filter?: EventFilter;
  /** Bound on events buffered ahead of a slow consumer; the subscription pauses reading when full. */
  maxBuffered?: number;
}

export type SubscriptionMessage =
  | { kind: 'event'; event: RecordedEvent }
  /** The subscription has delivered everything that was committed when it caught up; live from here. */
  | { kind: 'caughtUp'; position: bigint };

export interface Subscription extends AsyncIterable<SubscriptionMessage> {
  /** Stops the subscription; the iterator ends after the messages already delivered. */
  close(): Promise<void>;
}

export interface EventStore {
  readonly kind: 'memory' | 'postgres' | 'esdb';
  append(streamName: string, events: EventToAppend[], options: AppendOptions): Promise<AppendResult>;
  /** Throws StreamNotFoundError when the stream has no events. */
  readStream(streamName: string, options: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options: ReadAllOptions): Promise<RecordedEvent[]>;
  /**
   * The event with this id if it was appended to this stream, else undefined (never for another
   * stream's event). The command layer's proof that a command was done before, for commands older
   * than the ids it keeps in memory (src/commands/commandHandler.ts, the id window).
   */
  findEvent(streamName: string, eventId: string): Promise<RecordedEvent | undefined>;
  subscribe(options: SubscribeOptions): Subscription;
  /** Position of the last committed event, or -1n for an empty store. */
  headPosition(): Promise<bigint>;
  /** Throws when the store is not reachable; used by /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Errors: every adapter maps its failures to these, so callers can act on them without knowing the store.

export abstract class EventStoreError extends Error {
  abstract readonly code: string;
}

export class WrongExpectedRevisionError extends EventStoreError {
  readonly code = 'wrong_expected_revision';
  constructor(
    readonly streamName: string,
    readonly expected: ExpectedRevision,
    /** Current last revision, or 'no_stream'. */
    readonly actual: bigint | 'no_stream',
  ) {
    super(
      `stream ${streamName}: expected revision ${String(expected)}, actual ${String(actual)} (concurrent write)`,
    );
    this.name = 'WrongExpectedRevisionError';
  }
}

export class StreamNotFoundError extends EventStoreError {
  readonly code = 'stream_not_found';
  constructor(readonly streamName: string) {
    super(`stream ${streamName} not found`);
    this.name = 'StreamNotFoundError';
  }
}

/** Bad input to the store: empty append, bad stream name, missing type, oversize event, bad revision. */
export class InvalidAppendError extends EventStoreError {
  readonly code = 'invalid_append';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidAppendError';
  }
}

/** The same event id was appended before with different content or to another stream/revision. */
export class IdempotencyViolationError extends EventStoreError {
  readonly code = 'idempotency_violation';
  constructor(message: string) {
    super(message);
    this.name = 'IdempotencyViolationError';
  }
}

export class EventStoreUnavailableError extends EventStoreError {
  readonly code = 'event_store_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStoreUnavailableError';
  }
}

export class EventStoreDeadlineError extends EventStoreError {
  readonly code = 'event_store_deadline_exceeded';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStoreDeadlineError';
  }
}

export class EventStoreAccessDeniedError extends EventStoreError {
  readonly code = 'event_store_access_denied';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStoreAccessDeniedError';
  }
}
