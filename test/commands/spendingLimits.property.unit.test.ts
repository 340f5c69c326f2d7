import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { flowStepFor } from '../../src/commands/processManagers.js';
import { WalletControls } from '../../src/commands/walletControls.js';
import { DomainError } from '../../src/domain/errors.js';
import { decodeEvent } from '../../src/domain/events.js';
import { LIMIT_NAMES, type SpendingLimits } from '../../src/domain/spendingLimits.js';
import { walletStream } from '../../src/domain/streams.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore } from '../../src/eventstore/port.js';

/**
 * Spending limits under concurrency, crashes and retries (docs/ledger-flows.md, "Spending limits"),
 * against a reference model folded from the wallet stream:
 *  - at every hold, what the holds of its day / week / month add up to (less what resolved holds of
 *    that period gave back before it) is within the limit, and the hold is within the per-booking limit;
 *  - every refusal is `spending_limit_exceeded` or `insufficient_funds`, never anything else, and a
 *    refusal names a limit it really is over (requested > remaining);
 *  - what GET says is left is exact: a booking of exactly that succeeds and one unit more is refused;
 *  - a crash between the wallet hold and the booking (the booking stream's append fails) leaves the hold
 *    counted, the process manager finishes the booking, and a retried request appends nothing new.
 * Two services (two processes with their own caches) place bookings concurrently on one store.
 */
const T = 'lim';
const STUDENT = 'stu_1';
const HOUR = 3_600_000;

type Op =
  | { kind: 'book'; price: number; soon: boolean; crash: boolean; via: 0 | 1 }
  | { kind: 'cancel'; pick: number }
  | { kind: 'complete'; pick: number }
  | { kind: 'retry'; pick: number };

const limitArb = (min: number, max: number) => fc.option(fc.integer({ min, max }), { nil: null });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('book' as const),
      price: fc.integer({ min: 1, max: 400 }),
      soon: fc.boolean(),
      crash: fc.nat({ max: 3 }).map((x) => x === 0),
      via: fc.constantFrom(0 as const, 1 as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retry' as const), pick: fc.nat() }) },
);
const caseArb = fc.record({
  timeZone: fc.constantFrom('UTC', 'Europe/Berlin', 'Pacific/Auckland', 'America/Los_Angeles'),
  limits: fc.record({
    perBooking: limitArb(50, 400),
    perDay: limitArb(100, 900),
    perWeek: limitArb(300, 2000),
    perMonth: limitArb(500, 4000),
  }),
  rounds: fc.array(
    fc.record({
      advanceHours: fc.integer({ min: 0, max: 80 }),
      ops: fc.array(opArb, { minLength: 1, maxLength: 8 }),
    }),
    { minLength: 1, maxLength: 6 },
  ),
});

const ctx = (key: string, role = 'student'): CommandContext => ({
  tenantId: T,
  actor: { id: role === 'student' ? STUDENT : 'svc', role },
  idempotencyKey: key,
  correlationId: key,
  causationId: key,
});

/** A store whose next append to a named stream fails before anything is written (a crash there). */
function crashingStore(inner: MemoryEventStore): { store: EventStore; crashNext: Set<string> } {
  const crashNext = new Set<string>();
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'append') {
        return (streamName: string, ...rest: unknown[]) => {
          if (crashNext.delete(streamName)) return Promise.reject(new Error(`crash before ${streamName}`));
          return (target.append as (...a: unknown[]) => unknown).call(target, streamName, ...rest);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, crashNext };
}

interface HoldRecord {
  amount: number;
  periods: { day: string; week: string; month: string };
}

/** The reference model: the wallet stream folded with every period kept (not only the current one). */
async function checkStream(store: EventStore, limits: SpendingLimits): Promise<Map<string, number>> {
  const recorded = await store.readStream(walletStream(T, STUDENT), {
    direction: 'forwards',
    maxCount: 10_000,
  });
  const net = new Map<string, number>();
  const holds = new Map<string, HoldRecord>();
  let current = limits;
  const add = (h: HoldRecord, amount: number) => {
    for (const kind of ['day', 'week', 'month'] as const) {
      const key = `${kind}:${h.periods[kind]}`;
      net.set(key, (net.get(key) ?? 0) + amount);
    }
  };
  for (const stored of recorded) {
    const event = decodeEvent(stored);
    switch (event.type) {
      case 'WalletSpendingLimitsSet':
        current = event.data.limits;
        break;
      case 'WalletHoldPlaced': {
        const periods = event.data.spendingPeriods;
        expect(periods, 'every hold names its periods').toBeDefined();
        const h = { amount: event.data.amount, periods: periods! };
        holds.set(event.data.holdId, h);
        add(h, h.amount);
        if (current.perBooking !== null) expect(h.amount).toBeLessThanOrEqual(current.perBooking);
        const within = (limit: number | null, kind: 'day' | 'week' | 'month') => {
          if (limit !== null) expect(net.get(`${kind}:${periods![kind]}`)!).toBeLessThanOrEqual(limit);
        };
        within(current.perDay, 'day');
        within(current.perWeek, 'week');
        within(current.perMonth, 'month');
        break;
      }
      case 'WalletHoldCaptured': {
        const h = holds.get(event.data.holdId)!;
        add(h, -(h.amount - event.data.captured));
        break;
      }
      case 'WalletHoldReleased': {
        const h = holds.get(event.data.holdId)!;
        add(h, -(h.amount - event.data.fee));
        break;
      }
      default:
        break;
    }
  }
  return net;
}

async function finishFlows(service: LedgerService, store: EventStore): Promise<void> {
  const step = flowStepFor(service);
  for (const event of await store.readAll({ maxCount: 10_000 })) await step(event);
}

