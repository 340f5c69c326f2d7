import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { ConcurrencyConflictError } from '../../src/commands/errors.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { flowStepFor } from '../../src/commands/processManagers.js';
import {
  PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS,
  PLATFORM_REVENUE_SUBSCRIPTIONS,
} from '../../src/domain/accounts.js';
import { DomainError } from '../../src/domain/errors.js';
import { type DecodedEvent, decodeEvent } from '../../src/domain/events.js';
import { deterministicId } from '../../src/domain/ids.js';
import { subscriptionStream, walletStream } from '../../src/domain/streams.js';
import {
  elapsedDays,
  periodBounds,
  subscriptionDecider,
  subscriptionDeferred,
} from '../../src/domain/subscription.js';
import type { Plan } from '../../src/domain/subscriptionPlans.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore } from '../../src/eventstore/port.js';
import { LedgerFold } from '../property/ledgerFold.js';

/**
 * VIP subscriptions under concurrency, crashes and retries (docs/ledger-flows.md, "VIP subscriptions"):
 * two services (two processes with their own caches) on one store run random subscribe, change-plan,
 * cancel, top-up and retry requests concurrently, a crash makes the append after the wallet's charge (or
 * the wallet's end) fail, time moves by random days and the scheduler renews, retries and recognises.
 * After every round (and the process managers' catch-up), against a reference folded from the events:
 *  - every entry balances and the trial balance is zero;
 *  - a period is charged at most once (one wallet charge per subscription and charge id, one renewal per
 *    period), and a subscription's refunds never exceed what the wallet paid into it;
 *  - ledger deferred revenue equals the sum over subscriptions of paid - recognised - refunded, and each
 *    live subscription's share is the unexpired share of its current period by the rounding rule
 *    (floor(A * d / L) per tranche, d the days elapsed: the scheduler has caught up);
 *  - a canceled subscription holds nothing in deferred revenue, and the wallet owes no second one.
 */
const T = 'subp';
const RUNS = Number(process.env.PROPERTY_RUNS ?? 60);
/** A seed whose 60 runs reach renewals, dunning, upgrades and cancellations. */
const COVERAGE_SEED = Number(process.env.COVERAGE_SEED ?? 1);
const DAY = 86_400_000;
const STUDENTS = ['s1', 's2'] as const;
const plan = (planId: string, price: number): Plan => ({
  planId,
  name: planId,
  tier: planId,
  interval: 'month',
  price,
  currency: 'usd',
  benefits: { bookingDiscountBps: 0, lateCancellationFeeBps: null, includedCredits: 0, creditPriceCap: 0 },
  active: true,
});
const PLANS = [plan('bronze', 997), plan('silver', 3_001), plan('gold', 6_203)];
const PLAN_IDS = PLANS.map((p) => p.planId);

type Op =
  | { kind: 'topUp'; student: number; amount: number }
  | { kind: 'subscribe'; student: number; plan: number; via: 0 | 1; crash: boolean }
  | { kind: 'change'; student: number; plan: number; via: 0 | 1; crash: boolean }
  | { kind: 'cancel'; student: number; now: boolean; via: 0 | 1; crash: boolean }
  | { kind: 'retry'; pick: number };

const student = fc.nat({ max: STUDENTS.length - 1 });
const via = fc.constantFrom(0 as const, 1 as const);
const crash = fc.nat({ max: 3 }).map((x) => x === 0);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('topUp' as const),
      student,
      amount: fc.integer({ min: 500, max: 7_000 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('subscribe' as const),
      student,
      plan: fc.nat({ max: 2 }),
      via,
      crash,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('change' as const),
      student,
      plan: fc.nat({ max: 2 }),
      via,
      crash,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('cancel' as const), student, now: fc.boolean(), via, crash }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retry' as const), pick: fc.nat() }) },
);
const caseArb = fc.record({
  refund: fc.constantFrom('prorated' as const, 'none' as const),
  retryDays: fc.constantFrom([], [1], [2, 5]),
  rounds: fc.array(
    fc.record({
      advanceDays: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 25, max: 40 })),
      advanceHours: fc.integer({ min: 0, max: 23 }),
      ops: fc.array(opArb, { minLength: 1, maxLength: 6 }),
    }),
    { minLength: 1, maxLength: 7 },
  ),
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

/** The refusals a request may meet: the domain's, a crash, a conflict that outlasted its retries. */
function expectedFailure(error: unknown): boolean {
  if (error instanceof DomainError) {
    return [
      'invalid_state',
      'insufficient_funds',
      'not_found',
      'validation_failed',
      'limit_exceeded',
    ].includes(error.code);
  }
  return (
    error instanceof ConcurrencyConflictError ||
    (error instanceof Error && error.message.startsWith('crash before'))
  );
}

