import { randomUUID } from 'node:crypto';
import {
  type AllStreamResolvedEvent,
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  jsonEvent,
  type ResolvedEvent,
  START,
  type StreamingRead,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import { mapEsdbError } from './esdbErrors.js';
import { allPosition, isSystemEvent, toRecordedEvent } from './esdbEvents.js';
import { EsdbSubscription, type ResubscribePolicy } from './esdbSubscription.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  EventStoreDeadlineError,
  type EventToAppend,
  type ExpectedRevision,
  IdempotencyViolationError,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  StreamNotFoundError,
  type SubscribeOptions,
  type Subscription,
  WrongExpectedRevisionError,
} from './port.js';
import {
  assertValidMaxCount,
  assertValidStreamName,
  matchesFilter,
  sameContent,
  validateAppend,
} from './validation.js';

export interface EsdbEventStoreOptions {
  /** e.g. `esdb://localhost:2113?tls=false` (EVENTSTORE_URL). */
  connectionString: string;
  /** Deadline of every call: each append, each read page, ping. */
  callTimeoutMs?: number;
  /** $all events fetched per page when readAll/headPosition filter on the client. */
  readPageSize?: number;
  /** Bound on the events one readAll/headPosition call may scan before giving up. */
  maxScannedEvents?: number;
  resubscribe?: Partial<ResubscribePolicy>;
  onSubscriptionRetry?: (error: Error, attempt: number, delayMs: number) => void;
}

const DEFAULTS = {
  callTimeoutMs: 10_000,
  readPageSize: 512,
  maxScannedEvents: 1_000_000,
  resubscribe: { maxConsecutiveFailures: 10, initialBackoffMs: 100, maxBackoffMs: 5_000 },
};

/**
 * Stream category of the id claims (see `claimIds`). The claim events have a '$'-prefixed type, so the
 * server-side "no system events" filter and our client-side checks keep them out of reads.
 */
const CLAIM_STREAM_PREFIX = 'ledger_event_id-';
const CLAIM_EVENT_TYPE = '$ledger-event-id-claimed';
/** First page of a client-side filtered $all read; pages double up to readPageSize. */
const FIRST_PAGE_SIZE = 16;

/**
 * The EventStore port on EventStoreDB through @eventstore/db-client 6.x.
 *
 * Semantics the port asks for beyond what EventStoreDB does by itself:
 *  - Idempotency. EventStoreDB recognises a re-append by event id only within the same stream (and with
 *    `any` only from the first id, within a bounded cache). The port promises more: an event id belongs to
 *    one stream forever, and a replay must carry the same content. So before appending, every event id is
 *    claimed in its own stream `ledger_event_id-{id}` (expected no_stream) naming the target stream (the
 *    first id of each append stands for the others, see claimIds). A claim
 *    held for another stream -> IdempotencyViolationError, nothing appended. A claim already held for this
 *    stream means the append may be a replay: after EventStoreDB accepts it (as new or as idempotent) the
 *    events are read back and compared, so a replay with changed content is refused and the original
 *    positions are returned. Claims may outlive a failed append (e.g. a lost race); that is harmless: they
 *    only bind the id to the stream the command layer always derives from the same command.
 *  - Positions: see esdbEvents.ts (commit position, bigint end to end).
 *  - Deadlines: appends pass `deadline`; reads (which the client starts with no deadline) are cancelled by
 *    our own timer and fail with EventStoreDeadlineError.
 */
export class EsdbEventStore implements EventStore {
  readonly kind = 'esdb' as const;
  private readonly client: EventStoreDBClient;
  private readonly callTimeoutMs: number;
  private readonly readPageSize: number;
  private readonly maxScannedEvents: number;
  private readonly policy: ResubscribePolicy;
  private readonly subscriptions = new Set<EsdbSubscription>();

  constructor(private readonly options: EsdbEventStoreOptions) {
    this.client = EventStoreDBClient.connectionString(options.connectionString);
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULTS.callTimeoutMs;
    this.readPageSize = options.readPageSize ?? DEFAULTS.readPageSize;
    this.maxScannedEvents = options.maxScannedEvents ?? DEFAULTS.maxScannedEvents;
    this.policy = { ...DEFAULTS.resubscribe, ...options.resubscribe };
  }

