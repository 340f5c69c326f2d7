import { parseClientMetadata } from '../domain/clientMetadata.js';
import type { Decider } from '../domain/decider.js';
import { decodeEvent, type StoredEvent } from '../domain/events.js';
import { eventId } from '../domain/ids.js';
import { assertPostingWithinLimit, entriesOf, volumeLimitFor } from '../domain/ledgerLimits.js';
import { type CommandEventMetadata, EVENT_SCHEMA_VERSION } from '../domain/metadata.js';
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
import type { SnapshotStore } from '../eventstore/snapshots.js';
import type { AccountVolumeGuard } from './accountVolumeGuard.js';
import { type BackoffOptions, backoffDelayMs, sleep } from './backoff.js';
import type { CommandContext } from './context.js';
import { ConcurrencyConflictError, IdempotencyKeyReusedError } from './errors.js';
import { KeyedQueue } from './keyedQueue.js';
import { decodeSnapshot, encodeSnapshot, type SnapshotIds, snapshotKindOf } from './snapshots.js';
import { stableHash } from './stableHash.js';

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
  /** Bound on the estimated bytes of every cached aggregate together (LRU eviction beyond it). */
  cacheMaxBytes?: number;
  /** An aggregate estimated above this is not kept in the cache (each command loads it from its snapshot). */
  cacheMaxStreamBytes?: number;
  /** Event ids remembered per stream (the newest); older commands are checked with the store (findEvent). */
  idWindow?: number;
  /**
   * Where snapshots of the domain's aggregates are kept; without it every cold load folds the whole
   * stream. Snapshots are written after a command or a load once this many events were folded since
   * the last one.
   */
  snapshots?: SnapshotStore;
  snapshotEveryEvents?: number;
  /** The snapshot kind of a decider (undefined: never snapshotted); the domain's by default. */
  snapshotKind?: (decider: unknown) => string | undefined;
  /** Told about a snapshot that could not be read or written (the command itself is unaffected). */
  onSnapshotError?: (error: unknown, streamName: string) => void;
  /** Bound on commands waiting for one stream inside this process. */
  maxQueuedPerStream?: number;
  /** Page size of stream reads. */
  readPageSize?: number;
  /**
   * The per-account limit of accounts many streams post to, checked against the read model before an
   * append (accountVolumeGuard.ts). Without it only the per-posting bound is checked (tests, tools).
   */
  accountVolumes?: AccountVolumeGuard;
  /**
   * Checks a proposed event as the read side will read it back, throwing for one it would reject;
   * decodeEvent (the projection's own decoder) unless a test drives a decider outside the ledger's
   * event schemas.
   */
  checkEvent?: (event: StoredEvent) => void;
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
  /**
   * The newest event ids of the stream, oldest first, at most idWindow (ids are deterministic per
   * command, so this answers "done before?" for recent commands without a round trip).
   */
  ids: Map<string, IdRef>;
  /** True while `ids` holds every event id of the stream; once not, older ids are asked of the store. */
  idsComplete: boolean;
  /** Revision of the newest snapshot stored or read for this stream; -1n when none. */
  snapshotRevision: bigint;
  /** Length of the entry's last encoding (0: never encoded). */
  encodedBytes: number;
  /** Estimated heap bytes of `state` and `ids` (see estimateBytes). */
  bytes: number;
}

const DEFAULTS = {
  maxAttempts: 8,
  backoff: { baseDelayMs: 2, maxDelayMs: 100 } satisfies BackoffOptions,
  cacheMaxStreams: 10_000,
  cacheMaxBytes: 256 * 1024 * 1024,
  cacheMaxStreamBytes: 64 * 1024 * 1024,
  idWindow: 1_000,
  snapshotEveryEvents: 200,
  maxQueuedPerStream: 10_000,
  readPageSize: 500,
};

/**
 * Heap bytes per byte of a state's snapshot encoding, and per remembered id: the estimate the cache's
 * byte bounds apply to (measured by `npm run bench -- commands`, heap per cached stream).
 */
