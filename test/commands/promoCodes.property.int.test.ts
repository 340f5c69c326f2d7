import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { FLOW_TRIGGER_TYPES, flowStepFor } from '../../src/commands/processManagers.js';
import { PromoCodes } from '../../src/commands/promoCodes.js';
import { DomainError } from '../../src/domain/errors.js';
import { decodeEvent } from '../../src/domain/events.js';
import { liveDiscount, liveRedemptions, promoCodeDecider } from '../../src/domain/promoCode.js';
import { promoCodeStream } from '../../src/domain/streams.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  EventStoreUnavailableError,
  type EventToAppend,
} from '../../src/eventstore/port.js';
import { LedgerFold } from '../property/ledgerFold.js';

/**
 * Promo codes under concurrency and crashes (docs/ledger-flows.md, "Promo codes"): N bookings racing
 * for a code with limit L and a budget, placed through several processes (LedgerService instances with
 * their own caches on one store); and random booking lifecycles whose requests die between any two
 * steps, finished by the process managers. Against a reference model: exactly min(N, L, budget / discount)
 * succeed, the budget is never exceeded, each booking's redemption is reserved / confirmed / released
 * as the booking is held / completed / cancelled or expired, and promotions expense equals the
 * discounts of completed bookings less their refunded parts.
 */

const T = 'promoprop';
const DAY = 86_400_000;
const START = Date.parse('2026-04-01T00:00:00.000Z');
let seq = 0;
const ctx = (role = 'student', id = `${role}-1`): CommandContext => {
  const key = `key-${++seq}`;
  return { tenantId: T, actor: { id, role }, idempotencyKey: key, correlationId: key, causationId: key };
};
const usd = (amount: number) => ({ amount, currency: 'usd' });

