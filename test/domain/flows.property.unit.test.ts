import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  accountInfo,
  bookingClearing,
  payoutClearing,
  studentWallet,
  tutorEarningsAvailable,
  tutorEarningsPending,
  tutorReceivable,
} from '../../src/domain/accounts.js';
import {
  type AccountTotals,
  applyPosting,
  available,
  emptyTotals,
  postedBalance,
} from '../../src/domain/balances.js';
import {
  type BookingCommand,
  type BookingEvent,
  type BookingState,
  bookingDecider,
} from '../../src/domain/booking.js';
import type { Decider } from '../../src/domain/decider.js';
import { DomainError } from '../../src/domain/errors.js';
import { decodeEvent } from '../../src/domain/events.js';
import { bookingHoldId, deterministicId, payoutHoldId } from '../../src/domain/ids.js';
import { assertBalanced, type JournalEntry } from '../../src/domain/journal.js';
import { type PayoutEvent, type PayoutState, payoutDecider } from '../../src/domain/payout.js';
import { type StreamCategory, streamName } from '../../src/domain/streams.js';
import { bookingPolicyFrom, defaultTenantSettings } from '../../src/domain/tenantSettings.js';
import {
  type TutorCommand,
  type TutorEvent,
  type TutorState,
  tutorAvailable,
  tutorDecider,
} from '../../src/domain/tutor.js';
import {
  type WalletCommand,
  type WalletEvent,
  type WalletState,
  walletAvailable,
  walletDecider,
} from '../../src/domain/wallet.js';
import { entryOf } from './spec.js';

/**
 * A pure model of the flows across the wallet, booking, tutor and payout deciders, run synchronously in
 * the order the process managers use (docs/ledger-flows.md). After every step, every entry produced is
 * applied to one global ledger and the ledger invariants are checked: each entry balances, the trial
 * balance is zero, constrained accounts never go below zero and match their owning stream's state,
 * clearing accounts return to zero when their flow is done, a rejected first step appends nothing, and
 * every event decided decodes as the read side decodes it.
 * The command layer's model-based test covers the same flows over the event store and concurrency.
 */

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150);

const CATEGORY = new Map<unknown, StreamCategory>([
  [walletDecider, 'wallet'],
  [bookingDecider, 'booking'],
  [tutorDecider, 'tutor'],
  [payoutDecider, 'payout'],
]);

/** A decider never emits an event the read side cannot decode: as stored (JSON), it decodes. */
function expectDecodable(decider: unknown, key: string, event: { type: string; data: unknown }): void {
  const category = CATEGORY.get(decider);
  if (!category) throw new Error('unknown decider');
  const decoded = decodeEvent({
    id: deterministicId('flows-event', key, event.type),
    type: event.type,
    streamName: streamName(category, T, key),
    position: 0n,
    data: JSON.parse(JSON.stringify(event.data)),
    metadata: {
      tenantId: T,
      correlationId: 'c',
      causationId: 'c',
      actor: { id: 'a', role: 'service' },
      idempotencyKey: 'k',
      occurredAt: new Date(START).toISOString(),
      schemaVersion: 1,
    },
  });
  expect(decoded.type).toBe(event.type);
}
const T = 't1';
const SETTINGS = defaultTenantSettings();
const POLICY = bookingPolicyFrom(SETTINGS);
const HOUR = 3_600_000;
const START = Date.parse('2026-03-01T00:00:00.000Z');

