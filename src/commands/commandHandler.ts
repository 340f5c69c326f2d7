import type { Decider } from '../domain/decider.js';
import { eventId } from '../domain/ids.js';
import {
  type EventMetadata,
  type EventStore,
  type EventToAppend,
  IdempotencyViolationError,
  type JsonObject,
  type RecordedEvent,
  StreamNotFoundError,
  WrongExpectedRevisionError,
} from '../eventstore/port.js';
import { type BackoffOptions, backoffDelayMs, sleep } from './backoff.js';
import type { CommandContext } from './context.js';
import { ConcurrencyConflictError, IdempotencyKeyReusedError } from './errors.js';
import { KeyedQueue } from './keyedQueue.js';
import { stableHash } from './stableHash.js';

/** What the command layer adds to the port's metadata, so a replayed key can be told from a reused one. */
export interface CommandEventMetadata extends EventMetadata {
  commandType: string;
  /** stableHash of the command payload that produced the event. */
  commandHash: string;
}

export const EVENT_SCHEMA_VERSION = 1;

/** An event as the deciders see it. */
export interface DomainEventLike {
  type: string;
  data: unknown;
}

/** An event this handler appended (or found already appended, on an idempotent replay). */
export interface HandledEvent {
  id: string;
  type: string;
  streamName: string;
  revision: bigint;
  data: JsonObject;
  metadata: EventMetadata;
}

export interface HandleResult<State> {
  /** Global position of the command's last event; on a no-op decision, of the stream's last event (-1n if none). */
  position: bigint;
  events: HandledEvent[];
  /** True when the events were already in the stream (same key, same payload) and nothing was decided. */
  replayed: boolean;
  /** State after the command. */
  state: State;
  /** The stream's last revision after the command, -1n when the stream does not exist. */
  revision: bigint;
}

export interface HandleOptions {
  /** Command type used in the deterministic event ids (`eventId(tenant, commandType, key, index)`). */
  commandType: string;
  /**
   * What identifies the payload for key-reuse detection; defaults to stableHash(command). Steps of a flow
   * derived from a trigger event pass the trigger's id: the step is fully determined by it.
   */
  payloadHash?: string;
}

export interface CommandHandlerOptions {
  store: EventStore;
  clock: () => Date;
  /** Attempts on WrongExpectedRevisionError before ConcurrencyConflictError. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  random?: () => number;
  /** Bound on cached aggregates (LRU). */
  cacheMaxStreams?: number;
  /** Bound on commands waiting for one stream inside this process. */
  maxQueuedPerStream?: number;
  /** Page size of stream reads. */
  readPageSize?: number;
}

interface IdRef {
  revision: bigint;
  commandHash: string | undefined;
}

interface CacheEntry {
  decider: unknown;
  state: unknown;
  /** Last revision reflected in `state`; -1n for a stream that does not exist yet. */
  revision: bigint;
  /** Position of the stream's last event; -1n when none. */
  lastPosition: bigint;
  /** Every event id of the stream (ids are deterministic per command, so this answers "done before?"). */
  ids: Map<string, IdRef>;
}

const DEFAULTS = {
  maxAttempts: 8,
  backoff: { baseDelayMs: 2, maxDelayMs: 100 } satisfies BackoffOptions,
  cacheMaxStreams: 10_000,
  maxQueuedPerStream: 10_000,
  readPageSize: 500,
};

/**
 * The generic command path: load (LRU cache by stream + revision; on a hit only newer events are read),
 * check idempotency, decide, append with the exact expected revision, retry conflicts with bounded
 * jittered backoff. Commands on one stream are queued inside this process (KeyedQueue) so a burst does
 * not become a conflict storm; other processes are handled by the expected revision.
 */
export class CommandHandler {
  private readonly store: EventStore;
  private readonly clock: () => Date;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private readonly cacheMaxStreams: number;
  private readonly readPageSize: number;
  private readonly queue: KeyedQueue;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly counters = {
    conflicts: 0,
    cacheHits: 0,
    cacheMisses: 0,
    replays: 0,
    /** Commands decided on cached state without reading the stream first. */
    unreadDecisions: 0,
    /** Decisions on unread cached state that appended nothing (refused, no-op) and were re-checked. */
    recheckedDecisions: 0,
  };

  constructor(options: CommandHandlerOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.maxAttempts = options.maxAttempts ?? DEFAULTS.maxAttempts;
    this.backoff = options.backoff ?? DEFAULTS.backoff;
    this.random = options.random ?? Math.random;
    this.cacheMaxStreams = options.cacheMaxStreams ?? DEFAULTS.cacheMaxStreams;
    this.readPageSize = options.readPageSize ?? DEFAULTS.readPageSize;
    this.queue = new KeyedQueue(options.maxQueuedPerStream ?? DEFAULTS.maxQueuedPerStream);
    if (!(this.maxAttempts >= 1 && this.cacheMaxStreams >= 1 && this.readPageSize >= 1)) {
      throw new RangeError('maxAttempts, cacheMaxStreams and readPageSize must be >= 1');
    }
  }

