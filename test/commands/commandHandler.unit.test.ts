import { describe, expect, it } from 'vitest';
import { CommandHandler } from '../../src/commands/commandHandler.js';
import type { CommandContext } from '../../src/commands/context.js';
import { ConcurrencyConflictError, IdempotencyKeyReusedError } from '../../src/commands/errors.js';
import { DomainError } from '../../src/domain/errors.js';
import { eventId } from '../../src/domain/ids.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  EventToAppend,
  ReadStreamOptions,
  RecordedEvent,
} from '../../src/eventstore/port.js';
import { type JarCommand, jarDecider, jarHandlerOptions } from './jarDecider.js';

const clock = () => new Date('2026-01-01T00:00:00.000Z');
const ctx = (key: string): CommandContext => ({
  tenantId: 't1',
  actor: { id: 'u1', role: 'student' },
  idempotencyKey: key,
  correlationId: `corr-${key}`,
  causationId: `cause-${key}`,
});
const STREAM = 'jar-t1.j1';
/** The jar command `type` of `amount` under idempotency key `key`, on `stream`. */
const jar = (
  handler: CommandHandler,
  type: JarCommand['type'],
  amount: number,
  key: string,
  stream = STREAM,
) => handler.handle(jarDecider, stream, { type, amount }, ctx(key), { commandType: type });

/** Wraps a real store: before some appends, another "process" writes to the same stream first. */
class InterferingStore implements EventStore {
  readonly kind = 'memory' as const;
  readonly streamReads: Array<bigint | undefined> = [];
  interferences = 0;
  constructor(
    readonly inner: MemoryEventStore,
    private readonly interfere: (attempt: number) => boolean,
  ) {}
  private appends = 0;
  async append(streamName: string, events: EventToAppend[], options: AppendOptions): Promise<AppendResult> {
    if (this.interfere(this.appends++)) {
      this.interferences++;
      const other: EventToAppend = {
        id: eventId('t1', 'Other', `other-${this.interferences}`, 0),
        type: 'Deposited',
        data: { amount: 1 },
        metadata: { ...events[0]!.metadata, idempotencyKey: `other-${this.interferences}` },
      };
      await this.inner.append(streamName, [other], { expectedRevision: 'any' });
    }
    return this.inner.append(streamName, events, options);
  }
  readStream(streamName: string, options: ReadStreamOptions): Promise<RecordedEvent[]> {
    this.streamReads.push(options.fromRevision);
    return this.inner.readStream(streamName, options);
  }
  readAll = (o: Parameters<EventStore['readAll']>[0]) => this.inner.readAll(o);
  findEvent = (s: string, id: string) => this.inner.findEvent(s, id);
  subscribe = (o: Parameters<EventStore['subscribe']>[0]) => this.inner.subscribe(o);
  headPosition = () => this.inner.headPosition();
  ping = () => this.inner.ping();
  close = () => this.inner.close();
}

async function streamEvents(store: EventStore, name = STREAM) {
  return store.readStream(name, { maxCount: 1000 });
}