/** The process managers: every flow step of every event, until nothing new is appended. */
async function finishFlows(store: EventStore, service: LedgerService): Promise<void> {
  const step = flowStepFor(service);
  for (let pass = 0; pass < 5; pass++) {
    const head = await store.headPosition();
    for (const event of await store.readAll({ maxCount: 10_000 })) {
      await step(event).catch((error: unknown) => {
        if (!(error instanceof DomainError)) throw error;
      });
    }
    if ((await store.headPosition()) === head) return;
  }
  throw new Error('flows did not settle in 5 passes');
}

/** What the runs covered, so a property that stopped reaching the flows fails instead of passing. */
const seen = new Map<string, number>();

async function check(store: EventStore, nowMs: number): Promise<void> {
  const fold = new LedgerFold();
  const recorded = await fold.catchUp(store);
  fold.assertTrialBalance('subscriptions property');
  const events = recorded.map((e) => decodeEvent(e));
  const charges = new Set<string>();
  const renewals = new Set<string>();
  const perSub = new Map<
    string,
    { charged: number; refunded: number; recognized: number; student: string }
  >();
  const sub = (id: string, studentId: string) => {
    let s = perSub.get(id);
    if (!s) {
      s = { charged: 0, refunded: 0, recognized: 0, student: studentId };
      perSub.set(id, s);
    }
    return s;
  };
  const recognizedBy = (e: DecodedEvent) => ('recognized' in e.data ? (e.data.recognized as number) : 0);
  for (const e of events) {
    if (e.stream.category === 'subscription') seen.set(e.type, (seen.get(e.type) ?? 0) + 1);
    switch (e.type) {
      case 'WalletSubscriptionCharged': {
        const key = `${e.data.subscriptionId}/${e.data.chargeId}`;
        expect(charges.has(key), `${key} charged twice`).toBe(false);
        charges.add(key);
        sub(e.data.subscriptionId, e.data.studentId).charged += e.data.amount;
        break;
      }
      case 'WalletSubscriptionRefunded':
        sub(e.data.subscriptionId, e.data.studentId).refunded += e.data.amount;
        break;
      case 'WalletSubscriptionEnded':
        sub(e.data.subscriptionId, e.data.studentId).refunded += e.data.refund;
        break;
      case 'SubscriptionRenewed': {
        const key = `${e.data.subscriptionId}/${e.data.period}`;
        expect(renewals.has(key), `period ${key} renewed twice`).toBe(false);
        renewals.add(key);
        sub(e.data.subscriptionId, e.data.studentId).recognized += recognizedBy(e);
        break;
      }
      case 'SubscriptionRevenueRecognized':
        sub(e.data.subscriptionId, e.data.studentId).recognized += e.data.amount;
        break;
      case 'SubscriptionPastDue':
      case 'SubscriptionCanceled':
        sub(e.data.subscriptionId, e.data.studentId).recognized += recognizedBy(e);
        break;
      default:
        break;
    }
  }
  let deferredSum = 0;
  let recognizedSum = 0;
  const live = new Map<string, number>();
  for (const [id, s] of perSub) {
    expect(s.refunded, `refunds of ${id}`).toBeLessThanOrEqual(s.charged);
    const own = s.charged - s.recognized - s.refunded;
    deferredSum += own;
    recognizedSum += s.recognized;
    const stream = await store.readStream(subscriptionStream(T, id), { maxCount: 10_000 }).catch(() => []);
    let state = subscriptionDecider.initialState();
    for (const r of stream) state = subscriptionDecider.evolve(state, decodeEvent(r) as never);
    if (state.status === 'none') {
      // A charge its subscription refused: given back in full.
      expect(own, `refused charge of ${id}`).toBe(0);
      continue;
    }
    expect(own, `ledger deferred of ${id} against its stream`).toBe(subscriptionDeferred(state));
    if (state.status === 'canceled') {
      expect(own, `canceled ${id} still holds deferred revenue`).toBe(0);
      continue;
    }
    live.set(s.student, (live.get(s.student) ?? 0) + 1);
    if (state.status === 'active' && state.bounds) {
      // The scheduler caught up: the unexpired share of the current period, by the rounding rule.
      const bounds = periodBounds(state.anchorMs, state.terms!.interval, state.period);
      const d = elapsedDays(bounds, nowMs);
      expect(state.recognizedThroughDay, `${id} recognised through`).toBe(d);
      let unexpired = 0;
      for (const t of state.tranches) {
        const length = bounds.days - t.startDay;
        const covered = Math.max(0, Math.min(length, d - t.startDay));
        unexpired += t.amount - (length === 0 ? t.amount : Math.floor((t.amount * covered) / length));
      }
      expect(own, `${id} deferred is the unexpired share`).toBe(unexpired);
    }
  }
  expect(fold.creditBalance(T, PLATFORM_DEFERRED_REVENUE_SUBSCRIPTIONS, 'usd')).toBe(deferredSum);
  expect(fold.creditBalance(T, PLATFORM_REVENUE_SUBSCRIPTIONS, 'usd')).toBe(recognizedSum);
  for (const [studentId, n] of live)
    expect(n, `${studentId} has ${n} live subscriptions`).toBeLessThanOrEqual(1);
}

