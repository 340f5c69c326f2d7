import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { FLOW_TRIGGER_TYPES, flowStepFor } from '../../src/commands/processManagers.js';
import { DomainError } from '../../src/domain/errors.js';
import { creditsAvailable, referralCodeOf, referralDecider } from '../../src/domain/referral.js';
import { referralStream } from '../../src/domain/streams.js';
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
 * Referral credits under concurrency and crashes (docs/ledger-flows.md, "Referral credits"): random
 * sign-ups with codes (duplicates, self-referrals, students who booked before), bursts of completed
 * bookings run concurrently through 2-3 processes (LedgerService instances with their own caches on one
 * store), full and partial refunds, a month passing, and requests dying before any referral event,
 * finished by the process managers. Against a simple model: the links accepted, one qualification per
 * referee, per referrer and month exactly min(cap, referees qualifying) rewards, clawbacks of full refunds
 * within the window, every student's credits and the promotions expense; LedgerFold asserts a zero trial
 * balance and credits never below zero at every position.
 */

const T = 'refprop';
const DAY = 86_400_000;
const START = Date.parse('2026-04-10T00:00:00.000Z');
const REFEREE_CREDIT = 300;
const REFERRER_CREDIT = 700;
const PRICE = 2_000;
const CLAWBACK_DAYS = 30;
const REFERRERS = ['r0', 'r1'];
const REFEREES = ['s0', 's1', 's2', 's3', 's4'];
let seq = 0;
const ctx = (role = 'student', id = `${role}-1`): CommandContext => {
  const key = `key-${++seq}`;
  return { tenantId: T, actor: { id, role }, idempotencyKey: key, correlationId: key, causationId: key };
};

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

type Op =
  | { kind: 'link'; referee: number; referrer: number; by: number }
  | { kind: 'selfLink'; referrer: number }
  | { kind: 'burst'; referees: number[] }
  | { kind: 'refund'; referee: number; full: boolean }
  | { kind: 'nextMonth' }
  | { kind: 'crash'; on: string };

const CRASH_ON = [
  'ReferralQualified',
  'ReferralRewardGranted',
  'ReferralClawedBack',
  'ReferralRewardClawedBack',
];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('link' as const),
      referee: fc.nat(REFEREES.length - 1),
      // A referee may also use another referee's code (referees are students too).
      referrer: fc.nat(REFERRERS.length + REFEREES.length - 1),
      by: fc.nat(2),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('selfLink' as const), referrer: fc.nat(1) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('burst' as const),
      // Duplicates: the same referee completing two bookings at once.
      referees: fc.array(fc.nat(REFEREES.length - 1), { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      referee: fc.nat(REFEREES.length - 1),
      full: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'nextMonth' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('crash' as const), on: fc.constantFrom(...CRASH_ON) }),
  },
);

/** The model: what the rules say should have happened, from the operations alone. */
interface ModelStudent {
  referrer: string | null;
  /** Completed bookings, oldest first, with when and whether refunded in full. */
  bookings: Array<{ id: string; at: number; fullyRefunded: boolean; refundedAt: number | null }>;
  completedBeforeLink: boolean;
}