type Op =
  | { kind: 'topUp'; s: number; amount: number }
  | { kind: 'book'; s: number; t: number; price: number; inHours: number }
  | { kind: 'complete' | 'cancel' | 'expire'; b: number }
  | { kind: 'refund'; b: number; amount: number | null }
  | { kind: 'advance'; hours: number }
  | { kind: 'clear' }
  | { kind: 'payout'; t: number; amount: number }
  | { kind: 'resolvePayout'; p: number; paid: boolean }
  | { kind: 'adjustWallet'; s: number; amount: number; credit: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('topUp' as const),
      s: fc.nat(1),
      amount: fc.integer({ min: 1, max: 20_000 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('book' as const),
      s: fc.nat(1),
      t: fc.nat(1),
      price: fc.integer({ min: 1, max: 9000 }),
      inHours: fc.integer({ min: 1, max: 96 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constantFrom('complete' as const, 'complete' as const, 'cancel' as const, 'expire' as const),
      b: fc.nat(20),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      b: fc.nat(20),
      amount: fc.option(fc.integer({ min: 1, max: 6000 }), { nil: null }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      hours: fc.integer({ min: 1, max: 24 * 10 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('payout' as const),
      t: fc.nat(1),
      amount: fc.integer({ min: 500, max: 4000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('resolvePayout' as const), p: fc.nat(10), paid: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('adjustWallet' as const),
      s: fc.nat(1),
      amount: fc.integer({ min: 1, max: 3000 }),
      credit: fc.boolean(),
    }),
  },
);

class World {
  now = START;
  seq = 0;
  ledger = new Map<string, AccountTotals>();
  wallets = new Map<string, WalletState>();
  tutors = new Map<string, TutorState>();
  bookings = new Map<string, BookingState>();
  payouts = new Map<string, PayoutState>();
  bookingIds: string[] = [];
  payoutIds: string[] = [];
  openRefundClearings = new Set<string>();
  entriesPosted = 0;

  iso(ms = this.now): string {
    return new Date(ms).toISOString();
  }
  nextId(prefix: string): string {
    this.seq += 1;
    return `${prefix}${this.seq}`;
  }
  entryId(): string {
    this.seq += 1;
    return deterministicId('flows', String(this.seq));
  }

  /** decide + evolve one stream; events' entries go to the global ledger. */
  run<C, E extends { type: string; data: unknown }, S>(
    decider: Decider<C, E, S>,
    states: Map<string, S>,
    key: string,
    command: C,
  ): E[] {
    const state = states.get(key) ?? decider.initialState();
    const events = decider.decide(command, state);
    let next = state;
    for (const event of events) {
      expectDecodable(decider, key, event);
      next = decider.evolve(next, event);
      const entry = entryOf(event);
      if (entry) this.post(entry);
    }
    states.set(key, next);
    return events;
  }

  post(entry: JournalEntry): void {
    assertBalanced(entry);
    this.entriesPosted += 1;
    for (const posting of entry.postings) {
      this.ledger.set(
        posting.account,
        applyPosting(this.ledger.get(posting.account) ?? emptyTotals(), posting),
      );
    }
  }

  wallet(s: string, command: WalletCommand): WalletEvent[] {
    return this.run(walletDecider, this.wallets, s, command);
  }
  tutor(t: string, command: TutorCommand): TutorEvent[] {
    return this.run(tutorDecider, this.tutors, t, command);
  }
  booking(b: string, command: BookingCommand): BookingEvent[] {
    return this.run(bookingDecider, this.bookings, b, command);
  }

  totals(account: string): AccountTotals {
    return this.ledger.get(account) ?? emptyTotals();
  }
}

/** Runs a flow whose first step may be rejected (nothing appended); later steps must never fail. */
function attempt(world: World, flow: () => void): 'ok' | 'rejected' {
  const before = world.entriesPosted;
  try {
    flow();
    return 'ok';
  } catch (error) {
    if (error instanceof DomainError) {
      expect(world.entriesPosted, 'a rejected command appended nothing').toBe(before);
      return 'rejected';
    }
    throw error;
  }
}

function step(world: World, op: Op): void {
  const studentId = (i: number) => `s${i}`;
  const tutorId = (i: number) => `t${i}`;
  const pickBooking = (i: number) => world.bookingIds[i % Math.max(1, world.bookingIds.length)];
  switch (op.kind) {
    case 'topUp': {
      const topUpId = world.nextId('tu');
      world.wallet(studentId(op.s), {
        type: 'CreditTopUp',
        studentId: studentId(op.s),
        topUpId,
        paymentIntentId: `pi_${topUpId}`,
        amount: op.amount,
        currency: 'usd',
        entryId: world.entryId(),
      });
      return;
    }
    case 'book': {
      const bookingId = world.nextId('b');
      const s = studentId(op.s);
      const t = tutorId(op.t);
      const scheduledAt = world.iso(world.now + op.inHours * HOUR);
      const holdId = bookingHoldId(T, bookingId);
      const walletBefore = world.wallets.get(s) ?? walletDecider.initialState();
      const affordable = walletAvailable(walletBefore) >= op.price;
      const result = attempt(world, () => {
        world.wallet(s, {
          type: 'PlaceWalletHold',
          studentId: s,
          holdId,
          bookingId,
          tutorId: t,
          amount: op.price,
          currency: 'usd',
          scheduledAt,
          placedAt: world.iso(world.now),
          timeZone: 'UTC',
          entryId: world.entryId(),
        });
        world.booking(bookingId, {
          type: 'PlaceBooking',
          bookingId,
          studentId: s,
          tutorId: t,
          price: op.price,
          currency: 'usd',
          scheduledAt,
          holdId,
          policy: POLICY,
          placedAt: world.iso(),
        });
      });
      expect(result === 'ok').toBe(affordable);
      if (result === 'ok') world.bookingIds.push(bookingId);
      return;
    }
    case 'complete': {
      const b = pickBooking(op.b);
      if (!b) return;
      attempt(world, () => {
        const [done] = world.booking(b, { type: 'CompleteBooking', completedAt: world.iso() });
        if (done?.type !== 'BookingCompleted') throw new Error('expected BookingCompleted');
        const d = done.data;
        world.wallet(d.studentId, {
          type: 'CaptureWalletHold',
          studentId: d.studentId,
          holdId: d.holdId,
          captured: d.captured,
          tutorShare: d.tutorShare,
          commission: d.commission,
          entryId: world.entryId(),
        });
        world.tutor(d.tutorId, {
          type: 'RecordEarnings',
          tutorId: d.tutorId,
          bookingId: b,
          amount: d.tutorShare,
          currency: 'usd',
          source: 'completion',
          earnedAt: d.completedAt,
          clearableAt: d.earningsClearableAt,
        });
      });
      return;
    }
    case 'cancel':
    case 'expire': {
      const b = pickBooking(op.b);
      if (!b) return;
      attempt(world, () => {
        const [ended] =
          op.kind === 'cancel'
            ? world.booking(b, { type: 'CancelBooking', reason: 'changed plans', cancelledAt: world.iso() })
            : world.booking(b, { type: 'ExpireBooking', now: world.iso() });
        if (ended?.type !== 'BookingCancelled' && ended?.type !== 'BookingExpired')
          throw new Error('expected end');
        const fee = ended.type === 'BookingCancelled' ? ended.data : { fee: 0, tutorShare: 0, commission: 0 };
        world.wallet(ended.data.studentId, {
          type: 'ReleaseWalletHold',
          studentId: ended.data.studentId,
          holdId: ended.data.holdId,
          reason: ended.type === 'BookingCancelled' ? 'cancelled' : 'expired',
          fee: fee.fee,
          tutorShare: fee.tutorShare,
          commission: fee.commission,
          entryId: world.entryId(),
        });
        if (ended.type === 'BookingCancelled' && ended.data.tutorShare > 0) {
          world.tutor(ended.data.tutorId, {
            type: 'RecordEarnings',
            tutorId: ended.data.tutorId,
            bookingId: b,
            amount: ended.data.tutorShare,
            currency: 'usd',
            source: 'cancellation_fee',
            earnedAt: ended.data.cancelledAt,
            clearableAt: ended.data.earningsClearableAt!,
          });
        }
      });
      return;
    }
    case 'refund': {
      const b = pickBooking(op.b);
      if (!b) return;
      attempt(world, () => {
        const [refunded] = world.booking(b, {
          type: 'RefundBooking',
          refundId: world.nextId('r'),
          amount: op.amount,
          reason: 'complaint upheld',
          refundedAt: world.iso(),
        });
        if (refunded?.type !== 'BookingRefunded') throw new Error('expected BookingRefunded');
        const d = refunded.data;
        world.wallet(d.studentId, {
          type: 'RefundToWallet',
          studentId: d.studentId,
          refundId: d.refundId,
          bookingId: b,
          amount: d.amount,
          tutorPart: d.tutorPart,
          commissionPart: d.commissionPart,
          currency: 'usd',
          entryId: world.entryId(),
        });
        if (d.tutorPart > 0) {
          world.tutor(d.tutorId, {
            type: 'ReverseEarnings',
            tutorId: d.tutorId,
            bookingId: b,
            refundId: d.refundId,
            amount: d.tutorPart,
            currency: 'usd',
            entryId: world.entryId(),
          });
        }
        world.openRefundClearings.add(d.refundId);
      });
      return;
    }
    case 'advance':
      world.now += op.hours * HOUR;
      return;
    case 'clear': {
      // The scheduler's sweep: every due clearing of every tutor.
      for (const [t, state] of world.tutors) {
        for (const [bookingId, earnings] of state.earnings.entries()) {
          if (earnings.status === 'pending' && Date.parse(earnings.clearableAt) <= world.now) {
            world.tutor(t, {
              type: 'ClearEarnings',
              tutorId: t,
              bookingId,
              now: world.iso(),
              entryId: world.entryId(),
            });
          }
        }
      }
      return;
    }
    case 'payout': {
      const t = tutorId(op.t);
      const payoutId = world.nextId('p');
      const state = world.tutors.get(t) ?? tutorDecider.initialState();
      const allowed =
        op.amount >= SETTINGS.payoutMin && op.amount <= tutorAvailable(state) && state.currency !== null;
      const result = attempt(world, () => {
        const holdId = payoutHoldId(T, payoutId);
        world.tutor(t, {
          type: 'PlacePayoutHold',
          tutorId: t,
          payoutId,
          holdId,
          amount: op.amount,
          currency: 'usd',
          payoutMin: SETTINGS.payoutMin,
          entryId: world.entryId(),
        });
        world.run(payoutDecider, world.payouts, payoutId, {
          type: 'RequestPayout',
          payoutId,
          tutorId: t,
          amount: op.amount,
          currency: 'usd',
          holdId,
          requestedAt: world.iso(),
        });
      });
      expect(result === 'ok').toBe(allowed);
      if (result === 'ok') world.payoutIds.push(payoutId);
      return;
    }
    case 'resolvePayout': {
      const payoutId = world.payoutIds[op.p % Math.max(1, world.payoutIds.length)];
      if (!payoutId) return;
      attempt(world, () => {
        const payout = world.payouts.get(payoutId)!;
        const [event] = world.run<Parameters<typeof payoutDecider.decide>[0], PayoutEvent, PayoutState>(
          payoutDecider,
          world.payouts,
          payoutId,
          op.paid
            ? { type: 'MarkPayoutPaid', stripeTransferId: `tr_${payoutId}`, paidAt: world.iso() }
            : { type: 'MarkPayoutFailed', reason: 'bank rejected', failedAt: world.iso() },
        );
        expect(event).toBeDefined();
        world.tutor(payout.tutorId!, {
          type: op.paid ? 'PostPayoutHold' : 'ReleasePayoutHold',
          tutorId: payout.tutorId!,
          payoutId,
          reason: 'bank rejected',
          entryId: world.entryId(),
        } as TutorCommand);
      });
      return;
    }
    case 'adjustWallet': {
      const s = studentId(op.s);
      attempt(world, () => {
        world.wallet(s, {
          type: 'AdjustWallet',
          studentId: s,
          adjustmentId: world.nextId('adj'),
          direction: op.credit ? 'credit' : 'debit',
          amount: op.amount,
          currency: 'usd',
          reason: 'support goodwill',
          actor: { id: 'fa1', role: 'finance_admin' },
          entryId: world.entryId(),
        });
      });
      return;
    }
  }
}

function check(condition: boolean, message: () => string): void {
  // Plain checks, not expect(): this runs after every step of every run and must stay cheap.
  if (!condition) throw new Error(`ledger invariant failed: ${message()}`);
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function checkInvariants(world: World): void {
  let debitsPosted = 0;
  let creditsPosted = 0;
  let debitsPending = 0;
  let creditsPending = 0;
  for (const [account, totals] of world.ledger) {
    debitsPosted += totals.debitsPosted;
    creditsPosted += totals.creditsPosted;
    debitsPending += totals.debitsPending;
    creditsPending += totals.creditsPending;
    const info = accountInfo(account);
    if (info.constraint) {
      const value = available(totals, info.normalSide);
      check(value >= info.constraint.minAvailable, () => `${account} available ${value} below its limit`);
    }
  }
  check(debitsPosted === creditsPosted, () => `posted trial balance ${debitsPosted} != ${creditsPosted}`);
  check(
    debitsPending === creditsPending,
    () => `pending trial balance ${debitsPending} != ${creditsPending}`,
  );

  for (const [s, state] of world.wallets) {
    check(
      same(state.totals, world.totals(studentWallet(s))),
      () => `wallet ${s} state differs from the ledger`,
    );
  }
  for (const [t, state] of world.tutors) {
    check(same(state.availableTotals, world.totals(tutorEarningsAvailable(t))), () => `tutor ${t} available`);
    check(
      state.pending === postedBalance(world.totals(tutorEarningsPending(t)), 'credit'),
      () => `tutor ${t} pending`,
    );
    check(
      state.receivable === postedBalance(world.totals(tutorReceivable(t)), 'debit'),
      () => `tutor ${t} receivable`,
    );
  }
  for (const [b, state] of world.bookings) {
    const clearing = world.totals(bookingClearing(b));
    const expected = state.status === 'held' ? state.price : 0;
    check(
      clearing.creditsPending === expected,
      () => `${b} clearing pending ${clearing.creditsPending} != ${expected}`,
    );
    check(clearing.debitsPosted + clearing.creditsPosted === 0, () => `${b} clearing has posted money`);
    check(state.refunded <= state.captured, () => `${b} refunded more than captured`);
  }
  for (const refundId of world.openRefundClearings) {
    const totals = world.totals(`clearing:refund:${refundId}`);
    check(totals.debitsPosted === totals.creditsPosted, () => `refund clearing ${refundId} not back to zero`);
  }
  for (const [p, state] of world.payouts) {
    const totals = world.totals(payoutClearing(p));
    const open = state.status === 'requested' || state.status === 'submitted';
    check(totals.creditsPending === (open ? state.amount : 0), () => `payout clearing ${p}`);
  }
}

/** FLOW_STATS=1 prints how often each flow ended in each state, to check the generator reaches them all. */
const STATS = new Map<string, number>();

describe('flows across deciders (pure model)', () => {
  it('property: random flows keep the ledger balanced, constrained accounts >= 0, states equal to the ledger', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), (ops) => {
        const world = new World();
        for (const op of ops) {
          step(world, op);
          checkInvariants(world);
        }
        if (process.env.FLOW_STATS) {
          const tally = (k: string, n: number) => STATS.set(k, (STATS.get(k) ?? 0) + n);
          for (const b of world.bookings.values()) tally(`booking:${b.status}`, 1);
          for (const b of world.bookings.values()) tally('refunded>0', b.refunded > 0 ? 1 : 0);
          for (const t of world.tutors.values()) {
            for (const e of Object.values(t.earnings)) tally(`earnings:${e.status}`, 1);
            tally('receivable>0', t.receivable > 0 ? 1 : 0);
            tally('paidOut>0', t.paidOut > 0 ? 1 : 0);
          }
        }
      }),
      { numRuns: RUNS },
    );
    if (process.env.FLOW_STATS) console.log(Object.fromEntries(STATS));
  });
});
