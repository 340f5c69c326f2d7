import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EsdbEventStore } from '../../src/eventstore/esdb.js';
import {
  EventStoreAccessDeniedError,
  EventStoreDeadlineError,
  EventStoreUnavailableError,
  InvalidAppendError,
  type RecordedEvent,
  type Subscription,
  type SubscriptionMessage,
} from '../../src/eventstore/port.js';
import { EsdbEmulator } from '../esdb-emulator/server.js';
import { collect, makeEvent, namespace } from './contract.js';

/**
 * The esdb adapter's retry and resubscribe paths, driven through the emulator's fault hooks: dropped
 * subscriptions, a server that refuses connections for a while, slow appends, access denied.
 */
let emulator: EsdbEmulator;
let store: EsdbEventStore;

beforeAll(async () => {
  emulator = await EsdbEmulator.start();
  store = new EsdbEventStore({
    connectionString: emulator.connectionString,
    callTimeoutMs: 2_000,
    resubscribe: { maxConsecutiveFailures: 40, initialBackoffMs: 10, maxBackoffMs: 100 },
  });
});

afterEach(async () => {
  emulator.delayAppends(0);
  emulator.denyAccess(false);
  emulator.pretendNotLeader(false);
  await emulator.goOnline();
  await emulator.settled();
});

afterAll(async () => {
  await store?.close();
  await emulator?.stop();
});

async function seed(stream: string, type: string, count: number, from = 0): Promise<void> {
  const events = Array.from({ length: count }, (_, i) => makeEvent(type, { i: from + i }));
  await store.append(stream, events, { expectedRevision: 'any' });
}

function expectExactlyOnceInOrder(events: RecordedEvent[], count: number): void {
  expect(events.map((e) => e.data.i)).toEqual(Array.from({ length: count }, (_, i) => i));
  expect(new Set(events.map((e) => e.id)).size).toBe(count);
  expect(events.every((e, i) => i === 0 || e.position > events[i - 1]!.position)).toBe(true);
}

/** Next message from a subscription, bounded. */
async function next(iterator: AsyncIterator<SubscriptionMessage>): Promise<SubscriptionMessage> {
  const result = await Promise.race([
    iterator.next(),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no message within 10 s')), 10_000)),
  ]);
  if (result.done) throw new Error('subscription ended');
  return result.value;
}

describe('esdb subscription survives drops', () => {
  for (const [name, code] of [
    ['UNAVAILABLE', grpc.status.UNAVAILABLE],
    ['CANCELLED', grpc.status.CANCELLED],
    ['a normal end of the call', grpc.status.OK],
  ] as const) {
    it(`dropped with ${name} mid catch-up and live: resubscribes from its last position, nothing skipped or repeated`, async () => {
      const ns = namespace();
      await seed(ns.stream('a'), ns.type('Seq'), 60);
      const subscription = store.subscribe({ filter: { streamNamePrefixes: [ns.prefix] }, maxBuffered: 4 });
      const iterator = subscription[Symbol.asyncIterator]();
      const events: RecordedEvent[] = [];
      let caughtUp = 0;
      const take = async (count: number) => {
        while (events.length < count) {
          const m = await next(iterator);
          if (m.kind === 'event') events.push(m.event);
          else caughtUp++;
        }
      };
      await take(25);
      // At least ours; a subscription closed by an earlier test may still be winding down on the server.
      expect(emulator.dropSubscriptions(code)).toBeGreaterThanOrEqual(1);
      await take(60);
      await seed(ns.stream('b'), ns.type('Seq'), 20, 60);
      await take(70);
      expect(emulator.dropSubscriptions(code)).toBeGreaterThanOrEqual(1);
      await seed(ns.stream('a'), ns.type('Seq'), 10, 80);
      await take(90);
      expectExactlyOnceInOrder(events, 90);
      expect(caughtUp).toBeLessThanOrEqual(1);
      await subscription.close();
      expect((await iterator.next()).done).toBe(true);
    });
  }

  it('keeps retrying while the server refuses connections and goes on without gaps when it returns', async () => {
    const ns = namespace();
    await seed(ns.stream('a'), ns.type('Seq'), 10);
    const subscription = store.subscribe({ filter: { eventTypes: [ns.type('Seq')] } });
    const first = await collect(subscription, (c) => c.events.length === 10, { close: false });
    await emulator.goOffline();
    await expect(seed(ns.stream('a'), ns.type('Seq'), 5, 10)).rejects.toBeInstanceOf(
      EventStoreUnavailableError,
    );
    await emulator.goOnline();
    await seed(ns.stream('a'), ns.type('Seq'), 5, 10);
    const rest = await collect(subscription, (c) => c.events.length === 5);
    expectExactlyOnceInOrder([...first.events, ...rest.events], 15);
  });

  it('throws a typed error after a bounded number of consecutive failures', async () => {
    const impatient = new EsdbEventStore({
      connectionString: emulator.connectionString,
      callTimeoutMs: 1_000,
      resubscribe: { maxConsecutiveFailures: 3, initialBackoffMs: 5, maxBackoffMs: 20 },
    });
    try {
      const subscription: Subscription = impatient.subscribe({ after: await impatient.headPosition() });
      const iterator = subscription[Symbol.asyncIterator]();
      expect((await next(iterator)).kind).toBe('caughtUp');
      await emulator.goOffline();
      const error = await iterator.next().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EventStoreUnavailableError);
      expect((error as Error).message).toMatch(/subscribe to \$all: EventStoreDB is unavailable/);
    } finally {
      await emulator.goOnline();
      await impatient.close();
    }
  });
});