const HEAP_BYTES_PER_ENCODED_BYTE = 3;
const HEAP_BYTES_PER_ID = 160;
/** Estimate for an event folded since the state was last measured (its encoded data, times the factor). */
const HEAP_BYTES_PER_EVENT = 1_024;
/** See maybeSnapshot: a 1 MB state is encoded every 500 events, a 10 MB one every 5,000. */
const ENCODED_BYTES_PER_EVENT = 2_000;

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
  private readonly cacheMaxBytes: number;
  private readonly cacheMaxStreamBytes: number;
  private readonly idWindow: number;
  private readonly snapshots: SnapshotStore | undefined;
  private readonly snapshotEveryEvents: number;
  private readonly snapshotKind: (decider: unknown) => string | undefined;
  private readonly onSnapshotError: (error: unknown, streamName: string) => void;
  private readonly readPageSize: number;
  private readonly accountVolumes: AccountVolumeGuard | undefined;
  private readonly checkEvent: (event: StoredEvent) => void;
  private readonly queue: KeyedQueue;
  private readonly cache = new Map<string, CacheEntry>();
  private cachedBytes = 0;
  /** Streams whose snapshot is being written (one write per stream at a time). */
  private readonly snapshotting = new Set<string>();
  private readonly counters = {
    conflicts: 0,
    cacheHits: 0,
    cacheMisses: 0,
    replays: 0,
    /** Commands decided on cached state without reading the stream first. */
    unreadDecisions: 0,
    /** Decisions on unread cached state that appended nothing (refused, no-op) and were re-checked. */
    recheckedDecisions: 0,
    /** Commands older than the id window checked with the store (findEvent). */
    idLookups: 0,
    /** Cold loads that started from a snapshot, and snapshots refused (the stream did not match). */
    snapshotLoads: 0,
    snapshotMismatches: 0,
    snapshotWrites: 0,
    snapshotErrors: 0,
    /** Aggregates not cached because their estimate was above cacheMaxStreamBytes. */
    oversizeStreams: 0,
  };

  constructor(options: CommandHandlerOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.maxAttempts = options.maxAttempts ?? DEFAULTS.maxAttempts;
    this.backoff = options.backoff ?? DEFAULTS.backoff;
    this.random = options.random ?? Math.random;
    this.cacheMaxStreams = options.cacheMaxStreams ?? DEFAULTS.cacheMaxStreams;
    this.cacheMaxBytes = options.cacheMaxBytes ?? DEFAULTS.cacheMaxBytes;
    this.cacheMaxStreamBytes = options.cacheMaxStreamBytes ?? DEFAULTS.cacheMaxStreamBytes;
    this.idWindow = options.idWindow ?? DEFAULTS.idWindow;
    this.snapshots = options.snapshots;
    this.snapshotEveryEvents = options.snapshotEveryEvents ?? DEFAULTS.snapshotEveryEvents;
    this.snapshotKind = options.snapshotKind ?? snapshotKindOf;
    this.onSnapshotError = options.onSnapshotError ?? (() => undefined);
    this.readPageSize = options.readPageSize ?? DEFAULTS.readPageSize;
    this.accountVolumes = options.accountVolumes;
    this.checkEvent = options.checkEvent ?? decodeEvent;
    this.queue = new KeyedQueue(options.maxQueuedPerStream ?? DEFAULTS.maxQueuedPerStream);
    const positive = [
      this.maxAttempts,
      this.cacheMaxStreams,
      this.cacheMaxBytes,
      this.cacheMaxStreamBytes,
      this.idWindow,
      this.snapshotEveryEvents,
      this.readPageSize,
    ];
    if (!positive.every((n) => Number.isSafeInteger(n) && n >= 1)) {
      throw new RangeError(
        'maxAttempts, cacheMaxStreams, cacheMaxBytes, cacheMaxStreamBytes, idWindow, snapshotEveryEvents and readPageSize must be integers >= 1',
      );
    }
  }

  stats(): Readonly<typeof this.counters> & { cachedStreams: number; cachedBytes: number } {
    return { ...this.counters, cachedStreams: this.cache.size, cachedBytes: this.cachedBytes };
  }

  /** The cache's bounds, for metrics and the docs' numbers. */
  limits(): {
    cacheMaxStreams: number;
    cacheMaxBytes: number;
    cacheMaxStreamBytes: number;
    idWindow: number;
  } {
    return {
      cacheMaxStreams: this.cacheMaxStreams,
      cacheMaxBytes: this.cacheMaxBytes,
      cacheMaxStreamBytes: this.cacheMaxStreamBytes,
      idWindow: this.idWindow,
    };
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
    // Checked here, where events are written: metadata the event schema would refuse never reaches the
    // store (a DomainError instead), and `{}` is no metadata.
    const clientMetadata = parseClientMetadata(ctx.clientMetadata);
    if (clientMetadata) ctx = { ...ctx, clientMetadata };
    else if (ctx.clientMetadata !== undefined) {
      const { clientMetadata: _empty, ...rest } = ctx;
      ctx = rest;
    }
    const payloadHash = options.payloadHash ?? stableHash({ type: options.commandType, command });
    // Metadata is part of what a key promised: the same key with other metadata is a reused key. Hashed
    // in only when given, so the hashes of commands without it are what they always were.
    const commandHash = ctx.clientMetadata
      ? stableHash({ payloadHash, clientMetadata: ctx.clientMetadata })
      : payloadHash;
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
      const done = entry.ids.get(firstId) ?? (await this.doneBeyondWindow(entry, streamName, firstId));
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
          ...(ctx.clientMetadata ? { clientMetadata: ctx.clientMetadata } : {}),
        };
        return {
          id: eventId(ctx.tenantId, commandType, ctx.idempotencyKey, index),
          type: e.type,
          data: toJsonObject(e.data, e.type),
          metadata,
        };
      });
      // Everything the read side and evolve would assert about these events is checked before they
      // exist: after the append, nothing may fail for a command whose events stand.
      const state = this.evolveBeforeAppend(decider, entry, streamName, toAppend);
      await this.checkLimits(ctx.tenantId, toAppend, volumeLimitFor(commandType));
      try {
        const result = await this.store.append(streamName, toAppend, {
          expectedRevision: entry.revision < 0n ? 'no_stream' : entry.revision,
        });
        const firstRevision = result.nextExpectedRevision - BigInt(toAppend.length - 1);
        const handled: HandledEvent[] = toAppend.map((e, i) => {
          const revision = firstRevision + BigInt(i);
          return { id: e.id, type: e.type, streamName, revision, data: e.data, metadata: e.metadata };
        });
        this.advanceCache(streamName, entry, { handled, firstRevision, state, commandHash, result });
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

  /**
   * The state after `toAppend`, computed before the append: each event decoded as the read side will
   * decode it (schema, metadata, a balanced entry) and folded by evolve. A failure here is a decider
   * bug; it throws before anything is appended, so the stream never holds an event that cannot be
   * applied.
   */
  private evolveBeforeAppend<C, E extends DomainEventLike, S>(
    decider: Decider<C, E, S>,
    entry: CacheEntry,
    streamName: string,
    toAppend: readonly EventToAppend[],
  ): S {
    let state = entry.state as S;
    for (const e of toAppend) {
      // Throws MalformedEventError (an InvariantViolation) for an event the projection would reject.
      this.checkEvent({ ...e, streamName, position: entry.lastPosition + 1n });
      state = decider.evolve(state, { type: e.type, data: e.data } as E);
    }
    return state;
  }

  /** The ledger's bounds (ledgerLimits.ts): posting amounts, and the shared accounts' volumes. */
  private async checkLimits(
    tenantId: string,
    toAppend: readonly EventToAppend[],
    limit: number,
  ): Promise<void> {
    const entries = entriesOf(toAppend);
    if (entries.length === 0) return;
    if (this.accountVolumes) await this.accountVolumes.check(tenantId, entries, limit);
    else for (const entry of entries) for (const p of entry.postings) assertPostingWithinLimit(p);
  }

  /**
   * Records an append in the cache. Only advances it when the append landed right after what we had (it
   * always should, as the expected revision was exact); anything else, or any failure here, forces a
   * re-read next time: the events stand, so this bookkeeping must never fail the command.
   */
  private advanceCache(
    streamName: string,
    entry: CacheEntry,
    appended: {
      handled: readonly HandledEvent[];
      firstRevision: bigint;
      state: unknown;
      commandHash: string;
      result: { nextExpectedRevision: bigint; position: bigint };
    },
  ): void {
    const { handled, firstRevision, state, commandHash, result } = appended;
    if (firstRevision !== entry.revision + 1n) {
      this.evict(streamName);
      return;
    }
    try {
      for (const h of handled) this.remember(entry, h.id, h.revision, commandHash);
      entry.state = state;
      entry.revision = result.nextExpectedRevision;
      entry.lastPosition = result.position;
      this.resize(streamName, entry, HEAP_BYTES_PER_EVENT * handled.length);
      this.maybeSnapshot(streamName, entry);
    } catch (error) {
      this.evict(streamName);
      this.onSnapshotError(error, streamName);
    }
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

  /**
   * A command whose first event id is not in the entry's window may still be older than the window:
   * ask the store (one lookup by id), unless the window holds every id of the stream.
   */
  private async doneBeyondWindow(
    entry: CacheEntry,
    streamName: string,
    firstId: string,
  ): Promise<IdRef | undefined> {
    if (entry.idsComplete) return undefined;
    this.counters.idLookups++;
    const found = await this.store.findEvent(streamName, firstId);
    if (!found) return undefined;
    return {
      revision: found.revision,
      commandHash: (found.metadata as Partial<CommandEventMetadata>).commandHash,
    };
  }

  /** Adds an id at the young end of the entry's window, dropping the oldest beyond idWindow. */
  private remember(entry: CacheEntry, id: string, revision: bigint, commandHash: string | undefined): void {
    entry.ids.set(id, { revision, commandHash });
    if (entry.ids.size > this.idWindow) {
      const oldest = entry.ids.keys().next().value;
      if (oldest !== undefined) entry.ids.delete(oldest);
      entry.idsComplete = false;
    }
  }

  /** Returns the cached entry brought up to the stream's current revision (reading only newer events). */
  private async catchUp<C, E extends DomainEventLike, S>(
    decider: Decider<C, E, S>,
    streamName: string,
  ): Promise<CacheEntry> {
    let entry = this.cache.get(streamName);
    let page: RecordedEvent[] | undefined;
    let moreAfterPage = false;
    if (entry && entry.decider === decider) {
      this.counters.cacheHits++;
    } else {
      this.counters.cacheMisses++;
      if (entry) this.evict(streamName);
      const fromSnapshot = await this.fromSnapshot(decider, streamName);
      entry = fromSnapshot?.entry ?? {
        decider,
        state: decider.initialState(),
        revision: -1n,
        lastPosition: -1n,
        ids: new Map(),
        idsComplete: true,
        snapshotRevision: -1n,
        encodedBytes: 0,
        bytes: 0,
      };
      page = fromSnapshot?.rest;
      // The snapshot's page began with its own event: a full page of it may be followed by more.
      moreAfterPage = fromSnapshot?.more ?? false;
    }
    let folded = 0;
    for (;;) {
      if (!page) {
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
        this.remember(entry, e.id, e.revision, meta.commandHash);
      }
      entry.state = state;
      folded += page.length;
      const full = page.length >= this.readPageSize || moreAfterPage;
      page = undefined;
      moreAfterPage = false;
      if (!full) break;
    }
    this.resize(streamName, entry, HEAP_BYTES_PER_EVENT * folded);
    this.maybeSnapshot(streamName, entry);
    return entry;
  }

  /**
   * The entry as of the stream's snapshot, and the events read after it, when there is a snapshot of the
   * decider's current kind and the stream still holds the snapshot's event at its revision (read in the
   * same page as the events after it); undefined otherwise, and the stream is folded from the start.
   */
  private async fromSnapshot(
    decider: unknown,
    streamName: string,
  ): Promise<{ entry: CacheEntry; rest: RecordedEvent[]; more: boolean } | undefined> {
    const kind = this.snapshotKind(decider);
    if (!this.snapshots || kind === undefined) return undefined;
    let snapshot: Awaited<ReturnType<SnapshotStore['read']>>;
    try {
      snapshot = await this.snapshots.read(streamName, kind);
    } catch (error) {
      this.counters.snapshotErrors++;
      this.onSnapshotError(error, streamName);
      return undefined;
    }
    if (!snapshot) return undefined;
    let page: RecordedEvent[];
    try {
      page = await this.store.readStream(streamName, {
        fromRevision: snapshot.revision,
        maxCount: this.readPageSize,
        direction: 'forwards',
      });
    } catch (error) {
      if (!(error instanceof StreamNotFoundError)) throw error;
      page = [];
    }
    const at = page[0];
    if (!at || at.revision !== snapshot.revision || at.id !== snapshot.eventId) {
      this.counters.snapshotMismatches++;
      return undefined;
    }
    const content = decodeSnapshot(snapshot.payload);
    const ids = new Map<string, IdRef>();
    for (const [id, revision, commandHash] of content.ids.recent) {
      ids.set(id, { revision, commandHash: commandHash ?? undefined });
    }
    this.counters.snapshotLoads++;
    return {
      entry: {
        decider,
        state: content.state,
        revision: snapshot.revision,
        lastPosition: at.position,
        ids,
        idsComplete: content.ids.complete,
        snapshotRevision: snapshot.revision,
        encodedBytes: snapshot.payload.length,
        bytes: estimateBytes(snapshot.payload.length, ids.size),
      },
      rest: page.slice(1),
      more: page.length >= this.readPageSize,
    };
  }

  /**
   * Once snapshotEveryEvents events were folded since the entry was last encoded: encodes it (which also
   * re-measures its estimate) and, for the domain's deciders when there is a snapshot store, writes the
   * snapshot in the background (one write per stream at a time). The state is encoded now,
   * synchronously: a later encoding could see a newer state under this revision.
   */
  private maybeSnapshot(streamName: string, entry: CacheEntry): void {
    // Encoding costs in proportion to the state's size, so a large state is encoded less often: at most
    // about ENCODED_BYTES_PER_EVENT of encoding per event folded, whatever the state's size.
    const interval = Math.max(
      this.snapshotEveryEvents,
      Math.ceil(entry.encodedBytes / ENCODED_BYTES_PER_EVENT),
    );
    if (entry.revision < 0n || entry.revision - entry.snapshotRevision < BigInt(interval)) return;
    const recent = [...entry.ids.entries()];
    const eventId = recent.at(-1)?.[0];
    if (eventId === undefined) return;
    const ids: SnapshotIds = {
      recent: recent.map(([id, ref]) => [id, ref.revision, ref.commandHash ?? null]),
      complete: entry.idsComplete,
    };
    const payload = encodeSnapshot({ state: entry.state, ids });
    const revision = entry.revision;
    entry.snapshotRevision = revision;
    entry.encodedBytes = payload.length;
    this.resize(streamName, entry, estimateBytes(payload.length, entry.ids.size) - entry.bytes);
    const kind = this.snapshotKind(entry.decider);
    const snapshots = this.snapshots;
    if (!snapshots || kind === undefined || this.snapshotting.has(streamName)) return;
    this.snapshotting.add(streamName);
    snapshots
      .write({ streamName, kind, revision, eventId, payload })
      .then(
        () => {
          this.counters.snapshotWrites++;
        },
        (error: unknown) => {
          this.counters.snapshotErrors++;
          this.onSnapshotError(error, streamName);
        },
      )
      .finally(() => this.snapshotting.delete(streamName));
  }

  /**
   * Puts the entry at the LRU's young end with its estimate grown by `deltaBytes`, then evicts from the
   * old end until both bounds hold. An entry above cacheMaxStreamBytes is not kept at all.
   */
  private resize(streamName: string, entry: CacheEntry, deltaBytes: number): void {
    if (this.cache.get(streamName) === entry) {
      this.cache.delete(streamName);
      this.cachedBytes -= entry.bytes;
    }
    entry.bytes = Math.max(0, entry.bytes + deltaBytes);
    if (entry.bytes > this.cacheMaxStreamBytes) {
      this.counters.oversizeStreams++;
      return;
    }
    this.cache.set(streamName, entry);
    this.cachedBytes += entry.bytes;
    while (this.cache.size > this.cacheMaxStreams || this.cachedBytes > this.cacheMaxBytes) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined || oldest === streamName) break;
      this.evict(oldest);
    }
  }

  private evict(streamName: string): void {
    const entry = this.cache.get(streamName);
    if (!entry) return;
    this.cache.delete(streamName);
    this.cachedBytes -= entry.bytes;
  }
}

/** The heap an entry is taken to use: its encoded state times a measured factor, plus its ids. */
function estimateBytes(encodedBytes: number, ids: number): number {
  return encodedBytes * HEAP_BYTES_PER_ENCODED_BYTE + ids * HEAP_BYTES_PER_ID;
}

/** Events cross into the store as plain JSON; a round trip makes what we evolve equal to what we store. */
function toJsonObject(data: unknown, type: string): JsonObject {
  const json: unknown = JSON.parse(JSON.stringify(data ?? {}));
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new TypeError(`event ${type}: data must serialize to a JSON object`);
  }
  return json as JsonObject;
}