/** The real store behind a switch: the next append of a listed event type fails as if the process died. */
class CrashingStore implements EventStore {
  readonly kind = 'memory' as const;
  crashOn: string | null = null;
  constructor(readonly inner: EventStore) {}
  async append(streamName: string, events: EventToAppend[], options: AppendOptions): Promise<AppendResult> {
    if (this.crashOn !== null && events.some((e) => e.type === this.crashOn)) {
      this.crashOn = null;
      throw new EventStoreUnavailableError('process died');
    }
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

/** What a process manager does after a crash: every flow trigger's step, until nothing new is appended. */
async function finishFlows(service: LedgerService, store: EventStore): Promise<void> {
  const step = flowStepFor(service);
  const types = new Set<string>(FLOW_TRIGGER_TYPES);
  for (let round = 0; round < 10; round++) {
    const head = await store.headPosition();
    for (const e of await store.readAll({ maxCount: 10_000 })) {
      if (!types.has(e.type)) continue;
      await step(e).catch((error: unknown) => {
        if (!(error instanceof DomainError)) throw error;
      });
    }
    if ((await store.headPosition()) === head) return;
  }
  throw new Error('the flows kept appending');
}

async function fund(service: LedgerService, studentId: string, amount: number): Promise<void> {
  const topUpId = `tu-${++seq}`;
  await service.initiateTopUp(ctx(), { topUpId, studentId, amount: usd(amount) });
  await service.succeedTopUp(ctx('service'), {
    topUpId,
    paymentIntentId: `pi_${topUpId}`,
    amountReceived: amount,
    currency: 'usd',
  });
}

async function createCode(
  promoCodes: PromoCodes,
  code: string,
  options: { maxRedemptions: number; perStudent: number; budget: number | null; amount: number },
) {
  await promoCodes.create(ctx('tenant_admin'), {
    code,
    currency: 'usd',
    discount: { type: 'fixed', amount: options.amount },
    appliesTo: ['bookings', 'courses'],
    validUntil: new Date(START + 60 * DAY).toISOString(),
    maxRedemptions: options.maxRedemptions,
    maxRedemptionsPerStudent: options.perStudent,
    budget: options.budget,
  });
}

async function foldAll(store: EventStore): Promise<LedgerFold> {
  const fold = new LedgerFold();
  await fold.catchUp(store); // asserts balanced entries, constrained accounts >= 0, holds resolve once
  return fold;
}

const posted = (fold: LedgerFold, account: string) => {
  const t = fold.totals.get(LedgerFold.key(T, account, 'usd'));
  return t ? t.debitsPosted - t.creditsPosted : 0;
};

describe('promo code redemptions', () => {
  it('N concurrent bookings against limit L and a budget: exactly min(N, L, budget / discount) succeed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 8 }),
        fc.option(fc.integer({ min: 100, max: 2_000 }), { nil: null }),
        fc.integer({ min: 2, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        async (n, limit, budget, processes, sameStudentEvery) => {
          const store = new MemoryEventStore();
          const clock = () => new Date(START);
          const services = Array.from({ length: processes }, () => createLedgerService({ store, clock }));
          const promoCodes = new PromoCodes(services[0]!.handler, clock);
          const amount = 300;
          await createCode(promoCodes, 'RACE', {
            maxRedemptions: limit,
            perStudent: Math.min(n, limit),
            budget,
            amount,
          });
          // Some bookings share a student (sameStudentEvery), so the wallet and the code both race.
          const studentOf = (i: number) =>
            sameStudentEvery > 0 && i % (sameStudentEvery + 1) === 0 ? 's0' : `s${i}`;
          for (const s of new Set(Array.from({ length: n }, (_, i) => studentOf(i)))) {
            await fund(services[0]!, s, 1_000 * n);
          }
          const outcomes = await Promise.allSettled(
            Array.from({ length: n }, (_, i) =>
              services[i % processes]!.placeBooking(ctx(), {
                bookingId: `b${i}`,
                studentId: studentOf(i),
                tutorId: 'u1',
                price: usd(1_000),
                scheduledAt: new Date(START + 3 * DAY).toISOString(),
                promoCode: 'race',
              }),
            ),
          );
          const expected = Math.min(n, limit, budget === null ? n : Math.floor(budget / amount));
          const ok = outcomes.filter((o) => o.status === 'fulfilled').length;
          for (const o of outcomes) {
            if (o.status === 'rejected') {
              expect(o.reason).toBeInstanceOf(DomainError);
              expect((o.reason as DomainError).code).toBe('promo_code_rejected');
              expect(['redemption_limit', 'budget_exhausted']).toContain(
                (o.reason as DomainError).details.reason,
              );
            }
          }
          expect(ok).toBe(expected);
          const { state } = await services[0]!.handler.load(promoCodeDecider, promoCodeStream(T, 'RACE'));
          expect(liveRedemptions(state)).toBe(expected);
          expect(liveDiscount(state)).toBe(expected * amount);
          if (budget !== null) expect(liveDiscount(state)).toBeLessThanOrEqual(budget);
          // Every refused booking's hold was released: the wallets hold exactly the placed bookings.
          const fold = await foldAll(store);
          const pending = [...fold.totals.entries()]
            .filter(([k]) => k.includes('student:'))
            .reduce((sum, [, t]) => sum + t.debitsPending, 0);
          expect(pending).toBe(expected * (1_000 - amount));
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);

  type Op =
    | { kind: 'place'; booking: number; student: number; price: number }
    | { kind: 'complete'; booking: number }
    | { kind: 'cancel'; booking: number; late: boolean }
    | { kind: 'refund'; booking: number; amount: number | null }
    | { kind: 'expire' };
  const CRASH_POINTS = [
    null,
    'WalletHoldPlaced',
    'PromoRedemptionReserved',
    'PromoRedemptionRefused',
    'BookingPlaced',
    'WalletHoldCaptured',
    'PromoRedemptionConfirmed',
    'WalletHoldReleased',
    'PromoRedemptionReleased',
    'WalletRefunded',
    'TutorEarningsRecorded',
  ] as const;
  const opArb: fc.Arbitrary<{ op: Op; crashOn: (typeof CRASH_POINTS)[number] }> = fc.record({
    op: fc.oneof(
      fc.record({
        kind: fc.constant('place' as const),
        booking: fc.nat({ max: 7 }),
        student: fc.nat({ max: 2 }),
        price: fc.integer({ min: 200, max: 3_000 }),
      }),
      fc.record({ kind: fc.constant('complete' as const), booking: fc.nat({ max: 7 }) }),
      fc.record({ kind: fc.constant('cancel' as const), booking: fc.nat({ max: 7 }), late: fc.boolean() }),
      fc.record({
        kind: fc.constant('refund' as const),
        booking: fc.nat({ max: 7 }),
        amount: fc.option(fc.integer({ min: 1, max: 1_500 }), { nil: null }),
      }),
      fc.record({ kind: fc.constant('expire' as const) }),
    ),
    crashOn: fc.constantFrom(...CRASH_POINTS),
  });

  it('random lifecycles with crashes between steps: redemptions follow their bookings, the books balance', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        async (ops, limit, perStudent) => {
          const memory = new MemoryEventStore();
          let nowMs = START;
          const clock = () => new Date(nowMs);
          const healthy = createLedgerService({ store: memory, clock });
          const crashing = new CrashingStore(memory);
          const promoCodes = new PromoCodes(healthy.handler, clock);
          await healthy.updateSettings(ctx('tenant_admin'), { cancellationFreeWindowHours: 24 });
          await createCode(promoCodes, 'FLOW', {
            maxRedemptions: limit,
            perStudent: Math.min(perStudent, limit),
            budget: 1_000,
            amount: 250,
          });
          for (const s of [0, 1, 2]) await fund(healthy, `s${s}`, 50_000);
          for (const { op, crashOn } of ops) {
            // Each request runs in a fresh process (its own cache) that may die at `crashOn`.
            const flaky = createLedgerService({ store: crashing, clock });
            crashing.crashOn = crashOn;
            const run = async () => {
              switch (op.kind) {
                case 'place':
                  return flaky.placeBooking(ctx(), {
                    bookingId: `b${op.booking}`,
                    studentId: `s${op.student}`,
                    tutorId: 'u1',
                    price: usd(op.price),
                    scheduledAt: new Date(
                      nowMs + (op.price % 2 === 0 ? 3 * DAY : 12 * 3_600_000),
                    ).toISOString(),
                    promoCode: 'FLOW',
                  });
                case 'complete':
                  return flaky.completeBooking(ctx('tutor', 'u1'), { bookingId: `b${op.booking}` });
                case 'cancel':
                  return flaky.cancelBooking(ctx(), { bookingId: `b${op.booking}`, reason: 'plans changed' });
                case 'refund':
                  return flaky.refundBooking(ctx('finance_admin'), {
                    bookingId: `b${op.booking}`,
                    reason: 'complaint',
                    ...(op.amount !== null ? { amount: op.amount } : {}),
                  });
                case 'expire':
                  nowMs += 20 * DAY;
                  return flaky.runDueTasks(T, clock());
              }
            };
            await run().catch((error: unknown) => {
              if (error instanceof DomainError || error instanceof EventStoreUnavailableError) return;
              throw error;
            });
            crashing.crashOn = null;
            // The process managers finish what the dead request left halfway.
            await finishFlows(healthy, memory);
          }
          await checkAgainstModel(healthy, memory, limit);
        },
      ),
      { numRuns: 60 },
    );
  }, 240_000);
});

/** Every booking's redemption as its booking says, the limits and budget kept, promotions expense exact. */
async function checkAgainstModel(service: LedgerService, store: EventStore, limit: number): Promise<void> {
  const { state } = await service.handler.load(promoCodeDecider, promoCodeStream(T, 'FLOW'));
  const bookings = new Map<string, { status: string; discount: number; refundedDiscount: number }>();
  const holdsReleasedUnplaced = new Set<string>();
  for (const recorded of await store.readAll({ maxCount: 10_000 })) {
    const e = decodeEvent(recorded);
    switch (e.type) {
      case 'BookingPlaced':
        bookings.set(e.data.bookingId, {
          status: 'held',
          discount: e.data.discounts?.[0]?.amount ?? 0,
          refundedDiscount: 0,
        });
        break;
      case 'BookingCompleted':
      case 'BookingCancelled':
      case 'BookingExpired': {
        const b = bookings.get(e.data.bookingId)!;
        b.status =
          e.type === 'BookingCompleted'
            ? 'completed'
            : e.type === 'BookingCancelled'
              ? 'cancelled'
              : 'expired';
        break;
      }
      case 'BookingRefunded':
        bookings.get(e.data.bookingId)!.refundedDiscount += e.data.discounts?.[0]?.amount ?? 0;
        break;
      case 'WalletHoldReleased':
        if (!bookings.has(e.data.bookingId)) holdsReleasedUnplaced.add(e.data.bookingId);
        break;
      default:
    }
  }
  let expense = 0;
  for (const [bookingId, b] of bookings) {
    const r = state.redemptions.get(`booking:${bookingId}`);
    const expected = b.status === 'held' ? 'reserved' : b.status === 'completed' ? 'confirmed' : 'released';
    expect(r?.status, `redemption of ${bookingId} (${b.status})`).toBe(expected);
    expect(r?.discount).toBe(b.discount);
    if (b.status === 'completed') expense += b.discount - b.refundedDiscount;
  }
  // A booking never placed has no live redemption (refused, released as not placed, or none).
  for (const bookingId of holdsReleasedUnplaced) {
    const r = state.redemptions.get(`booking:${bookingId}`);
    expect(r === undefined || r.status === 'refused' || r.status === 'released').toBe(true);
  }
  expect(liveRedemptions(state)).toBeLessThanOrEqual(limit);
  expect(liveDiscount(state)).toBeLessThanOrEqual(1_000);
  const fold = await foldAll(store);
  expect(posted(fold, 'platform:expense:promotions')).toBe(expense);
  // No booking's money is stuck: clearing accounts of finished bookings are back to zero.
  for (const [bookingId, b] of bookings) {
    if (b.status === 'held') continue;
    const t = fold.totals.get(LedgerFold.key(T, `clearing:booking:${bookingId}`, 'usd'));
    if (t) expect(t.creditsPending - t.debitsPending + t.creditsPosted - t.debitsPosted).toBe(0);
  }
}