function expectRefusal(error: unknown): void {
  expect(error).toBeInstanceOf(DomainError);
  const e = error as DomainError;
  expect(['spending_limit_exceeded', 'insufficient_funds', 'invalid_state'], e.message).toContain(e.code);
  if (e.code === 'spending_limit_exceeded') {
    expect(LIMIT_NAMES).toContain(e.details.limit);
    expect(e.details.requested as number).toBeGreaterThan(e.details.remaining as number);
  }
}

describe('spending limits: concurrent bookings, releases, crashes and retries', () => {
  it('never exceed a limit; refusals name a limit really exceeded; what is left is exact', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ timeZone, limits, rounds }) => {
        let nowMs = Date.parse('2026-12-03T18:00:00.000Z');
        const clock = () => new Date(nowMs);
        const memory = new MemoryEventStore();
        const { store, crashNext } = crashingStore(memory);
        const services = [createLedgerService({ store, clock }), createLedgerService({ store, clock })];
        const admin = services[0]!;
        await admin.updateSettings(ctx('tz', 'tenant_admin'), { timeZone });
        await admin.initiateTopUp(ctx('fund'), {
          topUpId: 'fund',
          studentId: STUDENT,
          amount: { amount: 1_000_000, currency: 'usd' },
        });
        await admin.succeedTopUp(ctx('fund-webhook', 'service'), {
          topUpId: 'fund',
          paymentIntentId: 'pi_fund',
          amountReceived: 1_000_000,
          currency: 'usd',
        });
        const controls = new WalletControls(admin.handler, clock);
        await controls.setLimits(ctx('limits', 'tenant_admin'), { studentId: STUDENT, limits });
        const placed: Array<{ bookingId: string; key: string; price: number; scheduledAt: string }> = [];
        let n = 0;
        const book = (service: LedgerService, b: (typeof placed)[number]) =>
          service.placeBooking(ctx(b.key), {
            bookingId: b.bookingId,
            studentId: STUDENT,
            tutorId: 'tut_1',
            price: { amount: b.price, currency: 'usd' },
            scheduledAt: b.scheduledAt,
          });

        for (const round of rounds) {
          nowMs += round.advanceHours * HOUR;
          const results = await Promise.allSettled(
            round.ops.map(async (op) => {
              switch (op.kind) {
                case 'book': {
                  const i = n++;
                  const b = {
                    bookingId: `bk_${i}`,
                    key: `book-${i}`,
                    price: op.price,
                    // Soon: within the free window (a cancellation keeps a fee); else weeks ahead.
                    scheduledAt: new Date(nowMs + (op.soon ? 2 * HOUR : 30 * 24 * HOUR)).toISOString(),
                  };
                  if (op.crash) crashNext.add(`booking-${T}.${b.bookingId}`);
                  placed.push(b);
                  return book(services[op.via]!, b);
                }
                case 'retry': {
                  const b = placed[op.pick % Math.max(1, placed.length)];
                  // A retry after the session's time is refused as any late booking is.
                  return b && Date.parse(b.scheduledAt) > nowMs && book(services[op.pick % 2]!, b);
                }
                case 'cancel': {
                  const b = placed[op.pick % Math.max(1, placed.length)];
                  return (
                    b &&
                    services[op.pick % 2]!.cancelBooking(ctx(`cancel-${b.bookingId}`), {
                      bookingId: b.bookingId,
                      reason: 'changed plans',
                    })
                  );
                }
                case 'complete': {
                  const b = placed[op.pick % Math.max(1, placed.length)];
                  return (
                    b &&
                    services[op.pick % 2]!.completeBooking(ctx(`complete-${b.bookingId}`, 'tutor'), {
                      bookingId: b.bookingId,
                    })
                  );
                }
              }
            }),
          );
          for (const r of results) {
            if (r.status === 'fulfilled') continue;
            const error = r.reason as Error;
            if (error.message.startsWith('crash before')) continue;
            // A cancel or completion of a booking a crash left without its booking stream.
            if (error instanceof DomainError && error.code === 'not_found') continue;
            expectRefusal(error);
          }
          crashNext.clear(); // crashes planned for bookings the limits refused
          // The process manager finishes what a crash left halfway.
          await finishFlows(admin, store);
          const net = await checkStream(store, limits);

          // What GET says was spent is the model's, and what it says is left is left is exact (limits per period; per booking bounds a single booking).
          const view = await controls.getLimits(T, STUDENT);
          for (const kind of ['day', 'week', 'month'] as const) {
            expect(view.spent[kind].amount, kind).toBe(net.get(`${kind}:${view.spent[kind].period}`) ?? 0);
          }
          const left = Math.min(
            ...LIMIT_NAMES.map((name) => view.standing[name]?.remaining ?? Number.POSITIVE_INFINITY),
          );
          if (Number.isFinite(left)) {
            const probe = (price: number) => ({
              bookingId: `probe_${n++}`,
              key: `probe-${n}`,
              price,
              scheduledAt: new Date(nowMs + 40 * 24 * HOUR).toISOString(),
            });
            const over = await book(admin, probe(left + 1)).then(
              () => null,
              (e: unknown) => e,
            );
            expect(over, `a booking past what GET said was left (${left})`).toBeInstanceOf(DomainError);
            expect((over as DomainError).code).toBe('spending_limit_exceeded');
            if (left > 0) {
              const fits = probe(left);
              placed.push(fits);
              await book(admin, fits);
            }
            await checkStream(store, limits);
          }
        }
        // A fresh process (no cache) folds the same spending as the one that decided.
        const fresh = new WalletControls(createLedgerService({ store, clock }).handler, clock);
        expect(await fresh.getLimits(T, STUDENT)).toEqual(await controls.getLimits(T, STUDENT));
      }),
      { numRuns: 60 },
    );
  });
});
