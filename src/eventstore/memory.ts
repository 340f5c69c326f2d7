import { decideAppend, type StoredEventRef } from './appendRules.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type EventToAppend,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  StreamNotFoundError,
  type SubscribeOptions,
  type Subscription,
  type SubscriptionMessage,
} from './port.js';
import { assertValidMaxCount, assertValidStreamName, matchesFilter, validateAppend } from './validation.js';

export interface MemoryEventStoreOptions {
  /** Injected clock for recordedAt; defaults to the wall clock. */
  now?: () => Date;
  /** Test hook: awaited inside append after the decision and before the events become visible. */
  beforeCommit?: (streamName: string, events: EventToAppend[]) => Promise<void>;
}

/**
 * In-memory event store with the same semantics as the durable adapters, for fast property tests.
 * Positions start at 0 and are dense; appends are serialized so positions follow commit order.
 */
export class MemoryEventStore implements EventStore {
  readonly kind = 'memory' as const;
  private readonly log: RecordedEvent[] = [];
  private readonly streams = new Map<string, RecordedEvent[]>();
  private readonly byId = new Map<string, RecordedEvent>();
  private waiters: Array<() => void> = [];
  private appendQueue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: MemoryEventStoreOptions = {}) {}

  append(streamName: string, events: EventToAppend[], options: AppendOptions): Promise<AppendResult> {
    try {
      validateAppend(streamName, events, options);
    } catch (error) {
      return Promise.reject(error);
    }
    // Serialize appends: with a beforeCommit hook an append may wait, and a later one must not overtake it.
    const run = this.appendQueue.then(() => this.appendNow(streamName, events, options));
    this.appendQueue = run.catch(() => undefined);
    return run;
  }

  private async appendNow(
    streamName: string,
    events: EventToAppend[],
    options: AppendOptions,
  ): Promise<AppendResult> {
    const stream = this.streams.get(streamName) ?? [];
    const current = stream.length === 0 ? 'no_stream' : BigInt(stream.length - 1);
    const existing = new Map<string, StoredEventRef>();
    for (const e of events) {
      const found = this.byId.get(e.id);
      if (found) existing.set(e.id, found);
    }
    const decision = decideAppend(streamName, events, options.expectedRevision, current, existing);
    if (decision.kind === 'replay') return decision.result;
    await this.options.beforeCommit?.(streamName, events);
    const recordedAt = this.options.now?.() ?? new Date();
    const recorded = events.map(
      (e, i): RecordedEvent => ({
        id: e.id,
        type: e.type,
        streamName,
        revision: decision.firstRevision + BigInt(i),
        position: BigInt(this.log.length + i),
        data: structuredClone(e.data),
        metadata: structuredClone(e.metadata),
        recordedAt,
      }),
    );
    for (const r of recorded) {
      this.log.push(r);
      stream.push(r);
      this.byId.set(r.id, r);
    }
    this.streams.set(streamName, stream);
    this.wake();
    const last = recorded[recorded.length - 1]!;
    return { nextExpectedRevision: last.revision, position: last.position };
  }

  async readStream(streamName: string, options: ReadStreamOptions): Promise<RecordedEvent[]> {
    assertValidStreamName(streamName);
    assertValidMaxCount(options.maxCount);
    const stream = this.streams.get(streamName);
    if (!stream || stream.length === 0) throw new StreamNotFoundError(streamName);
    if (options.direction === 'backwards') {
      const start = options.fromRevision === undefined ? stream.length - 1 : Number(options.fromRevision);
      const out: RecordedEvent[] = [];
      for (let i = Math.min(start, stream.length - 1); i >= 0 && out.length < options.maxCount; i--) {
        out.push(stream[i]!);
      }
      return out.map(copy);
    }
    const from = Number(options.fromRevision ?? 0n);
    return stream.slice(from, from + options.maxCount).map(copy);
  }

  async findEvent(streamName: string, eventId: string): Promise<RecordedEvent | undefined> {
    assertValidStreamName(streamName);
    const found = this.byId.get(eventId);
    return found && found.streamName === streamName ? copy(found) : undefined;
  }

  async readAll(options: ReadAllOptions): Promise<RecordedEvent[]> {
    assertValidMaxCount(options.maxCount);
    const out: RecordedEvent[] = [];
    if (options.direction === 'backwards') {
      const start = options.before === undefined ? this.log.length - 1 : Number(options.before) - 1;
      for (let i = Math.min(start, this.log.length - 1); i >= 0 && out.length < options.maxCount; i--) {
        const e = this.log[i]!;
        if (matchesFilter(e, options.filter)) out.push(e);
      }
      return out.map(copy);
    }
    const from = options.after === undefined ? 0 : Number(options.after) + 1;
    for (let i = from; i < this.log.length && out.length < options.maxCount; i++) {
      const e = this.log[i]!;
      if (matchesFilter(e, options.filter)) out.push(e);
    }
    return out.map(copy);
  }

  subscribe(options: SubscribeOptions): Subscription {
    let next = options.after === undefined ? 0 : Number(options.after) + 1;
    let stopped = false;
    let caughtUpSent = false;
    let stopWaiting: (() => void) | undefined;
    const store = this;
    async function* iterate(): AsyncGenerator<SubscriptionMessage> {
      while (!stopped && !store.closed) {
        if (next < store.log.length) {
          const e = store.log[next++]!;
          if (matchesFilter(e, options.filter)) yield { kind: 'event', event: copy(e) };
          continue;
        }
        if (!caughtUpSent) {
          caughtUpSent = true;
          yield { kind: 'caughtUp', position: BigInt(store.log.length - 1) };
          continue;
        }
        await new Promise<void>((resolve) => {
          stopWaiting = resolve;
          store.waiters.push(resolve);
        });
      }
    }
    const iterator = iterate();
    return {
      [Symbol.asyncIterator]: () => iterator,
      close: async () => {
        stopped = true;
        stopWaiting?.();
      },
    };
  }

  async headPosition(): Promise<bigint> {
    return BigInt(this.log.length - 1);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

function copy(e: RecordedEvent): RecordedEvent {
  return { ...e, data: structuredClone(e.data), metadata: structuredClone(e.metadata) };
}