describe('esdb calls map faults to typed errors', () => {
  it('a server refusing connections: append, read and ping fail with EventStoreUnavailableError, then recover', async () => {
    const ns = namespace();
    await emulator.goOffline();
    const event = makeEvent(ns.type('Offline'));
    await expect(
      store.append(ns.stream('x'), [event], { expectedRevision: 'no_stream' }),
    ).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await expect(store.readStream(ns.stream('x'), { maxCount: 1 })).rejects.toBeInstanceOf(
      EventStoreUnavailableError,
    );
    await expect(store.readAll({ maxCount: 1 })).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await expect(store.ping()).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await emulator.goOnline();
    await store.ping();
    const result = await store.append(ns.stream('x'), [event], { expectedRevision: 'no_stream' });
    expect(result.nextExpectedRevision).toBe(0n);
  });

  it('a slow append hits the deadline (EventStoreDeadlineError); the retry with the same ids is idempotent', async () => {
    const ns = namespace();
    const events = [makeEvent(ns.type('Slow'), { n: 1 }), makeEvent(ns.type('Slow'), { n: 2 })];
    const fast = new EsdbEventStore({ connectionString: emulator.connectionString, callTimeoutMs: 150 });
    try {
      emulator.delayAppends(600);
      const error = await fast.append(ns.stream('s'), events, { expectedRevision: 'no_stream' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EventStoreDeadlineError);
      // The server still decides the append it received, as a slow node would.
      await emulator.settled();
      emulator.delayAppends(0);
      const retried = await store.append(ns.stream('s'), events, { expectedRevision: 'no_stream' });
      const again = await store.append(ns.stream('s'), events, { expectedRevision: 'no_stream' });
      expect(again).toEqual(retried);
      expect((await store.readStream(ns.stream('s'), { maxCount: 10 })).map((e) => e.data.n)).toEqual([1, 2]);
    } finally {
      await fast.close();
    }
  });

  it('access denied: EventStoreAccessDeniedError from calls, and a subscription fails at once', async () => {
    const ns = namespace();
    emulator.denyAccess(true);
    await expect(
      store.append(ns.stream('d'), [makeEvent(ns.type('Denied'))], { expectedRevision: 'any' }),
    ).rejects.toBeInstanceOf(EventStoreAccessDeniedError);
    await expect(store.readStream(ns.stream('d'), { maxCount: 1 })).rejects.toBeInstanceOf(
      EventStoreAccessDeniedError,
    );
    const subscription = store.subscribe({ filter: { streamNamePrefixes: [ns.prefix] } });
    await expect(subscription[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(
      EventStoreAccessDeniedError,
    );
    await subscription.close();
  });
});

describe("esdb append over the server's maximum append size", () => {
  let small: EsdbEmulator;
  let smallStore: EsdbEventStore;
  beforeAll(async () => {
    small = await EsdbEmulator.start({ maxAppendSizeBytes: 64 * 1024 });
    smallStore = new EsdbEventStore({ connectionString: small.connectionString, callTimeoutMs: 2_000 });
  });
  afterAll(async () => {
    await smallStore?.close();
    await small?.stop();
  });

  it('is an InvalidAppendError naming the limit, and nothing is appended', async () => {
    const ns = namespace();
    const error = await smallStore
      .append(ns.stream('big'), [makeEvent(ns.type('Big'), { blob: 'z'.repeat(100 * 1024) })], {
        expectedRevision: 'any',
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(InvalidAppendError);
    expect((error as Error).message).toMatch(/maximum append size of 65536 bytes/);
    expect(small.log.stream(ns.stream('big'))).toBeUndefined();
  });
});

describe('esdb against a server that never sends caught_up (before 23.10)', () => {
  let old: EsdbEmulator;
  let oldStore: EsdbEventStore;
  beforeAll(async () => {
    old = await EsdbEmulator.start({ caughtUpMessages: false });
    oldStore = new EsdbEventStore({ connectionString: old.connectionString, callTimeoutMs: 2_000 });
  });
  afterAll(async () => {
    await oldStore?.close();
    await old?.stop();
  });

  it('reports caughtUp once everything up to the head read at start was delivered', async () => {
    const ns = namespace();
    const empty = await collect(oldStore.subscribe({}), (c) => c.caughtUp.length === 1);
    expect(empty).toEqual({ events: [], caughtUp: [-1n] });
    await oldStore.append(
      ns.stream('a'),
      [makeEvent(ns.type('A'), { i: 0 }), makeEvent(ns.type('A'), { i: 1 })],
      {
        expectedRevision: 'no_stream',
      },
    );
    await oldStore.append(ns.stream('b'), [makeEvent(ns.type('B'), { i: 2 })], {
      expectedRevision: 'no_stream',
    });
    const head = await oldStore.headPosition();
    const all = await collect(oldStore.subscribe({}), (c) => c.caughtUp.length === 1);
    expect(all.events.map((e) => e.data.i)).toEqual([0, 1, 2]);
    expect(all.caughtUp).toEqual([head]);
    // Filtered: the last matching event is older than the head; the server's checkpoint at the end says so.
    const filtered = await collect(
      oldStore.subscribe({ filter: { streamNamePrefixes: [ns.stream('a')] } }),
      (c) => c.caughtUp.length === 1,
    );
    expect(filtered.events.map((e) => e.data.i)).toEqual([0, 1]);
    expect(filtered.caughtUp).toEqual([head]);
  });
});

describe('esdb on a node that is not the leader', () => {
  it('maps not-leader to EventStoreUnavailableError and reaches the leader on the next call', async () => {
    const ns = namespace();
    emulator.pretendNotLeader(true);
    const error = await store
      .append(ns.stream('l'), [makeEvent(ns.type('Led'))], { expectedRevision: 'any' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    emulator.pretendNotLeader(false);
    expect(error).toBeInstanceOf(EventStoreUnavailableError);
    expect((error as Error).message).toMatch(/not the leader/);
    const result = await store.append(ns.stream('l'), [makeEvent(ns.type('Led'))], {
      expectedRevision: 'any',
    });
    expect(result.nextExpectedRevision).toBe(0n);
  });
});

describe('esdb on an empty store', () => {
  it('treats after: -1n (the empty head) as the start and reads nothing before position 0', async () => {
    const fresh = await EsdbEmulator.start();
    const freshStore = new EsdbEventStore({ connectionString: fresh.connectionString, callTimeoutMs: 2_000 });
    try {
      expect(await freshStore.headPosition()).toBe(-1n);
      const subscription = freshStore.subscribe({ after: -1n });
      const iterator = subscription[Symbol.asyncIterator]();
      expect(await next(iterator)).toEqual({ kind: 'caughtUp', position: -1n });
      const ns = namespace();
      await freshStore.append(ns.stream('e'), [makeEvent(ns.type('First'), { i: 0 })], {
        expectedRevision: 'no_stream',
      });
      const first = await next(iterator);
      expect(first.kind === 'event' && first.event.data).toEqual({ i: 0 });
      await subscription.close();
      expect((await freshStore.readAll({ after: -1n, maxCount: 10 })).map((e) => e.data.i)).toEqual([0]);
      expect(await freshStore.readAll({ direction: 'backwards', before: 0n, maxCount: 10 })).toEqual([]);
    } finally {
      await freshStore.close();
      await fresh.stop();
    }
  });
});
