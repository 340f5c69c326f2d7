import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppendResult,
  type EventFilter,
  type EventStore,
  type EventToAppend,
  type ExpectedRevision,
  IdempotencyViolationError,
  InvalidAppendError,
  type JsonObject,
  type RecordedEvent,
  StreamNotFoundError,
  type Subscription,
  WrongExpectedRevisionError,
} from '../../src/eventstore/port.js';

/**
 * One body of tests for every EventStore adapter (docs/architecture.md, "The event store"). Each adapter's test file calls
 * describeEventStoreContract with a factory; the suite opens one store for all its tests and keeps the
 * tests apart with a fresh stream-name namespace and fresh event types per test, so it also runs against
 * stores that are not empty (a shared EventStoreDB server, system events in $all).
 *
 * Nothing here assumes positions are dense or start at 0: only that they strictly increase in commit
 * order, which is all the port promises.
 */
export interface ContractHarness {
  store: EventStore;
  dispose(): Promise<void>;
}

/** Bound on any wait for subscription messages; generous for slow CI, never reached when green. */
const WAIT_TIMEOUT_MS = 20_000;

const METADATA = {
  tenantId: 'contract',
  correlationId: 'corr-1',
  causationId: 'cause-1',
  actor: { id: 'tester', role: 'system' },
  idempotencyKey: 'idem-1',
  occurredAt: '2026-01-01T00:00:00.000Z',
  schemaVersion: 1,
};

export function makeEvent(type: string, data: JsonObject = {}, id: string = randomUUID()): EventToAppend {
  return { id, type, data, metadata: { ...METADATA, idempotencyKey: id } };
}

/** A unique namespace per test: stream names `{category}-{ns}.{entity}` and event types `{Ns}{Name}`. */
export function namespace(): {
  prefix: string;
  stream: (entity: string) => string;
  type: (name: string) => string;
} {
  const ns = `c${randomBytes(5).toString('hex')}`;
  return {
    prefix: `wallet-${ns}.`,
    stream: (entity) => `wallet-${ns}.${entity}`,
    type: (name) => `${ns.toUpperCase()}${name}`,
  };
}

export interface Collected {
  events: RecordedEvent[];
  caughtUp: bigint[];
}

/**
 * Reads a subscription until `until` says stop (checked after each message), with a bound on the wait.
 * Closes the subscription when `close` is set (the default).
 */
export async function collect(
  subscription: Subscription,
  until: (c: Collected) => boolean,
  options: { timeoutMs?: number; close?: boolean } = {},
): Promise<Collected> {
  const timeoutMs = options.timeoutMs ?? WAIT_TIMEOUT_MS;
  const out: Collected = { events: [], caughtUp: [] };
  const iterator = subscription[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `subscription: timed out after ${timeoutMs} ms with ${out.events.length} events, caughtUp ${out.caughtUp.length}`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    while (!until(out)) {
      const next = await Promise.race([iterator.next(), timeout]);
      if (next.done) break;
      if (next.value.kind === 'event') out.events.push(next.value.event);
      else out.caughtUp.push(next.value.position);
    }
    return out;
  } finally {
    clearTimeout(timer);
    if (options.close ?? true) await subscription.close();
  }
}

async function expectRejection<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected the call to fail').toBeInstanceOf(type);
  return error as E;
}

async function streamLength(store: EventStore, streamName: string): Promise<number | 'no_stream'> {
  try {
    return (await store.readStream(streamName, { maxCount: 10_000 })).length;
  } catch (error) {
    if (error instanceof StreamNotFoundError) return 'no_stream';
    throw error;
  }
}

function positionsStrictlyIncrease(events: RecordedEvent[]): boolean {
  return events.every((e, i) => i === 0 || e.position > events[i - 1]!.position);
}