describe('referral credits (property)', () => {
  it('random sign-ups, concurrent qualifications, refunds and crashes keep the caps, one reward per referee and a zero trial balance', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 2, max: 3 }),
        fc.array(opArb, { minLength: 4, maxLength: 18 }),
        async (cap, processes, ops) => {
          const memory = new MemoryEventStore();
          const store = new CrashingStore(memory);
          let now = START;
          const clock = () => new Date(now);
          const services = Array.from({ length: processes }, () => createLedgerService({ store, clock }));
          const first = services[0]!;
          await first.updateSettings(ctx('tenant_admin'), {
            referralRefereeCredit: REFEREE_CREDIT,
            referralReferrerCredit: REFERRER_CREDIT,
            referralMonthlyCap: cap,
            referralClawbackDays: CLAWBACK_DAYS,
          });
          const model = new Map<string, ModelStudent>(
            [...REFERRERS, ...REFEREES].map((s) => [
              s,
              { referrer: null, bookings: [], completedBeforeLink: false },
            ]),
          );
          for (const s of REFEREES) {
            const topUpId = `tu-${s}`;
            await first.initiateTopUp(ctx(), {
              topUpId,
              studentId: s,
              amount: { amount: 1_000_000, currency: 'usd' },
            });
            await first.succeedTopUp(ctx('service'), {
              topUpId,
              paymentIntentId: `pi_${topUpId}`,
              amountReceived: 1_000_000,
              currency: 'usd',
            });
          }
          const codeOf = (i: number) => referralCodeOf(T, [...REFERRERS, ...REFEREES][i]!);
          let bookings = 0;
          let crashed = false;

          for (const op of ops) {
            switch (op.kind) {
              case 'link': {
                const referee = REFEREES[op.referee]!;
                const referrer = [...REFERRERS, ...REFEREES][op.referrer]!;
                const m = model.get(referee)!;
                const expected =
                  referrer === referee
                    ? 'self_referral'
                    : m.referrer !== null
                      ? m.referrer === referrer
                        ? 'same'
                        : 'already_referred'
                      : m.bookings.length > 0
                        ? 'not_new'
                        : 'linked';
                const outcome = await services[op.by % processes]!.referrals.linkReferrer(
                  ctx('student', referee),
                  { studentId: referee, code: codeOf(op.referrer) },
                ).then(
                  (r) => (r.linked ? 'linked' : 'same'),
                  (e: unknown) => {
                    if (!(e instanceof DomainError) || e.code !== 'referral_rejected') throw e;
                    return String(e.details.reason);
                  },
                );
                expect(outcome, `${referee} -> ${referrer}`).toBe(expected);
                if (expected === 'linked') m.referrer = referrer;
                break;
              }
              case 'selfLink': {
                const r = REFERRERS[op.referrer]!;
                await expect(
                  first.referrals.linkReferrer(ctx('student', r), {
                    studentId: r,
                    code: codeOf(op.referrer),
                  }),
                ).rejects.toMatchObject({ code: 'referral_rejected', details: { reason: 'self_referral' } });
                break;
              }
              case 'burst': {
                const placed = [];
                for (const i of op.referees) {
                  const referee = REFEREES[i]!;
                  const bookingId = `b${++bookings}`;
                  await first.placeBooking(ctx('student', referee), {
                    bookingId,
                    studentId: referee,
                    tutorId: 'u1',
                    price: { amount: PRICE, currency: 'usd' },
                    scheduledAt: new Date(now + 3 * DAY).toISOString(),
                  });
                  placed.push({ referee, bookingId });
                }
                // Completions at once, spread over the processes: referees of one referrer race for its cap.
                const outcomes = await Promise.allSettled(
                  placed.map(({ bookingId }, k) =>
                    services[k % processes]!.completeBooking(ctx('tutor', 'u1'), { bookingId }),
                  ),
                );
                for (const o of outcomes) {
                  if (o.status === 'rejected') {
                    expect(o.reason).toBeInstanceOf(EventStoreUnavailableError);
                    crashed = true;
                  }
                }
                for (const { referee, bookingId } of placed) {
                  model
                    .get(referee)!
                    .bookings.push({ id: bookingId, at: now, fullyRefunded: false, refundedAt: null });
                }
                break;
              }
              case 'refund': {
                const m = model.get(REFEREES[op.referee]!)!;
                const booking = m.bookings.find((b) => !b.fullyRefunded);
                if (!booking) break;
                await first
                  .refundBooking(ctx('finance_admin', 'fin'), {
                    bookingId: booking.id,
                    ...(op.full ? {} : { amount: 1 }),
                    reason: 'property',
                  })
                  .catch((e: unknown) => {
                    if (!(e instanceof EventStoreUnavailableError)) throw e;
                    crashed = true;
                  });
                // A partial refund of 1 leaves the rest; refunding "in full" takes what is left.
                if (op.full) {
                  booking.fullyRefunded = true;
                  booking.refundedAt = now;
                }
                break;
              }
              case 'nextMonth':
                now += 31 * DAY;
                break;
              case 'crash':
                store.crashOn = op.on;
                break;
            }
            if (crashed) {
              await finishFlows(first, store);
              crashed = false;
            }
          }
          store.crashOn = null;
          await finishFlows(first, store);

          // The model's verdicts. Qualification: the first completed booking after the link; within a
          // burst several of one referee complete at once, so which one qualified is read back.
          const states = new Map(
            await Promise.all(
              [...REFERRERS, ...REFEREES].map(
                async (s) =>
                  [s, (await first.handler.load(referralDecider, referralStream(T, s))).state] as const,
              ),
            ),
          );
          const expectedCredits = new Map<string, number>([...model.keys()].map((s) => [s, 0]));
          const qualifiers = new Map<string, Array<{ referee: string; at: number; clawedBack: boolean }>>();
          for (const referee of REFEREES) {
            const m = model.get(referee)!;
            const state = states.get(referee)!;
            expect(state.referredBy?.referrerId ?? null, referee).toBe(m.referrer);
            const shouldQualify = m.referrer !== null && m.bookings.length > 0;
            expect(state.qualification !== null, `${referee} qualified`).toBe(shouldQualify);
            if (!shouldQualify || state.qualification === null) continue;
            const q = state.qualification;
            const booking = m.bookings.find((b) => b.id === q.bookingId);
            expect(booking, `${referee} qualified with one of its bookings`).toBeDefined();
            // The first burst after the link that had one of its bookings.
            expect(booking!.at).toBe(m.bookings[0]!.at);
            const clawedBack =
              booking!.fullyRefunded && booking!.refundedAt! <= booking!.at + CLAWBACK_DAYS * DAY;
            expect(q.clawedBack, `${referee} clawed back`).toBe(clawedBack);
            if (!clawedBack) expectedCredits.set(referee, expectedCredits.get(referee)! + REFEREE_CREDIT);
            const list = qualifiers.get(m.referrer!) ?? [];
            list.push({ referee, at: booking!.at, clawedBack });
            qualifiers.set(m.referrer!, list);
          }
          let referrerCredits = 0;
          for (const [referrer, list] of qualifiers) {
            const state = states.get(referrer)!;
            // One record per referee, granted or capped.
            expect([...state.rewards.keys()].sort()).toEqual(list.map((q) => q.referee).sort());
            const byMonth = new Map<number, typeof list>();
            for (const q of list) byMonth.set(q.at, [...(byMonth.get(q.at) ?? []), q]);
            for (const [at, inMonth] of byMonth) {
              const granted = inMonth.filter((q) => state.rewards.get(q.referee)!.status !== 'capped');
              expect(granted.length, `${referrer} rewards at ${new Date(at).toISOString()}`).toBe(
                Math.min(cap, inMonth.length),
              );
            }
            for (const q of list) {
              const status = state.rewards.get(q.referee)!.status;
              if (status === 'capped') continue;
              expect(status, `${referrer}'s reward for ${q.referee}`).toBe(
                q.clawedBack ? 'clawed_back' : 'granted',
              );
              if (!q.clawedBack) {
                expectedCredits.set(referrer, expectedCredits.get(referrer)! + REFERRER_CREDIT);
                referrerCredits += REFERRER_CREDIT;
              }
            }
          }
          for (const [s, amount] of expectedCredits) {
            expect(creditsAvailable(states.get(s)!, 'usd'), `${s}'s credits`).toBe(amount);
          }
          // The ledger: balanced at every position (LedgerFold), credits as the model says, paid by promotions.
          const fold = new LedgerFold();
          await fold.catchUp(memory);
          const totals = (account: string) => fold.totals.get(LedgerFold.key(T, account, 'usd'));
          let credits = 0;
          for (const s of model.keys()) {
            const t = totals(`student:${s}:credits`);
            const balance = t ? t.creditsPosted - t.debitsPosted : 0;
            expect(balance, `student:${s}:credits`).toBe(expectedCredits.get(s));
            credits += balance;
          }
          const promotions = totals('platform:expense:promotions');
          expect(promotions ? promotions.debitsPosted - promotions.creditsPosted : 0).toBe(credits);
          expect(credits).toBeGreaterThanOrEqual(referrerCredits);
        },
      ),
      { numRuns: 60 },
    );
  }, 240_000);
});