describe('VIP subscriptions: a property over concurrency, crashes and retries', () => {
  it('balances, charges a period once, refunds at most what was paid, deferred = the unexpired share', async () => {
    const property = fc.asyncProperty(caseArb, async ({ refund, retryDays, rounds }) => {
      let nowMs = Date.parse('2026-01-31T08:00:00.000Z');
      const { store, crashNext } = crashingStore(new MemoryEventStore());
      const clock = () => new Date(nowMs);
      const services = [
        createLedgerService({ store, clock }),
        createLedgerService({ store, clock }),
      ] as const;
      const admin: CommandContext = {
        tenantId: T,
        actor: { id: 'adm', role: 'tenant_admin' },
        idempotencyKey: 'plans',
        correlationId: 'p',
        causationId: 'p',
      };
      await services[0].subscriptions.updatePlans(admin, {
        plans: PLANS,
        policy: { dunningRetryDays: retryDays, cancelNowRefund: refund },
      });
      let n = 0;
      const done: Array<() => Promise<unknown>> = [];
      const ctxFor = (studentId: string): CommandContext => {
        const key = `k${++n}`;
        return {
          tenantId: T,
          actor: { id: studentId, role: 'student' },
          idempotencyKey: key,
          correlationId: key,
          causationId: key,
        };
      };
      const current = async (service: LedgerService, studentId: string) =>
        (await service.subscriptions.forStudent(T, studentId))?.subscriptionId;
      for (const round of rounds) {
        nowMs += round.advanceDays * DAY + round.advanceHours * 3_600_000;
        const requests = round.ops.map((op) => async () => {
          switch (op.kind) {
            case 'topUp': {
              const studentId = STUDENTS[op.student]!;
              const topUpId = `tu${++n}`;
              const c = ctxFor(studentId);
              await services[0].initiateTopUp(c, {
                topUpId,
                studentId,
                amount: { amount: op.amount, currency: 'usd' },
              });
              await services[0].succeedTopUp(
                { ...c, idempotencyKey: `pi:${topUpId}` },
                { topUpId, paymentIntentId: `pi_${topUpId}`, amountReceived: op.amount, currency: 'usd' },
              );
              return;
            }
            case 'subscribe': {
              const studentId = STUDENTS[op.student]!;
              const c = ctxFor(studentId);
              const service = services[op.via];
              const run = () => service.subscriptions.subscribe(c, { studentId, planId: PLAN_IDS[op.plan]! });
              if (op.crash)
                crashNext.add(subscriptionStream(T, deterministicId('subscription', T, c.idempotencyKey)));
              done.push(run);
              await run();
              return;
            }
            case 'change': {
              const studentId = STUDENTS[op.student]!;
              const service = services[op.via];
              const id = await current(service, studentId);
              if (!id) return;
              const c = ctxFor(studentId);
              if (op.crash) crashNext.add(subscriptionStream(T, id));
              const run = () =>
                service.subscriptions.changePlan(c, { subscriptionId: id, planId: PLAN_IDS[op.plan]! });
              done.push(run);
              await run();
              return;
            }
            case 'cancel': {
              const studentId = STUDENTS[op.student]!;
              const service = services[op.via];
              const id = await current(service, studentId);
              if (!id) return;
              const c = ctxFor(studentId);
              if (op.crash) crashNext.add(walletStream(T, studentId));
              const run = () => service.subscriptions.cancel(c, { subscriptionId: id, atPeriodEnd: !op.now });
              done.push(run);
              await run();
              return;
            }
            case 'retry': {
              const again = done[op.pick % Math.max(1, done.length)];
              if (again) await again();
              return;
            }
          }
        });
        const results = await Promise.allSettled(requests.map((r) => r()));
        for (const r of results) {
          if (r.status === 'rejected' && !expectedFailure(r.reason)) throw r.reason;
        }
        crashNext.clear();
        await finishFlows(store, services[1]);
        // The scheduler, from either process in turn, until it finds nothing to do (a renewal's next
        // tasks are seen by the next pass), then once more: that pass must append nothing.
        for (let pass = 0; ; pass++) {
          expect(pass, 'the scheduler did not settle').toBeLessThan(10);
          const head = await store.headPosition();
          await services[(round.advanceDays + pass) % 2]!.runDueTasks(T, clock());
          await finishFlows(store, services[pass % 2]!);
          if ((await store.headPosition()) === head) break;
        }
        await check(store, nowMs);
      }
    });
    await fc.assert(property, { numRuns: RUNS });
    // Coverage is a property of the generator, not of one random seed (a random 60 runs once reached no
    // SubscriptionPastDue): checked over a fixed seed's runs, after the random ones.
    if (RUNS < 60) return;
    seen.clear();
    await fc.assert(property, { numRuns: 60, seed: COVERAGE_SEED });
    for (const type of [
      'SubscriptionRenewed',
      'SubscriptionPastDue',
      'SubscriptionUpgraded',
      'SubscriptionCanceled',
    ]) {
      expect(seen.get(type) ?? 0, `no run reached ${type}: ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
    }
  }, 240_000);
});