  stats(): Readonly<typeof this.counters> & { cachedStreams: number } {
    return { ...this.counters, cachedStreams: this.cache.size };
  }

  /** Current state of a stream (through the cache). */
  load<C, E extends DomainEventLike, S>(
    decider: Decider<C, E, S>,
    streamName: string,
  ): Promise<{ state: S; revision: bigint }> {
    return this.queue.run(streamName, async () => {
      const entry = await this.catchUp(decider, streamName);
      return { state: entry.state as S, revision: entry.revision };
    });
  }

  handle<C, E extends DomainEventLike, S>(
    decider: Decider<C, E, S>,
    streamName: string,
    command: C,
    ctx: CommandContext,
    options: HandleOptions,
  ): Promise<HandleResult<S>> {
    const commandHash = options.payloadHash ?? stableHash({ type: options.commandType, command });
    return this.queue.run(streamName, () =>
      this.handleQueued(decider, streamName, command, ctx, options.commandType, commandHash),
    );
  }

  private async handleQueued<C, E extends DomainEventLike, S>(
    decider: Decider<C, E, S>,
    streamName: string,
    command: C,
    ctx: CommandContext,
    commandType: string,
    commandHash: string,
  ): Promise<HandleResult<S>> {
    const firstId = eventId(ctx.tenantId, commandType, ctx.idempotencyKey, 0);
    let sawIdViolation = false;
    // The first attempt decides on the cached state as it is, without reading the stream (no round
    // trip): the append's exact expected revision is what makes that safe. If another process appended
    // since, the append fails with WrongExpectedRevision (or IdempotencyViolation, for our own ids) and
    // the next attempt reads. Only an outcome that appends nothing (a refusal, a no-op) is not checked
    // by an append, so such an outcome from unread state is re-decided on freshly read state.
    let unread = true;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const cached = unread ? this.cachedEntry(decider, streamName) : undefined;
      unread = false;
      const entry = cached ?? (await this.catchUp(decider, streamName));
      if (cached) this.counters.unreadDecisions++;
      const done = entry.ids.get(firstId);
      if (done && cached) {
        // A replay answers with the stream's current state: read it first (replays are rare).
        attempt--;
        continue;
      }
      if (done) {
        if (done.commandHash !== commandHash) {
          throw new IdempotencyKeyReusedError(ctx.idempotencyKey, commandType, streamName);
        }
        this.counters.replays++;
        return this.replay(entry, streamName, ctx, commandType, done.revision);
      }
      let decided: E[];
      try {
        decided = decider.decide(command, entry.state as S);
      } catch (error) {
        if (!cached) throw error;
        this.counters.recheckedDecisions++;
        attempt--; // a re-check is not a conflict: it does not use up an attempt
        continue;
      }
      if (decided.length === 0 && cached) {
        this.counters.recheckedDecisions++;
        attempt--;
        continue;
      }
      if (decided.length === 0) {
        return {
          position: entry.lastPosition,
          events: [],
          replayed: false,
          state: entry.state as S,
          revision: entry.revision,
        };
      }
      const occurredAt = this.clock().toISOString();
      const toAppend: EventToAppend[] = decided.map((e, index) => {
        const metadata: CommandEventMetadata = {
          tenantId: ctx.tenantId,
          correlationId: ctx.correlationId,
          causationId: ctx.causationId,
          actor: { id: ctx.actor.id, role: ctx.actor.role },
          idempotencyKey: ctx.idempotencyKey,
          occurredAt,
          schemaVersion: EVENT_SCHEMA_VERSION,
          commandType,
          commandHash,
        };
        return {
          id: eventId(ctx.tenantId, commandType, ctx.idempotencyKey, index),
          type: e.type,
          data: toJsonObject(e.data, e.type),
          metadata,
        };
      });
      try {
        const result = await this.store.append(streamName, toAppend, {
          expectedRevision: entry.revision < 0n ? 'no_stream' : entry.revision,
        });
        const firstRevision = result.nextExpectedRevision - BigInt(toAppend.length - 1);
        let state = entry.state as S;
        const handled: HandledEvent[] = toAppend.map((e, i) => {
          const revision = firstRevision + BigInt(i);
          state = decider.evolve(state, { type: e.type, data: e.data } as E);
          entry.ids.set(e.id, { revision, commandHash });
          return { id: e.id, type: e.type, streamName, revision, data: e.data, metadata: e.metadata };
        });
        // Only advance the cache when the append landed right after what we had (it always should, as the
        // expected revision was exact); anything else forces a re-read next time.
        if (firstRevision === entry.revision + 1n) {
          entry.state = state;
          entry.revision = result.nextExpectedRevision;
          entry.lastPosition = result.position;
        } else {
          this.cache.delete(streamName);
        }
        return {
          position: result.position,
          events: handled,
          replayed: false,
          state,
          revision: result.nextExpectedRevision,
        };
      } catch (error) {
        if (error instanceof WrongExpectedRevisionError) {
          this.counters.conflicts++;
          if (attempt + 1 < this.maxAttempts) await sleep(backoffDelayMs(attempt, this.backoff, this.random));
          continue;
        }
        if (error instanceof IdempotencyViolationError) {
          // Our ids exist already. Either another process just appended this same command (its data can
          // differ in injected timestamps): re-read once and the replay check above answers; or they exist
          // in another stream: the key was reused for a different command.
          if (!sawIdViolation) {
            sawIdViolation = true;
            continue;
          }
          throw new IdempotencyKeyReusedError(ctx.idempotencyKey, commandType, streamName);
        }
        throw error;
      }
    }
    throw new ConcurrencyConflictError(streamName, this.maxAttempts);
  }

  private async replay<S>(
    entry: CacheEntry,
    streamName: string,
    ctx: CommandContext,
    commandType: string,
    fromRevision: bigint,
  ): Promise<HandleResult<S>> {
    const recorded = await this.store.readStream(streamName, {
      fromRevision,
      maxCount: this.readPageSize,
      direction: 'forwards',
    });
    const events: RecordedEvent[] = [];
    for (const [index, e] of recorded.entries()) {
      if (e.id !== eventId(ctx.tenantId, commandType, ctx.idempotencyKey, index)) break;
      events.push(e);
    }
    const last = events[events.length - 1];
    if (!last) throw new Error(`replay of ${commandType} on ${streamName}: events vanished from the stream`);
    return {
      position: last.position,
      events: events.map((e) => ({
        id: e.id,
        type: e.type,
        streamName,
        revision: e.revision,
        data: e.data,
        metadata: e.metadata,
      })),
      replayed: true,
      state: entry.state as S,
      revision: entry.revision,
    };
  }

  /**
   * The cached entry of a stream as it is (no read), moved to the LRU's young end; undefined when not
   * cached or cached for another decider. Its ids are events that really are in the stream (appended or
   * read by this handler), so a replay found there is certain; what it may lack is events appended by
   * other processes since, which the expected revision of the next append detects.
   */
  private cachedEntry(decider: unknown, streamName: string): CacheEntry | undefined {
    const entry = this.cache.get(streamName);
    if (!entry || entry.decider !== decider) return undefined;
    this.counters.cacheHits++;
    this.cache.delete(streamName);
    this.cache.set(streamName, entry);
    return entry;
  }

  /** Returns the cached entry brought up to the stream's current revision (reading only newer events). */
  private async catchUp<C, E extends DomainEventLike, S>(
    decider: Decider<C, E, S>,
    streamName: string,
  ): Promise<CacheEntry> {
    let entry = this.cache.get(streamName);
    if (entry && entry.decider === decider) {
      this.counters.cacheHits++;
      this.cache.delete(streamName); // re-insert below: Map order is the LRU order
    } else {
      this.counters.cacheMisses++;
      entry = {
        decider,
        state: decider.initialState(),
        revision: -1n,
        lastPosition: -1n,
        ids: new Map(),
      };
    }
    for (;;) {
      let page: RecordedEvent[];
      try {
        page = await this.store.readStream(streamName, {
          fromRevision: entry.revision + 1n,
          maxCount: this.readPageSize,
          direction: 'forwards',
        });
      } catch (error) {
        if (error instanceof StreamNotFoundError) break;
        throw error;
      }
      let state = entry.state as S;
      for (const e of page) {
        if (e.revision !== entry.revision + 1n) {
          throw new Error(`stream ${streamName}: read revision ${e.revision} after ${entry.revision}`);
        }
        state = decider.evolve(state, { type: e.type, data: e.data } as E);
        entry.revision = e.revision;
        entry.lastPosition = e.position;
        const meta = e.metadata as Partial<CommandEventMetadata>;
        entry.ids.set(e.id, { revision: e.revision, commandHash: meta.commandHash });
      }
      entry.state = state;
      if (page.length < this.readPageSize) break;
    }
    this.cache.set(streamName, entry);
    while (this.cache.size > this.cacheMaxStreams) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    return entry;
  }
}

/** Events cross into the store as plain JSON; a round trip makes what we evolve equal to what we store. */
function toJsonObject(data: unknown, type: string): JsonObject {
  const json: unknown = JSON.parse(JSON.stringify(data ?? {}));
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new TypeError(`event ${type}: data must serialize to a JSON object`);
  }
  return json as JsonObject;
}