export function describeEventStoreContract(
  adapterName: string,
  create: () => Promise<ContractHarness>,
): void {
  describe(`EventStore contract: ${adapterName}`, () => {
    let harness: ContractHarness;
    let store: EventStore;

    beforeAll(async () => {
      harness = await create();
      store = harness.store;
    });
    afterAll(async () => {
      await harness?.dispose();
    });

    describe('append with expected revision', () => {
      it('no_stream creates a stream and returns its last revision and position', async () => {
        const ns = namespace();
        const s = ns.stream('a');
        const result = await store.append(s, [makeEvent(ns.type('A')), makeEvent(ns.type('B'))], {
          expectedRevision: 'no_stream',
        });
        expect(result.nextExpectedRevision).toBe(1n);
        const events = await store.readStream(s, { maxCount: 10 });
        expect(events.map((e) => e.revision)).toEqual([0n, 1n]);
        expect(events[1]!.position).toBe(result.position);
        expect(events[0]!.position).toBeLessThan(events[1]!.position);
        expect(await store.headPosition()).toBeGreaterThanOrEqual(result.position);
      });

      it('round-trips id, type, stream, data and metadata', async () => {
        const ns = namespace();
        const s = ns.stream('rt');
        const event = makeEvent(ns.type('Happened'), {
          amount: 1250,
          currency: 'eur',
          nested: { list: [1, 'two', null, true], empty: {} },
          unicode: 'Zoë €',
        });
        await store.append(s, [event], { expectedRevision: 'no_stream' });
        const [read] = await store.readStream(s, { maxCount: 1 });
        expect(read).toMatchObject({ id: event.id, type: event.type, streamName: s, revision: 0n });
        expect(read!.data).toEqual(event.data);
        expect(read!.metadata).toEqual(event.metadata);
        expect(read!.recordedAt).toBeInstanceOf(Date);
        expect(typeof read!.position).toBe('bigint');
      });

      const failing: Array<{
        name: string;
        existing: number;
        expected: ExpectedRevision;
        actual: bigint | 'no_stream';
      }> = [
        { name: 'no_stream on an existing stream', existing: 2, expected: 'no_stream', actual: 1n },
        {
          name: 'stream_exists on a missing stream',
          existing: 0,
          expected: 'stream_exists',
          actual: 'no_stream',
        },
        { name: 'exact revision on a missing stream', existing: 0, expected: 0n, actual: 'no_stream' },
        { name: 'exact revision too low', existing: 3, expected: 1n, actual: 2n },
        { name: 'exact revision too high', existing: 3, expected: 5n, actual: 2n },
      ];
      for (const c of failing) {
        it(`fails with WrongExpectedRevisionError and appends nothing: ${c.name}`, async () => {
          const ns = namespace();
          const s = ns.stream('x');
          if (c.existing > 0) {
            const seed = Array.from({ length: c.existing }, () => makeEvent(ns.type('Seeded')));
            await store.append(s, seed, { expectedRevision: 'no_stream' });
          }
          const head = await store.headPosition();
          const error = await expectRejection(
            store.append(s, [makeEvent(ns.type('Rejected'))], { expectedRevision: c.expected }),
            WrongExpectedRevisionError,
          );
          expect(error.code).toBe('wrong_expected_revision');
          expect(error.streamName).toBe(s);
          expect(error.expected).toBe(c.expected);
          expect(error.actual).toBe(c.actual);
          expect(await streamLength(store, s)).toBe(c.existing === 0 ? 'no_stream' : c.existing);
          expect(await store.headPosition()).toBe(head);
        });
      }

      const succeeding: Array<{ name: string; existing: number; expected: ExpectedRevision }> = [
        { name: 'stream_exists on an existing stream', existing: 1, expected: 'stream_exists' },
        { name: 'any on a missing stream', existing: 0, expected: 'any' },
        { name: 'any on an existing stream', existing: 2, expected: 'any' },
        { name: 'exact revision equal to the last revision', existing: 3, expected: 2n },
      ];
      for (const c of succeeding) {
        it(`succeeds: ${c.name}`, async () => {
          const ns = namespace();
          const s = ns.stream('y');
          if (c.existing > 0) {
            const seed = Array.from({ length: c.existing }, () => makeEvent(ns.type('Seeded')));
            await store.append(s, seed, { expectedRevision: 'no_stream' });
          }
          const result = await store.append(s, [makeEvent(ns.type('Accepted'))], {
            expectedRevision: c.expected,
          });
          expect(result.nextExpectedRevision).toBe(BigInt(c.existing));
          const events = await store.readStream(s, { maxCount: 100 });
          expect(events.map((e) => e.revision)).toEqual(
            Array.from({ length: c.existing + 1 }, (_, i) => BigInt(i)),
          );
          expect(events[c.existing]!.position).toBe(result.position);
        });
      }

      it('two concurrent appends at the same revision: exactly one wins', async () => {
        const ns = namespace();
        const s = ns.stream('race');
        await store.append(s, [makeEvent(ns.type('Opened'))], { expectedRevision: 'no_stream' });
        const outcomes = await Promise.allSettled([
          store.append(s, [makeEvent(ns.type('Left'))], { expectedRevision: 0n }),
          store.append(s, [makeEvent(ns.type('Right'))], { expectedRevision: 0n }),
        ]);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toBeInstanceOf(WrongExpectedRevisionError);
        expect((lost[0]!.reason as WrongExpectedRevisionError).actual).toBe(1n);
        expect(await streamLength(store, s)).toBe(2);
      });

      it('two concurrent creations with no_stream: exactly one wins', async () => {
        const ns = namespace();
        const s = ns.stream('create-race');
        const outcomes = await Promise.allSettled([
          store.append(s, [makeEvent(ns.type('Left')), makeEvent(ns.type('Left'))], {
            expectedRevision: 'no_stream',
          }),
          store.append(s, [makeEvent(ns.type('Right'))], { expectedRevision: 'no_stream' }),
        ]);
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        const lost = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(lost?.reason).toBeInstanceOf(WrongExpectedRevisionError);
        const length = await streamLength(store, s);
        expect(length === 1 || length === 2).toBe(true);
      });
    });

    describe('idempotent re-append', () => {
      it('re-appending the same event ids returns the original result and appends nothing', async () => {
        const ns = namespace();
        const s = ns.stream('idem');
        // Keys deliberately out of order: stores that normalise JSON (jsonb) must still recognise the replay.
        const events = [
          makeEvent(ns.type('First'), { zeta: 1, alpha: { y: 2, b: [3, { k: 'v', a: 1 }] } }),
          makeEvent(ns.type('Second'), { longer_key: true, k: false }),
        ];
        const original = await store.append(s, events, { expectedRevision: 'no_stream' });
        const head = await store.headPosition();
        const replay = await store.append(s, events, { expectedRevision: 'no_stream' });
        expect(replay).toEqual(original);
        const replayAny = await store.append(s, events, { expectedRevision: 'any' });
        expect(replayAny).toEqual(original);
        expect(await streamLength(store, s)).toBe(2);
        expect(await store.headPosition()).toBe(head);
      });

      it('a replay of an earlier append still returns that append’s result after the stream moved on', async () => {
        const ns = namespace();
        const s = ns.stream('idem-later');
        const first = [makeEvent(ns.type('First'))];
        const original = await store.append(s, first, { expectedRevision: 'no_stream' });
        await store.append(s, [makeEvent(ns.type('Later'))], { expectedRevision: 0n });
        expect(await store.append(s, first, { expectedRevision: 'no_stream' })).toEqual(original);
        expect(await streamLength(store, s)).toBe(2);
      });

      it('concurrent retries of the same append write it once and all get the same result', async () => {
        const ns = namespace();
        const s = ns.stream('retry');
        const events = [makeEvent(ns.type('Once')), makeEvent(ns.type('Once'))];
        const results = await Promise.all(
          Array.from({ length: 4 }, () => store.append(s, events, { expectedRevision: 'no_stream' })),
        );
        expect(new Set(results.map((r) => `${r.nextExpectedRevision}@${r.position}`)).size).toBe(1);
        expect(await streamLength(store, s)).toBe(2);
      });

      it('rejects a partial overlap with earlier ids and appends nothing', async () => {
        const ns = namespace();
        const s = ns.stream('overlap');
        const a = makeEvent(ns.type('A'));
        const b = makeEvent(ns.type('B'));
        await store.append(s, [a, b], { expectedRevision: 'no_stream' });
        const head = await store.headPosition();
        await expectRejection(
          store.append(s, [b, makeEvent(ns.type('C'))], { expectedRevision: 'any' }),
          IdempotencyViolationError,
        );
        expect(await streamLength(store, s)).toBe(2);
        expect(await store.headPosition()).toBe(head);
      });

      it('rejects the same id with changed content', async () => {
        const ns = namespace();
        const s = ns.stream('changed');
        const a = makeEvent(ns.type('A'), { amount: 1 });
        await store.append(s, [a], { expectedRevision: 'no_stream' });
        await expectRejection(
          store.append(s, [{ ...a, data: { amount: 2 } }], { expectedRevision: 'no_stream' }),
          IdempotencyViolationError,
        );
        await expectRejection(
          store.append(s, [{ ...a, type: ns.type('Other') }], { expectedRevision: 'no_stream' }),
          IdempotencyViolationError,
        );
        const events = await store.readStream(s, { maxCount: 10 });
        expect(events).toHaveLength(1);
        expect(events[0]!.data).toEqual({ amount: 1 });
      });

      it('rejects the same id appended to another stream', async () => {
        const ns = namespace();
        const a = makeEvent(ns.type('A'));
        await store.append(ns.stream('one'), [a], { expectedRevision: 'no_stream' });
        await expectRejection(
          store.append(ns.stream('two'), [a], { expectedRevision: 'any' }),
          IdempotencyViolationError,
        );
        expect(await streamLength(store, ns.stream('two'))).toBe('no_stream');
      });
    });

    describe('read a stream', () => {
      let s: string;
      let ns: ReturnType<typeof namespace>;
      beforeAll(async () => {
        ns = namespace();
        s = ns.stream('read');
        const events = Array.from({ length: 6 }, (_, i) => makeEvent(ns.type('Numbered'), { i }));
        await store.append(s, events.slice(0, 4), { expectedRevision: 'no_stream' });
        await store.append(s, events.slice(4), { expectedRevision: 3n });
      });

      it('forwards from the start and from a revision, bounded by maxCount', async () => {
        const all = await store.readStream(s, { maxCount: 100 });
        expect(all.map((e) => e.data.i)).toEqual([0, 1, 2, 3, 4, 5]);
        expect(positionsStrictlyIncrease(all)).toBe(true);
        const page = await store.readStream(s, { direction: 'forwards', fromRevision: 2n, maxCount: 3 });
        expect(page.map((e) => e.revision)).toEqual([2n, 3n, 4n]);
        expect(await store.readStream(s, { fromRevision: 6n, maxCount: 10 })).toEqual([]);
      });

      it('backwards from the end and from a revision, bounded by maxCount', async () => {
        const fromEnd = await store.readStream(s, { direction: 'backwards', maxCount: 2 });
        expect(fromEnd.map((e) => e.revision)).toEqual([5n, 4n]);
        const page = await store.readStream(s, { direction: 'backwards', fromRevision: 3n, maxCount: 10 });
        expect(page.map((e) => e.revision)).toEqual([3n, 2n, 1n, 0n]);
      });

      it('throws StreamNotFoundError for a stream with no events', async () => {
        const error = await expectRejection(
          store.readStream(ns.stream('missing'), { maxCount: 10 }),
          StreamNotFoundError,
        );
        expect(error.streamName).toBe(ns.stream('missing'));
      });
    });

    describe('find an event by id in its stream', () => {
      it('finds the first event of an append, at its revision and position; not in another stream, not an unknown id', async () => {
        const ns = namespace();
        const s = ns.stream('find');
        const first = makeEvent(ns.type('A'), { n: 1 });
        const second = makeEvent(ns.type('B'), { n: 2 });
        await store.append(s, [makeEvent(ns.type('Z'))], { expectedRevision: 'no_stream' });
        const written = await store.append(s, [first], { expectedRevision: 0n });
        await store.append(s, [second], { expectedRevision: 1n });
        await store.append(ns.stream('other'), [makeEvent(ns.type('Z'))], { expectedRevision: 'no_stream' });
        const found = await store.findEvent(s, first.id);
        expect(found).toMatchObject({
          id: first.id,
          type: first.type,
          streamName: s,
          revision: 1n,
          position: written.position,
          data: { n: 1 },
          metadata: first.metadata,
        });
        expect((await store.findEvent(s, second.id))?.revision).toBe(2n);
        expect(await store.findEvent(ns.stream('other'), first.id)).toBeUndefined();
        expect(await store.findEvent(ns.stream('missing'), first.id)).toBeUndefined();
        expect(await store.findEvent(s, makeEvent('X').id)).toBeUndefined();
      });
    });

    describe('read all', () => {
      let ns: ReturnType<typeof namespace>;
      let written: RecordedEvent[];
      beforeAll(async () => {
        ns = namespace();
        await store.append(ns.stream('p'), [makeEvent(ns.type('Opened')), makeEvent(ns.type('Noted'))], {
          expectedRevision: 'no_stream',
        });
        await store.append(ns.stream('q'), [makeEvent(ns.type('Opened'))], { expectedRevision: 'no_stream' });
        await store.append(ns.stream('p'), [makeEvent(ns.type('Closed'))], { expectedRevision: 1n });
        await store.append(ns.stream('r'), [makeEvent(ns.type('Noted'))], { expectedRevision: 'any' });
        written = await store.readAll({ maxCount: 100, filter: { streamNamePrefixes: [ns.prefix] } });
      });

      it('forwards returns every event in position order', () => {
        expect(written.map((e) => `${e.streamName.slice(ns.prefix.length)}:${e.type.slice(11)}`)).toEqual([
          'p:Opened',
          'p:Noted',
          'q:Opened',
          'p:Closed',
          'r:Noted',
        ]);
        expect(positionsStrictlyIncrease(written)).toBe(true);
      });

      it('forwards after a position is exclusive and bounded by maxCount', async () => {
        const after = written[1]!.position;
        const page = await store.readAll({
          after,
          maxCount: 2,
          filter: { streamNamePrefixes: [ns.prefix] },
        });
        expect(page.map((e) => e.id)).toEqual([written[2]!.id, written[3]!.id]);
      });

      it('backwards before a position is exclusive and bounded by maxCount', async () => {
        const page = await store.readAll({
          direction: 'backwards',
          before: written[3]!.position,
          maxCount: 2,
          filter: { streamNamePrefixes: [ns.prefix] },
        });
        expect(page.map((e) => e.id)).toEqual([written[2]!.id, written[1]!.id]);
        const fromEnd = await store.readAll({
          direction: 'backwards',
          maxCount: 5,
          filter: { streamNamePrefixes: [ns.prefix] },
        });
        expect(fromEnd.map((e) => e.id)).toEqual(written.map((e) => e.id).reverse());
      });

      it('without a filter includes these events among others, in position order', async () => {
        const page = await store.readAll({ after: written[0]!.position - 1n, maxCount: 10_000 });
        expect(positionsStrictlyIncrease(page)).toBe(true);
        const ids = new Set(page.map((e) => e.id));
        expect(written.every((e) => ids.has(e.id))).toBe(true);
      });

      it('filters by stream prefix, by event type, and by both', async () => {
        const byPrefix = await store.readAll({
          maxCount: 100,
          filter: { streamNamePrefixes: [ns.stream('q'), ns.stream('r')] },
        });
        expect(byPrefix.map((e) => e.id)).toEqual([written[2]!.id, written[4]!.id]);
        const byType = await store.readAll({ maxCount: 100, filter: { eventTypes: [ns.type('Noted')] } });
        expect(byType.map((e) => e.id)).toEqual([written[1]!.id, written[4]!.id]);
        const both = await store.readAll({
          maxCount: 100,
          filter: {
            streamNamePrefixes: [ns.stream('p')],
            eventTypes: [ns.type('Opened'), ns.type('Closed')],
          },
        });
        expect(both.map((e) => e.id)).toEqual([written[0]!.id, written[3]!.id]);
      });
    });

    describe('subscribe', () => {
      it('delivers history, then caughtUp once, then live events', async () => {
        const ns = namespace();
        const filter: EventFilter = { streamNamePrefixes: [ns.prefix] };
        await store.append(ns.stream('s'), [makeEvent(ns.type('Old')), makeEvent(ns.type('Old'))], {
          expectedRevision: 'no_stream',
        });
        const subscription = store.subscribe({ filter });
        const history = await collect(subscription, (c) => c.caughtUp.length === 1, { close: false });
        expect(history.events.map((e) => e.type)).toEqual([ns.type('Old'), ns.type('Old')]);
        expect(history.caughtUp[0]!).toBeGreaterThanOrEqual(history.events[1]!.position);
        await store.append(ns.stream('s'), [makeEvent(ns.type('New'))], { expectedRevision: 1n });
        const live = await collect(subscription, (c) => c.events.length === 1);
        expect(live.caughtUp).toEqual([]);
        expect(live.events[0]!.type).toBe(ns.type('New'));
        expect(live.events[0]!.position).toBeGreaterThan(history.events[1]!.position);
      });

      it('resumes after close from a checkpoint without gaps or duplicates', async () => {
        const ns = namespace();
        const filter: EventFilter = { streamNamePrefixes: [ns.prefix] };
        const events = Array.from({ length: 6 }, (_, i) => makeEvent(ns.type('Step'), { i }));
        await store.append(ns.stream('r'), events.slice(0, 4), { expectedRevision: 'no_stream' });
        const first = await collect(store.subscribe({ filter }), (c) => c.events.length === 2);
        const checkpoint = first.events[1]!.position;
        await store.append(ns.stream('r'), events.slice(4), { expectedRevision: 3n });
        const resumed = await collect(
          store.subscribe({ filter, after: checkpoint }),
          (c) => c.events.length === 4,
        );
        expect([...first.events, ...resumed.events].map((e) => e.data.i)).toEqual([0, 1, 2, 3, 4, 5]);
        expect(positionsStrictlyIncrease(resumed.events)).toBe(true);
      });

      it('filters live and historical events by stream prefix and by event type', async () => {
        const ns = namespace();
        await store.append(ns.stream('keep'), [makeEvent(ns.type('Wanted'))], {
          expectedRevision: 'no_stream',
        });
        await store.append(ns.stream('drop'), [makeEvent(ns.type('Wanted'))], {
          expectedRevision: 'no_stream',
        });
        await store.append(ns.stream('keep'), [makeEvent(ns.type('Unwanted'))], { expectedRevision: 0n });
        const byPrefix = store.subscribe({ filter: { streamNamePrefixes: [ns.stream('keep')] } });
        const byType = store.subscribe({ filter: { eventTypes: [ns.type('Wanted')] } });
        const prefixHistory = await collect(byPrefix, (c) => c.caughtUp.length === 1, { close: false });
        const typeHistory = await collect(byType, (c) => c.caughtUp.length === 1, { close: false });
        expect(prefixHistory.events.map((e) => e.type)).toEqual([ns.type('Wanted'), ns.type('Unwanted')]);
        expect(typeHistory.events.map((e) => e.streamName)).toEqual([ns.stream('keep'), ns.stream('drop')]);
        await store.append(ns.stream('drop'), [makeEvent(ns.type('Unwanted'))], { expectedRevision: 0n });
        await store.append(ns.stream('keep'), [makeEvent(ns.type('Wanted'), { live: true })], {
          expectedRevision: 1n,
        });
        const prefixLive = await collect(byPrefix, (c) => c.events.length === 1);
        const typeLive = await collect(byType, (c) => c.events.length === 1);
        expect(prefixLive.events[0]!.data).toEqual({ live: true });
        expect(typeLive.events[0]!.data).toEqual({ live: true });
      });

      it('close ends the iteration', async () => {
        const subscription = store.subscribe({ after: await store.headPosition() });
        const iterator = subscription[Symbol.asyncIterator]();
        const caughtUp = await iterator.next();
        expect(caughtUp.value).toMatchObject({ kind: 'caughtUp' });
        const pending = iterator.next();
        await subscription.close();
        expect((await pending).done).toBe(true);
      });
    });

    describe('bad input: a typed InvalidAppendError and nothing appended', () => {
      const big = 'x'.repeat(1024 * 1024);
      const cases: Array<{ name: string; call: (s: string, type: string) => [string, unknown[], unknown] }> =
        [
          { name: 'empty append', call: (s) => [s, [], 'any'] },
          { name: 'invalid stream name (space)', call: (_s, t) => ['wallet-x y', [makeEvent(t)], 'any'] },
          { name: 'invalid stream name (empty)', call: (_s, t) => ['', [makeEvent(t)], 'any'] },
          {
            name: 'invalid stream name (leading symbol)',
            call: (_s, t) => ['-wallet', [makeEvent(t)], 'any'],
          },
          {
            name: 'event without a type',
            call: (s) => [s, [{ ...makeEvent('X'), type: undefined }], 'any'],
          },
          { name: 'event with an empty type', call: (s) => [s, [{ ...makeEvent('X'), type: '' }], 'any'] },
          { name: 'event data over 1 MiB', call: (s, t) => [s, [makeEvent(t, { big })], 'any'] },
          {
            name: 'event data with a NUL character',
            call: (s, t) => [s, [makeEvent(t, { note: 'a\u0000b' })], 'any'],
          },
          {
            name: 'event data with an unpaired surrogate',
            call: (s, t) => [s, [makeEvent(t, { note: '\ud800' })], 'any'],
          },
          { name: 'event id not a uuid', call: (s, t) => [s, [makeEvent(t, {}, 'not-a-uuid')], 'any'] },
          {
            name: 'one bad event among good ones',
            call: (s, t) => [s, [makeEvent(t), { ...makeEvent(t), data: [1, 2] }], 'any'],
          },
          { name: 'expected revision as a number', call: (s, t) => [s, [makeEvent(t)], 0] },
          { name: 'expected revision as a string', call: (s, t) => [s, [makeEvent(t)], '0'] },
          { name: 'expected revision negative', call: (s, t) => [s, [makeEvent(t)], -1n] },
          { name: 'expected revision missing', call: (s, t) => [s, [makeEvent(t)], undefined] },
        ];
      for (const c of cases) {
        it(c.name, async () => {
          const ns = namespace();
          const s = ns.stream('bad');
          const head = await store.headPosition();
          const [streamName, events, expectedRevision] = c.call(s, ns.type('Bad'));
          const error = await expectRejection(
            store.append(streamName, events as EventToAppend[], {
              expectedRevision: expectedRevision as ExpectedRevision,
            }),
            InvalidAppendError,
          );
          expect(error.code).toBe('invalid_append');
          expect(await streamLength(store, s)).toBe('no_stream');
          expect(await store.headPosition()).toBe(head);
        });
      }

      it('an event just under the size limit is accepted', async () => {
        const ns = namespace();
        const s = ns.stream('large');
        await store.append(s, [makeEvent(ns.type('Large'), { blob: 'y'.repeat(512 * 1024) })], {
          expectedRevision: 'no_stream',
        });
        const [read] = await store.readStream(s, { maxCount: 1 });
        expect((read!.data.blob as string).length).toBe(512 * 1024);
      });

      it('read with an unbounded or invalid maxCount is refused', async () => {
        await expectRejection(store.readAll({ maxCount: 0 }), InvalidAppendError);
        await expectRejection(store.readAll({ maxCount: 1_000_000 }), InvalidAppendError);
        await expectRejection(store.readStream('wallet-x.y', { maxCount: 1.5 }), InvalidAppendError);
      });
    });

    it('storm: 2,000 events from 20 concurrent writers over 50 streams arrive exactly once, in order', async () => {
      const ns = namespace();
      const filter: EventFilter = { streamNamePrefixes: [ns.prefix] };
      const writers = 20;
      const streams = 50;
      const eventsPerWriter = 100;
      const total = writers * eventsPerWriter;
      const live = store.subscribe({ filter, after: await store.headPosition() });
      const liveCollected = collect(live, (c) => c.events.length >= total, { timeoutMs: 60_000 });
      const results: Array<{ ids: string[]; result: AppendResult }> = [];
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          let written = 0;
          let n = 0;
          while (written < eventsPerWriter) {
            const size = Math.min(1 + ((w + n) % 3), eventsPerWriter - written);
            const stream = ns.stream(`s${(w * 7 + n * 13) % streams}`);
            const batch = Array.from({ length: size }, (_, k) => makeEvent(ns.type('Stormed'), { w, n, k }));
            const result = await store.append(stream, batch, { expectedRevision: 'any' });
            results.push({ ids: batch.map((e) => e.id), result });
            written += size;
            n++;
          }
        }),
      );
      const fromStart = await collect(store.subscribe({ filter }), (c) => c.events.length >= total, {
        timeoutMs: 60_000,
      });
      const liveResult = await liveCollected;
      for (const seen of [fromStart.events, liveResult.events]) {
        expect(seen).toHaveLength(total);
        expect(new Set(seen.map((e) => e.id)).size).toBe(total);
        expect(positionsStrictlyIncrease(seen)).toBe(true);
      }
      expect(liveResult.events.map((e) => e.id)).toEqual(fromStart.events.map((e) => e.id));
      // Per stream, revisions are dense from 0 in position order.
      const nextRevision = new Map<string, bigint>();
      for (const e of fromStart.events) {
        const expected = nextRevision.get(e.streamName) ?? 0n;
        expect(e.revision).toBe(expected);
        nextRevision.set(e.streamName, expected + 1n);
      }
      // Every append's reported position is the position of its last event.
      const positionById = new Map(fromStart.events.map((e) => [e.id, e.position]));
      for (const { ids, result } of results) {
        expect(positionById.get(ids[ids.length - 1]!)).toBe(result.position);
      }
      const readBack = await store.readAll({ maxCount: 10_000, filter });
      expect(readBack.map((e) => e.id)).toEqual(fromStart.events.map((e) => e.id));
    });
  });
}
