import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustmentProposals } from '../../src/commands/adjustmentProposals.js';
import {
  type CheckpointStore,
  MemoryCheckpointStore,
  PostgresCheckpointStore,
} from '../../src/commands/checkpointStore.js';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import type { ProcessManagerHandle } from '../../src/commands/processManagerRunner.js';
import { startProcessManagers } from '../../src/commands/processManagers.js';
import { eventId } from '../../src/domain/ids.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  EventStoreUnavailableError,
  type EventToAppend,
} from '../../src/eventstore/port.js';
import { LedgerFold } from '../property/ledgerFold.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const T = 'pm';
const nowMs = Date.parse('2026-02-01T00:00:00.000Z');
const clock = () => new Date(nowMs);
let seq = 0;
const ctx = (role = 'student'): CommandContext => {
  const key = `k${++seq}`;
  return {
    tenantId: T,
    actor: { id: `${role}-1`, role },
    idempotencyKey: key,
    correlationId: key,
    causationId: key,
  };
};

/** The real store behind a switch: appends of the listed event types fail as if the process died there. */
class CrashingStore implements EventStore {
  readonly kind = 'memory' as const;
  failTypes = new Set<string>();
  /** When set, every append after this many more fails (a process that dies mid-way). */
  appendsLeft: number | undefined;
  constructor(readonly inner: EventStore) {}
  async append(streamName: string, events: EventToAppend[], options: AppendOptions): Promise<AppendResult> {
    if (events.some((e) => this.failTypes.has(e.type))) throw new EventStoreUnavailableError('process died');
    if (this.appendsLeft !== undefined && this.appendsLeft-- <= 0)
      throw new EventStoreUnavailableError('died');
    return this.inner.append(streamName, events, options);
  }
  readStream = (s: string, o: Parameters<EventStore['readStream']>[1]) => this.inner.readStream(s, o);
  readAll = (o: Parameters<EventStore['readAll']>[0]) => this.inner.readAll(o);
  findEvent = (s: string, id: string) => this.inner.findEvent(s, id);
  subscribe = (o: Parameters<EventStore['subscribe']>[0]) => this.inner.subscribe(o);
  headPosition = () => this.inner.headPosition();
  ping = () => this.inner.ping();
  close = async () => undefined;
}

/** Starts a runner and waits until it has handled everything, including what its own steps append. */
async function drain(runner: ProcessManagerHandle, store: EventStore): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const head = await store.headPosition();
    await runner.waitForPosition(head, 10_000);
    if ((await store.headPosition()) === head) return;
  }
  throw new Error('the runner kept appending');
}

async function countOf(store: EventStore, type: string, field?: [string, string]): Promise<number> {
  const events = await store.readAll({ maxCount: 10_000, filter: { eventTypes: [type] } });
  return events.filter((e) => !field || e.data[field[0]] === field[1]).length;
}

/** A top-up for student s1, settled the way Stripe's webhook settles it. */
async function topUp(service: LedgerService, topUpId: string, amount: number, paymentIntentId: string) {
  await service.initiateTopUp(ctx(), { topUpId, studentId: 's1', amount: { amount, currency: 'usd' } });
  return service.succeedTopUp(ctx('service'), {
    topUpId,
    paymentIntentId,
    amountReceived: amount,
    currency: 'usd',
  });
}

async function book(service: LedgerService, bookingId: string, tutorId = 'u1') {
  return service.placeBooking(ctx(), {
    bookingId,
    studentId: 's1',
    tutorId,
    price: { amount: 2_000, currency: 'usd' },
    scheduledAt: new Date(nowMs + 3 * 86_400_000).toISOString(),
  });
}

