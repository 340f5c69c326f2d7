import {
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type EventStoreDBClient,
  eventTypeFilter,
  excludeSystemEvents,
  type Filter,
  START,
  streamNameFilter,
} from '@eventstore/db-client';
import { isTransient, mapEsdbError } from './esdbErrors.js';
import { allPosition, isSystemEvent, toRecordedEvent } from './esdbEvents.js';
import {
  type EventFilter,
  EventStoreAccessDeniedError,
  type SubscribeOptions,
  type Subscription,
  type SubscriptionMessage,
} from './port.js';
import { matchesFilter } from './validation.js';

export interface ResubscribePolicy {
  /** Consecutive failed (re)subscriptions before the iterator throws. */
  maxConsecutiveFailures: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export interface EsdbSubscriptionDeps {
  client: EventStoreDBClient;
  /** Position of the last ledger event (-1n when none); the caught-up fallback for servers without caughtUp. */
  headPosition: () => Promise<bigint>;
  policy: ResubscribePolicy;
  /** Called on every drop that will be retried (for logs and metrics). */
  onRetry?: (error: Error, attempt: number, delayMs: number) => void;
  onClose?: () => void;
}

const DEFAULT_MAX_BUFFERED = 1_000;

/**
 * A `$all` catch-up subscription that survives drops. It remembers the position of the last event it
 * delivered and, when the server drops the call (node restart, leader change, network), subscribes
 * again from exactly that position, which EventStoreDB treats as exclusive: nothing is skipped and
 * nothing is delivered twice (a position check guards against a server that would resend it anyway).
 * Failures are retried with jittered exponential backoff; after `maxConsecutiveFailures` in a row without
 * progress the iterator throws the (typed) error. Errors that retrying cannot fix (access denied, an
 * event we cannot read) are thrown at once.
 *
 * Filters run on the server (stream-name prefixes, or else exact event types as a regex, or else "no
 * system events") and again on the client, since EventStoreDB takes one filter per subscription and the
 * port allows both at once.
 *
 * caughtUp: client 6.x emits 'caughtUp' when the server says so (EventStoreDB 23.10+). For older servers
 * the subscription also reads the head position before subscribing and reports caught-up once it has
 * delivered (or the server has checkpointed) up to it. Whichever comes first is reported, once; both mean
 * "every matching event up to `position` has been delivered".
 */
export class EsdbSubscription implements Subscription {
  private readonly queue: SubscriptionMessage[] = [];
  private readonly maxBuffered: number;
  private lastPosition: bigint | undefined;
  private caughtUpSent = false;
  private closed = false;
  private failure: Error | undefined;
  private wakeConsumer: (() => void) | undefined;
  private wakeRunner: (() => void) | undefined;
  private current: AllStreamSubscription | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly deps: EsdbSubscriptionDeps,
    private readonly options: SubscribeOptions,
  ) {
    this.lastPosition = options.after;
    this.maxBuffered = Math.max(1, options.maxBuffered ?? DEFAULT_MAX_BUFFERED);
    this.done = this.run().catch((error: unknown) => {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<SubscriptionMessage> {
    return {
      next: async (): Promise<IteratorResult<SubscriptionMessage>> => {
        for (;;) {
          if (this.closed) return { done: true, value: undefined };
          const message = this.queue.shift();
          if (message) {
            if (this.current?.isPaused() && this.queue.length <= this.maxBuffered / 2) this.current.resume();
            return { done: false, value: message };
          }
          if (this.failure) throw this.failure;
          await new Promise<void>((resolve) => {
            this.wakeConsumer = resolve;
          });
          this.wakeConsumer = undefined;
        }
      },
      return: async (): Promise<IteratorResult<SubscriptionMessage>> => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.onClose?.();
    this.wakeConsumer?.();
    this.wakeRunner?.();
    const current = this.current;
    this.current = undefined;
    if (current) {
      await current.unsubscribe().catch(() => undefined);
      // A paused stream may never emit 'end'; destroying it settles subscribeOnce for sure.
      current.destroy();
    }
    await this.done;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wakeConsumer?.();
  }

  private push(message: SubscriptionMessage): void {
    this.queue.push(message);
    if (this.queue.length >= this.maxBuffered) this.current?.pause();
    this.wakeConsumer?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      const outcome = await this.subscribeOnce();
      if (this.closed) return;
      if (outcome.progressed) failures = 0;
      const error = outcome.error;
      if (error instanceof EventStoreAccessDeniedError || !outcome.retryable) {
        this.fail(error);
        return;
      }
      failures++;
      if (failures > this.deps.policy.maxConsecutiveFailures) {
        this.fail(error);
        return;
      }
      const delayMs = backoffMs(failures, this.deps.policy);
      this.deps.onRetry?.(error, failures, delayMs);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wakeRunner = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeRunner = undefined;
    }
  }

  /** One server subscription, from the last delivered position, until it ends or fails. */
  private async subscribeOnce(): Promise<{ error: Error; retryable: boolean; progressed: boolean }> {
    const context = 'subscribe to $all';
    let head: bigint | undefined;
    if (!this.caughtUpSent) {
      try {
        head = await this.deps.headPosition();
      } catch (error) {
        const mapped = mapEsdbError(error, context);
        return { error: mapped, retryable: isTransient(mapped), progressed: false };
      }
    }
    if (this.closed) return { error: new Error('closed'), retryable: false, progressed: false };
    // -1n is the port's "empty store" head; EventStoreDB positions are unsigned, so it means the start.
    const from = this.lastPosition !== undefined && this.lastPosition >= 0n ? this.lastPosition : undefined;
    let onCheckpoint: (commit: bigint) => void = () => undefined;
    const subscription = this.deps.client.subscribeToAll({
      fromPosition: from === undefined ? START : allPosition(from),
      filter: serverFilter(this.options.filter, (position) => onCheckpoint(position.commit)),
    });
    this.current = subscription;
    let progressed = false;
    let confirmedAt: number | undefined;
    /** Signals (caughtUp, checkpoints) arrive while events before them may still sit in the readable buffer. */
    let caughtUpAfterEvents: number | undefined;
    const reportCaughtUp = () => {
      progressed = true;
      this.caughtUp(head ?? this.lastPosition ?? -1n);
    };
    const caughtUpAfterBuffered = () => {
      const pending = subscription.readableLength;
      if (pending === 0) reportCaughtUp();
      else caughtUpAfterEvents ??= pending;
    };
    // Fallback for servers without caught_up: the server has searched up to the head we read at start.
    onCheckpoint = (commit) => {
      if (head !== undefined && commit >= head && !this.caughtUpSent) caughtUpAfterBuffered();
    };
    return await new Promise((resolve) => {
      let settled = false;
      const settle = (error: Error, retryable: boolean) => {
        if (settled) return;
        settled = true;
        if (this.current === subscription) this.current = undefined;
        void subscription.unsubscribe().catch(() => undefined);
        // A subscription that stayed up a while before dropping was healthy: start counting afresh, so
        // occasional drops (idle timeouts, restarts) never add up to giving up.
        const lived = confirmedAt !== undefined && Date.now() - confirmedAt >= this.deps.policy.maxBackoffMs;
        resolve({ error, retryable, progressed: progressed || lived });
      };
      subscription.on('confirmation', () => {
        confirmedAt = Date.now();
        // Nothing newer than the head existed when we read it: caught up before the first event.
        if (head !== undefined && (head < 0n || (from !== undefined && from >= head))) reportCaughtUp();
      });
      subscription.on('caughtUp', () => {
        if (settled || this.closed) return;
        caughtUpAfterBuffered();
      });
      subscription.on('data', (resolved: AllStreamResolvedEvent) => {
        // A dropped call may still flush buffered events; the next subscription delivers them instead.
        if (settled || this.closed) return;
        try {
          this.onEvent(resolved);
          progressed = true;
          if (head !== undefined && this.lastPosition !== undefined && this.lastPosition >= head)
            reportCaughtUp();
        } catch (error) {
          settle(mapEsdbError(error, context), false);
          return;
        }
        if (caughtUpAfterEvents !== undefined && --caughtUpAfterEvents === 0) {
          caughtUpAfterEvents = undefined;
          reportCaughtUp();
        }
      });
      subscription.on('error', (error: Error) => {
        const mapped = mapEsdbError(error, context);
        settle(mapped, isTransient(mapped) || isRetryableRaw(error));
      });
      subscription.on('end', () => settle(new Error(`${context}: the server ended the subscription`), true));
      subscription.on('close', () => settle(new Error(`${context}: the subscription closed`), true));
    });
  }

  private onEvent(resolved: AllStreamResolvedEvent): void {
    const raw = resolved.event;
    if (!raw) return;
    const position = raw.position?.commit ?? resolved.commitPosition;
    // Never deliver twice: a resubscription starts after lastPosition, this guards the boundary anyway.
    if (position !== undefined && this.lastPosition !== undefined && position <= this.lastPosition) return;
    if (isSystemEvent(raw.streamId, raw.type)) {
      if (position !== undefined) this.lastPosition = position;
      return;
    }
    if (!matchesFilter({ streamName: raw.streamId, type: raw.type }, this.options.filter)) {
      if (position !== undefined) this.lastPosition = position;
      return;
    }
    const event = toRecordedEvent(resolved);
    this.lastPosition = event.position;
    this.push({ kind: 'event', event });
  }

  private caughtUp(position: bigint): void {
    if (this.caughtUpSent || this.closed) return;
    this.caughtUpSent = true;
    const delivered = this.lastPosition ?? -1n;
    this.push({ kind: 'caughtUp', position: delivered > position ? delivered : position });
  }
}

function isRetryableRaw(error: Error): boolean {
  const code = (error as Error & { code?: unknown }).code;
  // CANCELLED by the server, ABORTED, INTERNAL (connection reset mid-stream), UNKNOWN.
  return code === 1 || code === 10 || code === 13 || code === 2;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function serverFilter(
  filter: EventFilter | undefined,
  checkpointReached: (position: { commit: bigint; prepare: bigint }) => void,
): Filter {
  const common = {
    checkpointReached: (_s: unknown, position: { commit: bigint; prepare: bigint }) =>
      checkpointReached(position),
  };
  if (filter?.streamNamePrefixes && filter.streamNamePrefixes.length > 0) {
    return streamNameFilter({ prefixes: filter.streamNamePrefixes, ...common });
  }
  if (filter?.eventTypes && filter.eventTypes.length > 0) {
    return eventTypeFilter({ regex: `^(?:${filter.eventTypes.map(escapeRegex).join('|')})$`, ...common });
  }
  return excludeSystemEvents(common);
}

/** Full-jitter exponential backoff: uniform in [base/2, base], base doubling up to the cap. */
export function backoffMs(attempt: number, policy: ResubscribePolicy): number {
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.min(attempt - 1, 20));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