describe('CommandHandler', () => {
  it('appends decided events with deterministic ids, full metadata and the exact expected revision', async () => {
    const store = new MemoryEventStore();
    const handler = new CommandHandler({ ...jarHandlerOptions, store, clock });
    const first = await jar(handler, 'Deposit', 10, 'k1');
    const second = await jar(handler, 'Withdraw', 4, 'k2');
    expect(first.position).toBe(0n);
    expect(second.position).toBe(1n);
    expect(second.state).toEqual({ balance: 6, events: 2 });
    const events = await streamEvents(store);
    expect(events.map((e) => e.id)).toEqual([
      eventId('t1', 'Deposit', 'k1', 0),
      eventId('t1', 'Withdraw', 'k2', 0),
    ]);
    expect(events[0]!.metadata).toMatchObject({
      tenantId: 't1',
      actor: { id: 'u1', role: 'student' },
      idempotencyKey: 'k1',
      correlationId: 'corr-k1',
      causationId: 'cause-k1',
      occurredAt: '2026-01-01T00:00:00.000Z',
      schemaVersion: 1,
      commandType: 'Deposit',
    });
    expect(typeof (events[0]!.metadata as unknown as { commandHash: string }).commandHash).toBe('string');
  });

  it('replays the same key and payload without deciding again, returning the original position', async () => {
    const store = new MemoryEventStore();
    const handler = new CommandHandler({ ...jarHandlerOptions, store, clock });
    const a = await jar(handler, 'Deposit', 10, 'k1');
    await jar(handler, 'Withdraw', 10, 'k2');
    // Balance is now 0: deciding the withdrawal again would be rejected, a replay is not.
    const again = await jar(handler, 'Withdraw', 10, 'k2');
    expect(again.replayed).toBe(true);
    expect(again.position).toBe(1n);
    expect(again.events.map((e) => e.type)).toEqual(['Withdrawn']);
    // A fresh handler (another process, empty cache) replays too.
    const other = new CommandHandler({ ...jarHandlerOptions, store, clock });
    const b = await jar(other, 'Deposit', 10, 'k1');
    expect(b).toMatchObject({ replayed: true, position: a.position });
    expect(await streamEvents(store)).toHaveLength(2);
  });

  it('rejects the same key with a different payload and appends nothing', async () => {
    const store = new MemoryEventStore();
    const handler = new CommandHandler({ ...jarHandlerOptions, store, clock });
    await jar(handler, 'Deposit', 10, 'k1');
    await expect(jar(handler, 'Deposit', 11, 'k1')).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    // Same key on another stream: the store sees our ids elsewhere and the handler reports key reuse.
    await expect(jar(handler, 'Deposit', 10, 'k1', 'jar-t1.j2')).rejects.toBeInstanceOf(
      IdempotencyKeyReusedError,
    );
    expect(await store.headPosition()).toBe(0n);
  });

  it('appends nothing when the decider rejects', async () => {
    const store = new MemoryEventStore();
    const handler = new CommandHandler({ ...jarHandlerOptions, store, clock });
    await jar(handler, 'Deposit', 3, 'k1');
    const rejected = jar(handler, 'Withdraw', 4, 'k2');
    await expect(rejected).rejects.toBeInstanceOf(DomainError);
    await expect(rejected).rejects.toMatchObject({ code: 'insufficient_funds' });
    expect(await store.headPosition()).toBe(0n);
  });

  it('retries a conflicting append against the new state', async () => {
    const inner = new MemoryEventStore();
    const store = new InterferingStore(inner, (n) => n === 1 || n === 2);
    const handler = new CommandHandler({
      ...jarHandlerOptions,
      store,
      clock,
      backoff: { baseDelayMs: 1, maxDelayMs: 2 },
    });
    await jar(handler, 'Deposit', 5, 'k1');
    const result = await jar(handler, 'Withdraw', 5, 'k2');
    // Two interfering deposits of 1 landed first; the withdrawal was re-decided on the state that has them.
    expect(store.interferences).toBe(2);
    expect(result.state).toEqual({ balance: 2, events: 4 });
    expect(handler.stats().conflicts).toBe(2);
    expect((await streamEvents(inner)).map((e) => e.type)).toEqual([
      'Deposited',
      'Deposited',
      'Deposited',
      'Withdrawn',
    ]);
  });

  it('gives up with ConcurrencyConflictError after the bounded attempts', async () => {
    const inner = new MemoryEventStore();
    const store = new InterferingStore(inner, () => true);
    const handler = new CommandHandler({
      ...jarHandlerOptions,
      store,
      clock,
      maxAttempts: 4,
      backoff: { baseDelayMs: 1, maxDelayMs: 2 },
    });
    const result = jar(handler, 'Deposit', 5, 'k1');
    await expect(result).rejects.toBeInstanceOf(ConcurrencyConflictError);
    await expect(result).rejects.toMatchObject({ code: 'concurrency_conflict', attempts: 4 });
    const events = await streamEvents(inner);
    expect(events.filter((e) => e.metadata.idempotencyKey === 'k1')).toHaveLength(0);
  });

  it('caches aggregates: a hit reads only the events after the cached revision', async () => {
    const inner = new MemoryEventStore();
    const store = new InterferingStore(inner, () => false);
    const handler = new CommandHandler({ ...jarHandlerOptions, store, clock });
    const other = new CommandHandler({ ...jarHandlerOptions, store: inner, clock });
    await jar(handler, 'Deposit', 5, 'k1');
    await jar(other, 'Deposit', 6, 'k2');
    store.streamReads.length = 0;
    const loaded = await handler.load(jarDecider, STREAM);
    expect(loaded).toEqual({ state: { balance: 11, events: 2 }, revision: 1n });
    expect(store.streamReads).toEqual([1n]);
    expect(handler.stats().cacheHits).toBeGreaterThanOrEqual(1);
  });

  it('decides on its cached state without reading the stream; the expected revision catches a stale cache', async () => {
    const inner = new MemoryEventStore();
    const store = new InterferingStore(inner, () => false);
    const handler = new CommandHandler({
      ...jarHandlerOptions,
      store,
      clock,
      backoff: { baseDelayMs: 1, maxDelayMs: 2 },
    });
    const other = new CommandHandler({ ...jarHandlerOptions, store: inner, clock });
    await jar(handler, 'Deposit', 5, 'k1');
    store.streamReads.length = 0;
    await jar(handler, 'Deposit', 1, 'k2');
    expect(store.streamReads).toEqual([]);
    expect(handler.stats().unreadDecisions).toBe(1);
    // Another process withdraws everything; our cache still says 6. Withdrawing 6 on the cached state
    // is decided, but its append conflicts, and the fresh state refuses it: nothing is appended.
    await jar(other, 'Withdraw', 6, 'k3');
    const stale = jar(handler, 'Withdraw', 6, 'k4');
    await expect(stale).rejects.toMatchObject({ code: 'insufficient_funds' });
    expect(handler.stats().conflicts).toBe(1);
    expect((await streamEvents(inner)).map((e) => e.type)).toEqual(['Deposited', 'Deposited', 'Withdrawn']);
  });

  it('re-checks a refusal decided on unread cached state against the stream before answering', async () => {
    const inner = new MemoryEventStore();
    const store = new InterferingStore(inner, () => false);
    const handler = new CommandHandler({ ...jarHandlerOptions, store, clock });
    const other = new CommandHandler({ ...jarHandlerOptions, store: inner, clock });
    await jar(handler, 'Deposit', 1, 'k1');
    // Another process deposits; our cache still says 1, which would refuse a withdrawal of 5.
    await jar(other, 'Deposit', 9, 'k2');
    store.streamReads.length = 0;
    const result = await jar(handler, 'Withdraw', 5, 'k3');
    expect(result.state).toEqual({ balance: 5, events: 3 });
    expect(store.streamReads).toEqual([1n]);
    expect(handler.stats()).toMatchObject({ recheckedDecisions: 1, conflicts: 0 });
    // A refusal that the fresh state confirms is answered after exactly one re-check.
    const refused = jar(handler, 'Withdraw', 50, 'k4');
    await expect(refused).rejects.toMatchObject({ code: 'insufficient_funds' });
    expect(handler.stats().recheckedDecisions).toBe(2);
    expect(await streamEvents(inner)).toHaveLength(3);
  });

  it('a key another process already appended is not appended again when decided on a stale cache', async () => {
    const inner = new MemoryEventStore();
    const handler = new CommandHandler({ ...jarHandlerOptions, store: inner, clock });
    const other = new CommandHandler({ ...jarHandlerOptions, store: inner, clock });
    await jar(handler, 'Deposit', 5, 'k1');
    const first = await jar(other, 'Deposit', 2, 'k2');
    // Same key, same payload: the store recognises the deterministic ids and answers the original append.
    const again = await jar(handler, 'Deposit', 2, 'k2');
    expect(again.position).toBe(first.position);
    expect(again.state).toEqual({ balance: 7, events: 2 });
    // Same key, another payload: still refused as key reuse, nothing appended.
    const stale = new CommandHandler({ ...jarHandlerOptions, store: inner, clock });
    await stale.load(jarDecider, STREAM);
    await jar(other, 'Deposit', 4, 'k3');
    await expect(jar(stale, 'Deposit', 9, 'k3')).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    expect(await streamEvents(inner)).toHaveLength(3);
  });

  it('bounds the cache (LRU)', async () => {
    const store = new MemoryEventStore();
    const handler = new CommandHandler({ ...jarHandlerOptions, store, clock, cacheMaxStreams: 2 });
    for (const j of ['a', 'b', 'c']) {
      await jar(handler, 'Deposit', 1, `k-${j}`, `jar-t1.${j}`);
    }
    expect(handler.stats().cachedStreams).toBe(2);
    const misses = handler.stats().cacheMisses;
    await handler.load(jarDecider, 'jar-t1.c');
    expect(handler.stats().cacheMisses).toBe(misses);
    await handler.load(jarDecider, 'jar-t1.a');
    expect(handler.stats().cacheMisses).toBe(misses + 1);
  });

  it('queues concurrent commands on one stream: duplicates append once, the rest decide in order', async () => {
    const store = new MemoryEventStore();
    const handler = new CommandHandler({ ...jarHandlerOptions, store, clock });
    await jar(handler, 'Deposit', 5, 'seed');
    const results = await Promise.allSettled([
      ...Array.from({ length: 10 }, (_, i) => jar(handler, 'Withdraw', 1, `w${i}`)),
      ...Array.from({ length: 5 }, () => jar(handler, 'Withdraw', 1, 'w0')),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(10);
    expect((await handler.load(jarDecider, STREAM)).state.balance).toBe(0);
    expect(await streamEvents(store)).toHaveLength(6);
  });

  it('two handler instances (two processes) race on one stream without losing or duplicating', async () => {
    const store = new MemoryEventStore();
    const a = new CommandHandler({
      ...jarHandlerOptions,
      store,
      clock,
      maxAttempts: 50,
      backoff: { baseDelayMs: 1, maxDelayMs: 5 },
    });
    const b = new CommandHandler({
      ...jarHandlerOptions,
      store,
      clock,
      maxAttempts: 50,
      backoff: { baseDelayMs: 1, maxDelayMs: 5 },
    });
    await Promise.all(Array.from({ length: 20 }, (_, i) => jar(i % 2 ? a : b, 'Deposit', 1, `d${i}`)));
    expect((await a.load(jarDecider, STREAM)).state.balance).toBe(20);
    expect(await streamEvents(store)).toHaveLength(20);
  });
});