function describeCheckpointStore(name: string, make: () => CheckpointStore) {
  describe(name, () => {
    it('starts empty, only moves forward, and records poison events once', async () => {
      const store = make();
      expect(await store.load('pm')).toBeUndefined();
      await store.save('pm', 5n);
      await store.save('pm', 3n);
      expect(await store.load('pm')).toBe(5n);
      await store.save('pm', 9_007_199_254_740_000n);
      expect(await store.load('pm')).toBe(9_007_199_254_740_000n);
      expect(await store.load('other')).toBeUndefined();
      const poison = {
        subscriber: 'pm',
        eventId: '6f1d7c52-4b0e-4b8e-9a57-2a8f3c0d9e11',
        position: 7n,
        tenantId: 't1',
        streamName: 'booking-t1.b1',
        eventType: 'BookingCompleted',
        errorCode: 'invalid_state',
        errorMessage: 'hold already resolved',
      };
      await store.recordPoison(poison);
      await store.recordPoison(poison);
      expect(await store.listPoison('pm', 10)).toEqual([poison]);
    });
  });
}

function describeCrashRestart(name: string, makeCheckpoints: () => Promise<CheckpointStore>) {
  it(`${name}: flows a crashed request left halfway complete exactly once, across a runner crash and restart`, async () => {
    const memory = new MemoryEventStore();
    const healthy = createLedgerService({ store: memory, clock });
    const crashing = new CrashingStore(memory);
    const flaky = createLedgerService({ store: crashing, clock });
    const expectDied = (p: Promise<unknown>) => expect(p).rejects.toBeInstanceOf(EventStoreUnavailableError);

    await healthy.updateSettings(ctx('tenant_admin'), { earningsHoldPeriodDays: 0 });
    await topUp(healthy, 'tu1', 20_000, 'pi_1');
    // Earnings for a payout: book, complete, clear (hold period 0).
    await book(healthy, 'b5', 'u2');
    await healthy.completeBooking(ctx(), { bookingId: 'b5' });
    await healthy.runDueTasks(T, clock());

    // Each request below dies right after its first step.
    crashing.failTypes = new Set(['WalletToppedUp']);
    await healthy.initiateTopUp(ctx(), {
      topUpId: 'tu2',
      studentId: 's1',
      amount: { amount: 1_000, currency: 'usd' },
    });
    await expectDied(
      flaky.succeedTopUp(ctx('service'), {
        topUpId: 'tu2',
        paymentIntentId: 'pi_2',
        amountReceived: 1_000,
        currency: 'usd',
      }),
    );
    crashing.failTypes = new Set(['BookingPlaced']);
    await expectDied(book(flaky, 'b1'));
    for (const b of ['b2', 'b3', 'b4']) await book(healthy, b);
    crashing.failTypes = new Set(['WalletHoldCaptured']);
    await expectDied(flaky.completeBooking(ctx(), { bookingId: 'b2' }));
    await healthy.completeBooking(ctx(), { bookingId: 'b3' });
    crashing.failTypes = new Set(['WalletRefunded']);
    await expectDied(flaky.refundBooking(ctx(), { bookingId: 'b3', amount: 500, reason: 'late' }));
    crashing.failTypes = new Set(['WalletHoldReleased']);
    await expectDied(flaky.cancelBooking(ctx(), { bookingId: 'b4', reason: 'ill' }));
    crashing.failTypes = new Set(['PayoutRequested']);
    await expectDied(
      flaky.requestPayout(ctx('tutor'), {
        payoutId: 'p1',
        tutorId: 'u2',
        amount: { amount: 1_500, currency: 'usd' },
      }),
    );
    // A four-eyes approval recorded, its adjustment not yet made.
    const proposed = await new AdjustmentProposals(healthy, clock).propose(
      { ...ctx('finance_admin'), actor: { id: 'fin-a', role: 'finance_admin' } },
      {
        account: 'student:s1:wallet',
        direction: 'credit',
        amount: { amount: 2_500_000, currency: 'usd' },
        reason: 'goodwill',
      },
    );
    crashing.failTypes = new Set(['WalletAdjusted']);
    await expectDied(
      new AdjustmentProposals(flaky, clock).approve(
        { ...ctx('finance_admin'), actor: { id: 'fin-b', role: 'finance_admin' } },
        proposed.proposal.proposalId,
      ),
    );
    crashing.failTypes = new Set();

    expect(await countOf(memory, 'AdjustmentApproved')).toBe(1);
    expect(await countOf(memory, 'WalletAdjusted')).toBe(0);
    expect(await countOf(memory, 'BookingPlaced', ['bookingId', 'b1'])).toBe(0);
    expect(await countOf(memory, 'WalletHoldCaptured', ['bookingId', 'b2'])).toBe(0);

    // Runner 1 performs a couple of steps, then its process dies (every further append fails) and is stopped.
    const checkpoints = await makeCheckpoints();
    const dying = new CrashingStore(memory);
    dying.appendsLeft = 2;
    const first = startProcessManagers({
      service: createLedgerService({ store: dying, clock }),
      store: dying,
      checkpoints,
      tuning: { maxAttemptsPerEvent: 2, backoff: { baseDelayMs: 1, maxDelayMs: 2 }, restartDelayMs: 5 },
    });
    for (let i = 0; i < 200 && first.stats().transientFailures === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(first.stats().transientFailures).toBeGreaterThan(0);
    await first.stop();
    const stoppedAt = first.stats().checkpoint;

    // Runner 2: a fresh process resumes from the saved checkpoint and finishes every flow.
    const second = startProcessManagers({
      service: createLedgerService({ store: memory, clock }),
      store: memory,
      checkpoints,
    });
    await drain(second, memory);
    await second.stop();
    expect(second.stats().poison).toBe(0);
    expect(await checkpoints.load('ledger-flows')).toBe(await memory.headPosition());
    expect(stoppedAt === undefined || stoppedAt < (await memory.headPosition())).toBe(true);

    const once = async (type: string, field: [string, string]) =>
      expect(await countOf(memory, type, field), `${type} ${field[1]}`).toBe(1);
    await once('WalletToppedUp', ['topUpId', 'tu2']);
    await once('BookingPlaced', ['bookingId', 'b1']);
    await once('WalletHoldCaptured', ['bookingId', 'b2']);
    await once('TutorEarningsRecorded', ['bookingId', 'b2']);
    await once('WalletRefunded', ['bookingId', 'b3']);
    await once('TutorEarningsReversed', ['bookingId', 'b3']);
    await once('WalletHoldReleased', ['bookingId', 'b4']);
    expect(await countOf(memory, 'TutorEarningsRecorded', ['bookingId', 'b4'])).toBe(0); // free cancellation
    await once('PayoutRequested', ['payoutId', 'p1']);
    await once('WalletAdjusted', [
      'reason',
      `goodwill (proposal ${proposed.proposal.proposalId}, four eyes)`,
    ]);

    // Runner 3 from the same checkpoint, and a replay from the very start, append nothing.
    const head = await memory.headPosition();
    const third = startProcessManagers({
      service: createLedgerService({ store: memory, clock }),
      store: memory,
      checkpoints,
    });
    await drain(third, memory);
    await third.stop();
    const replay = startProcessManagers({
      service: createLedgerService({ store: memory, clock }),
      store: memory,
      checkpoints: new MemoryCheckpointStore(),
    });
    await drain(replay, memory);
    await replay.stop();
    expect(await memory.headPosition()).toBe(head);

    // The ledger is whole: every invariant of the fold holds and the flows' clearing accounts are closed.
    const fold = new LedgerFold();
    await fold.catchUp(memory);
    for (const b of ['b2', 'b3', 'b4', 'b5'])
      expect(fold.isZero(T, `clearing:booking:${b}`, 'usd')).toBe(true);
    expect(fold.get(T, 'clearing:booking:b1', 'usd').creditsPending).toBe(2_000);
    for (const [key] of fold.totals) {
      if (key.includes('|clearing:refund:')) expect(fold.isZero(T, key.split('|')[1]!, 'usd')).toBe(true);
    }
  }, 60_000);
}

describe('process managers', () => {
  describeCrashRestart('memory checkpoints', async () => new MemoryCheckpointStore());

  describe('with Postgres checkpoints', () => {
    let testDb: TestDatabase;
    beforeAll(async () => {
      testDb = await createTestDatabase();
    });
    afterAll(async () => {
      await testDb?.dispose();
    });
    describeCrashRestart('postgres checkpoints', async () => new PostgresCheckpointStore(testDb.db));
    describeCheckpointStore('PostgresCheckpointStore', () => new PostgresCheckpointStore(testDb.db));
  });

  describeCheckpointStore('MemoryCheckpointStore', () => new MemoryCheckpointStore());

  it('a live runner in another process racing the command path finishes nothing twice and finds no poison', async () => {
    const store = new MemoryEventStore();
    const api = createLedgerService({ store, clock });
    const runner = startProcessManagers({
      service: createLedgerService({ store, clock }),
      store,
      checkpoints: new MemoryCheckpointStore(),
    });
    try {
      await topUp(api, 'race', 50_000, 'pi_race');
      const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
      await Promise.all(ids.map((id) => book(api, id)));
      await Promise.all(
        ids.map((id, i) =>
          i % 3 === 0
            ? api.cancelBooking(ctx(), { bookingId: id, reason: 'race' })
            : api.completeBooking(ctx(), { bookingId: id }),
        ),
      );
      await Promise.all(
        ids
          .filter((_, i) => i % 3 === 1)
          .map((id) => api.refundBooking(ctx(), { bookingId: id, amount: 300, reason: 'r' })),
      );
      await drain(runner, store);
    } finally {
      await runner.stop();
    }
    expect(runner.stats().poison).toBe(0);
    expect(await countOf(store, 'BookingPlaced')).toBe(12);
    expect(await countOf(store, 'WalletHoldCaptured')).toBe(8);
    expect(await countOf(store, 'TutorEarningsRecorded')).toBe(8);
    expect(await countOf(store, 'WalletHoldReleased')).toBe(4);
    expect(await countOf(store, 'TutorEarningsReversed')).toBe(4);
    const fold = new LedgerFold();
    await fold.catchUp(store);
    expect(fold.available(T, 'student:s1:wallet', 'usd')).toBe(50_000 - 8 * 2_000 + 4 * 300);
  });

  it('records a poison event loudly (table + metric) and goes on with the next events', async () => {
    const store = new MemoryEventStore();
    const service = createLedgerService({ store, clock });
    const checkpoints = new MemoryCheckpointStore();
    const registry = new Registry();
    // A completion whose hold the wallet never had: the capture can never succeed.
    const metadata = {
      tenantId: T,
      correlationId: 'c',
      causationId: 'c',
      actor: { id: 'x', role: 'service' },
      idempotencyKey: 'poison',
      occurredAt: clock().toISOString(),
      schemaVersion: 1,
    };
    await store.append(
      `booking-${T}.bad`,
      [
        {
          id: eventId(T, 'Test', 'poison', 0),
          type: 'BookingCompleted',
          data: {
            bookingId: 'bad',
            studentId: 's9',
            tutorId: 'u9',
            holdId: eventId(T, 'Test', 'hold', 0),
            currency: 'usd',
            captured: 100,
            tutorShare: 80,
            commission: 20,
            completedAt: metadata.occurredAt,
            earningsClearableAt: metadata.occurredAt,
          },
          metadata,
        },
      ],
      { expectedRevision: 'no_stream' },
    );
    const errors: string[] = [];
    const runner = startProcessManagers({
      service,
      store,
      checkpoints,
      registry,
      logger: { info: () => undefined, warn: () => undefined, error: (_o, msg) => errors.push(msg ?? '') },
    });
    const done = await topUp(service, 'after', 1_000, 'pi_after');
    await runner.waitForPosition(done.position, 10_000);
    await runner.stop();
    expect(runner.stats().poison).toBe(1);
    const [poison] = await checkpoints.listPoison('ledger-flows', 10);
    expect(poison).toMatchObject({
      streamName: `booking-${T}.bad`,
      eventType: 'BookingCompleted',
      errorCode: 'not_found',
    });
    expect(errors.some((m) => m.includes('poison'))).toBe(true);
    expect(await registry.getSingleMetricAsString('ledger_process_manager_poison_events_total')).toContain(
      'code="not_found"',
    );
  });
});