  async append(streamName: string, events: EventToAppend[], options: AppendOptions): Promise<AppendResult> {
    validateAppend(streamName, events, options);
    const context = `append to ${streamName}`;
    const mayBeReplay = await this.claimIds(streamName, events);
    let result: { nextExpectedRevision: bigint; position?: { commit: bigint } | undefined };
    try {
      result = await this.client.appendToStream(
        streamName,
        events.map((e) => jsonEvent({ id: e.id, type: e.type, data: e.data, metadata: e.metadata })),
        { expectedRevision: options.expectedRevision, deadline: this.callTimeoutMs },
      );
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        throw this.wrongExpectedVersion(streamName, options.expectedRevision, error);
      }
      throw mapEsdbError(error, context, streamName);
    }
    if (mayBeReplay) return this.confirmReplay(streamName, events, result.nextExpectedRevision);
    if (!result.position) {
      throw new Error(`${context}: EventStoreDB accepted the append but reported no position`);
    }
    return { nextExpectedRevision: result.nextExpectedRevision, position: result.position.commit };
  }

  /**
   * EventStoreDB reports a corrupted idempotency (some ids of the append already in the stream, others
   * not) as a wrong expected version; with `any` (and `stream_exists` on an existing stream, which it
   * treats as `any`) that is the only way to get one.
   */
  private wrongExpectedVersion(
    streamName: string,
    expected: ExpectedRevision,
    error: WrongExpectedVersionError,
  ): Error {
    const actual = error.actualVersion;
    const current: bigint | 'no_stream' = typeof actual === 'bigint' ? actual : 'no_stream';
    if (expected === 'any' || (expected === 'stream_exists' && current !== 'no_stream')) {
      return new IdempotencyViolationError(
        `append to ${streamName}: some event ids were appended before and others not; a retry must resend exactly the same events`,
      );
    }
    return new WrongExpectedRevisionError(streamName, expected, current);
  }

  /**
   * Claims the append's first event id for this stream; returns whether it was already held for it (the
   * append may then be a replay). One claim per append is enough for this project's ids: they are
   * UUIDv5(tenant, command type, idempotency key, index) (domain/ids.ts), so the ids of one append share
   * their command key and the first one decides whether the others were ever used. Arbitrary ids reused
   * at a later index in another stream are not detected (the contract does not need it; see README).
   */
  private async claimIds(streamName: string, events: EventToAppend[]): Promise<boolean> {
    return (await this.claimId(streamName, events[0]!.id)) === 'held';
  }

  private async claimId(streamName: string, eventId: string): Promise<'claimed' | 'held'> {
    const claimStream = `${CLAIM_STREAM_PREFIX}${eventId}`;
    const context = `append to ${streamName}: claim event id ${eventId}`;
    try {
      await this.client.appendToStream(
        claimStream,
        jsonEvent({ id: randomUUID(), type: CLAIM_EVENT_TYPE, data: { streamName } }),
        { expectedRevision: 'no_stream', deadline: this.callTimeoutMs },
      );
      return 'claimed';
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw mapEsdbError(error, context);
    }
    const [claim] = await this.readPage(
      () => this.client.readStream(claimStream, { fromRevision: START, maxCount: 1 }),
      context,
      claimStream,
    );
    const owner = claim?.event?.data as { streamName?: unknown } | undefined;
    if (owner?.streamName !== streamName) {
      throw new IdempotencyViolationError(
        `append to ${streamName}: event id ${eventId} was already appended to stream ${String(owner?.streamName)}`,
      );
    }
    return 'held';
  }

  /** Reads back what EventStoreDB holds at the append's revisions and compares it with what was sent. */
  private async confirmReplay(
    streamName: string,
    events: EventToAppend[],
    lastRevision: bigint,
  ): Promise<AppendResult> {
    const firstRevision = lastRevision - BigInt(events.length) + 1n;
    const stored = await this.readStream(streamName, {
      fromRevision: firstRevision,
      maxCount: events.length,
    });
    const matches =
      stored.length === events.length &&
      stored.every((s, i) => s.id === events[i]!.id && sameContent(s, events[i]!));
    if (!matches) {
      throw new IdempotencyViolationError(
        `append to ${streamName}: event ids were appended before with different content or at other revisions`,
      );
    }
    return { nextExpectedRevision: lastRevision, position: stored[stored.length - 1]!.position };
  }

  async readStream(streamName: string, options: ReadStreamOptions): Promise<RecordedEvent[]> {
    assertValidStreamName(streamName);
    assertValidMaxCount(options.maxCount);
    const backwards = options.direction === 'backwards';
    const resolved = await this.readPage(
      () =>
        this.client.readStream(streamName, {
          direction: backwards ? BACKWARDS : FORWARDS,
          fromRevision: options.fromRevision ?? (backwards ? END : START),
          maxCount: options.maxCount,
        }),
      `read stream ${streamName}`,
      streamName,
    );
    return resolved.map(toRecordedEvent);
  }

  /**
   * Found through the id's claim (see claimIds): no claim, or a claim for another stream, means the id
   * was never appended here. A claim for this stream may outlive a failed append, so the stream is then
   * read backwards until the event turns up or the stream ends: this walks the stream's history, and the
   * command layer asks only on its rare path (a command older than the ids it keeps in memory). Only
   * ids that start an append are claimed, and those are the ones the command layer asks about; another
   * id of an append is not found.
   */
  async findEvent(streamName: string, eventId: string): Promise<RecordedEvent | undefined> {
    assertValidStreamName(streamName);
    const claimStream = `${CLAIM_STREAM_PREFIX}${eventId}`;
    let claim: ResolvedEvent | undefined;
    try {
      [claim] = await this.readPage(
        () => this.client.readStream(claimStream, { fromRevision: START, maxCount: 1 }),
        `find event ${eventId}: read its claim`,
        claimStream,
      );
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      throw error;
    }
    const owner = claim?.event?.data as { streamName?: unknown } | undefined;
    if (owner?.streamName !== streamName) return undefined;
    let fromRevision: bigint | undefined;
    for (;;) {
      let page: RecordedEvent[];
      try {
        page = await this.readStream(streamName, {
          direction: 'backwards',
          maxCount: this.readPageSize,
          ...(fromRevision === undefined ? {} : { fromRevision }),
        });
      } catch (error) {
        if (error instanceof StreamNotFoundError) return undefined;
        throw error;
      }
      const found = page.find((e) => e.id === eventId);
      if (found) return found;
      const oldest = page[page.length - 1];
      if (!oldest || oldest.revision === 0n || page.length < this.readPageSize) return undefined;
      fromRevision = oldest.revision - 1n;
    }
  }

  /**
   * Client 6.x reads $all without server-side filters, so readAll pages through $all and filters here
   * (system events and id claims are skipped too). Forwards reads from a position are inclusive in
   * EventStoreDB and the port's `after` is exclusive, so the event at `after` is dropped; backwards reads
   * from a position are already exclusive.
   */
  async readAll(options: ReadAllOptions): Promise<RecordedEvent[]> {
    assertValidMaxCount(options.maxCount);
    const backwards = options.direction === 'backwards';
    const out: RecordedEvent[] = [];
    // EventStoreDB positions are unsigned: nothing lies before 0, and "after -1" is the start.
    if (backwards && options.before !== undefined && options.before <= 0n) return out;
    let from = backwards ? options.before : options.after;
    if (from !== undefined && from < 0n) from = undefined;
    let scanned = 0;
    // Most reads are satisfied by the first events (a head lookup, a page right after a checkpoint), so
    // start small and double: reading and decoding events we then drop is the cost here.
    let pageSize = Math.min(this.readPageSize, Math.max(FIRST_PAGE_SIZE, options.maxCount + 1));
    for (;;) {
      const fromPosition = from === undefined ? (backwards ? END : START) : allPosition(from);
      const maxCount = pageSize;
      const page = await this.readPage(
        () =>
          this.client.readAll({
            direction: backwards ? BACKWARDS : FORWARDS,
            fromPosition,
            maxCount,
          }),
        'read $all',
      );
      for (const resolved of page) {
        const event = resolved.event;
        if (!event) continue;
        const position = event.position?.commit ?? resolved.commitPosition;
        if (!backwards && from !== undefined && position !== undefined && position <= from) continue;
        if (isSystemEvent(event.streamId, event.type)) continue;
        if (!matchesFilter({ streamName: event.streamId, type: event.type }, options.filter)) continue;
        out.push(toRecordedEvent(resolved));
        if (out.length >= options.maxCount) return out;
      }
      scanned += page.length;
      if (page.length < pageSize) return out;
      pageSize = Math.min(this.readPageSize, pageSize * 2);
      const last = page[page.length - 1]!;
      from = last.event?.position?.commit ?? last.commitPosition;
      if (from === undefined) throw new Error('read $all: EventStoreDB returned an event without a position');
      if (scanned >= this.maxScannedEvents) {
        throw new EventStoreDeadlineError(
          `read $all: scanned ${scanned} events without filling ${options.maxCount}; narrow the read with after/before`,
        );
      }
    }
  }

  subscribe(options: SubscribeOptions): Subscription {
    const subscription = new EsdbSubscription(
      {
        client: this.client,
        headPosition: () => this.headPosition(),
        policy: this.policy,
        onRetry: this.options.onSubscriptionRetry,
        onClose: () => this.subscriptions.delete(subscription),
      },
      options,
    );
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** The position of the last ledger event in $all (system events and id claims do not count). */
  async headPosition(): Promise<bigint> {
    const [last] = await this.readAll({ direction: 'backwards', maxCount: 1 });
    return last ? last.position : -1n;
  }

  async ping(): Promise<void> {
    await this.readPage(
      () => this.client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }),
      'ping EventStoreDB',
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    await this.client.dispose();
  }

  /** Runs one bounded read to completion under the call deadline. */
  private async readPage<E extends ResolvedEvent | AllStreamResolvedEvent>(
    start: () => StreamingRead<E>,
    context: string,
    streamName?: string,
  ): Promise<E[]> {
    const read = start();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void read.cancel().catch(() => undefined);
      read.destroy(
        new EventStoreDeadlineError(
          `${context}: EventStoreDB did not answer within ${this.callTimeoutMs} ms`,
        ),
      );
    }, this.callTimeoutMs);
    const out: E[] = [];
    try {
      for await (const event of read) out.push(event);
      return out;
    } catch (error) {
      if (timedOut) {
        throw new EventStoreDeadlineError(
          `${context}: EventStoreDB did not answer within ${this.callTimeoutMs} ms`,
          {
            cause: error,
          },
        );
      }
      const mapped = mapEsdbError(error, context, streamName);
      if (mapped instanceof StreamNotFoundError && streamName === undefined) throw error;
      throw mapped;
    } finally {
      clearTimeout(timer);
    }
  }
}
