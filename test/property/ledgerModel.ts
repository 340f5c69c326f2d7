import fc from 'fast-check';
import { expect } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { IdempotencyKeyReusedError } from '../../src/commands/errors.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { DomainError } from '../../src/domain/errors.js';
import type { EventStore, RecordedEvent } from '../../src/eventstore/port.js';
import { LedgerFold } from './ledgerFold.js';

/**
 * Model-based test of the whole write side: random sequences of commands run against the real
 * LedgerService on a real store, and after every step the outcome (success or the exact rejection code)
 * and the balances are compared with a small reference model written from docs/ledger-flows.md, while
 * LedgerFold checks the invariants of docs/architecture.md over every event's entry.
 */
const CUR = 'usd';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START_MS = Date.parse('2026-01-01T00:00:00.000Z');
const STUDENTS = ['s0', 's1', 's2'] as const;
const TUTORS = ['u0', 'u1'] as const;
const PAYOUT_MIN = 1000;

// ---------------------------------------------------------------------------------------------------
// Operations

export type Op =
  | { kind: 'topUp'; student: number; amount: number; succeed: boolean; redeliver: 0 | 1 | 2 }
  | { kind: 'book'; student: number; tutor: number; price: number; inHours: number }
  | { kind: 'complete'; booking: number }
  | { kind: 'cancel'; booking: number }
  | { kind: 'refund'; booking: number; amount: number | null }
  | { kind: 'advance'; hours: number }
  | { kind: 'payout'; tutor: number; fraction: number; mode: 'all' | 'part' | 'over' | 'belowMin' }
  | { kind: 'settlePayout'; payout: number; paid: boolean }
  | { kind: 'setCommission'; bps: number }
  | { kind: 'configure'; earningsHoldDays: number }
  | { kind: 'repeatLast' }
  | { kind: 'reuseKey' }
  | { kind: 'burstBookings'; student: number; tutor: number; prices: number[] }
  | { kind: 'completeVsCancel'; booking: number }
  | { kind: 'duplicateBurst'; booking: number; copies: number }
  | { kind: 'burstRefunds'; booking: number; amounts: number[] };

const student = fc.integer({ min: 0, max: STUDENTS.length - 1 });
const tutor = fc.integer({ min: 0, max: TUTORS.length - 1 });
const index = fc.nat({ max: 50 });
const price = fc.integer({ min: 100, max: 6000 });

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('topUp' as const),
      student,
      // Mostly within the limits (500..1,000,000), sometimes below the minimum.
      amount: fc.oneof(
        { arbitrary: fc.integer({ min: 500, max: 20_000 }), weight: 9 },
        { arbitrary: fc.integer({ min: 1, max: 499 }), weight: 1 },
      ),
      succeed: fc.oneof(
        { arbitrary: fc.constant(true), weight: 4 },
        { arbitrary: fc.constant(false), weight: 1 },
      ),
      redeliver: fc.constantFrom(0 as const, 1 as const, 2 as const),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('book' as const),
      student,
      tutor,
      price,
      inHours: fc.integer({ min: 1, max: 240 }),
    }),
    weight: 5,
  },
  { arbitrary: fc.record({ kind: fc.constant('complete' as const), booking: index }), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant('cancel' as const), booking: index }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      booking: index,
      amount: fc.option(fc.integer({ min: 1, max: 3000 }), { nil: null }),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      // Short steps (free vs late cancellation) and week-long jumps (expiry, clearing).
      hours: fc.oneof(fc.integer({ min: 1, max: 48 }), fc.integer({ min: 24 * 7, max: 24 * 9 })),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('payout' as const),
      tutor,
      fraction: fc.double({ min: 0.05, max: 1, noNaN: true }),
      mode: fc.constantFrom(
        'all' as const,
        'part' as const,
        'part' as const,
        'over' as const,
        'belowMin' as const,
      ),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('settlePayout' as const), payout: index, paid: fc.boolean() }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('setCommission' as const),
      bps: fc.integer({ min: 0, max: 5000 }),
    }),
    weight: 1,
  },
  { arbitrary: fc.constant({ kind: 'repeatLast' as const }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'reuseKey' as const }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('burstBookings' as const),
      student,
      tutor,
      prices: fc.array(price, { minLength: 2, maxLength: 6 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('completeVsCancel' as const), booking: index }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('duplicateBurst' as const),
      booking: index,
      copies: fc.integer({ min: 2, max: 4 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('burstRefunds' as const),
      booking: index,
      amounts: fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 2, maxLength: 4 }),
    }),
    weight: 1,
  },
);

// ---------------------------------------------------------------------------------------------------
// Reference model

interface MEarnings {
  amount: number;
  reversed: number;
  status: 'pending' | 'cleared';
  clearableAtMs: number;
}

interface MBooking {
  id: string;
  student: string;
  tutor: string;
  price: number;
  expiresAtMs: number;
  freeUntilMs: number;
  commissionBps: number;
  earningsHoldDays: number;
  status: 'held' | 'completed' | 'cancelled' | 'expired';
  captured: number;
  commission: number;
  refunded: number;
  earnings: MEarnings | null;
}

interface MPayout {
  id: string;
  tutor: string;
  amount: number;
  status: 'requested' | 'paid' | 'failed';
}

class Model {
  nowMs = START_MS;
  commissionBps = 2000;
  earningsHoldDays = 7;
  readonly feeBps = 5000;
  readonly wallet = new Map<string, number>(STUDENTS.map((s) => [s, 0]));
  readonly tutors = new Map<string, { pending: number; available: number; receivable: number }>(
    TUTORS.map((u) => [u, { pending: 0, available: 0, receivable: 0 }]),
  );
  readonly bookings: MBooking[] = [];
  readonly payouts: MPayout[] = [];
  stripeBalance = 0;
  commissionRevenue = 0;

  tutor(id: string) {
    return this.tutors.get(id)!;
  }

  liveHold(b: MBooking): boolean {
    return b.status === 'held' && this.nowMs < b.expiresAtMs;
  }

  complete(b: MBooking): void {
    b.status = 'completed';
    b.captured = b.price;
    b.commission = Math.floor((b.price * b.commissionBps) / 10_000);
    const share = b.price - b.commission;
    this.commissionRevenue += b.commission;
    if (share > 0) {
      this.tutor(b.tutor).pending += share;
      b.earnings = {
        amount: share,
        reversed: 0,
        status: 'pending',
        clearableAtMs: this.nowMs + b.earningsHoldDays * DAY,
      };
    }
  }

  cancel(b: MBooking): void {
    b.status = 'cancelled';
    const late = this.nowMs > b.freeUntilMs;
    const fee = late ? Math.floor((b.price * this.feeBps) / 10_000) : 0;
    const commission = Math.floor((fee * b.commissionBps) / 10_000);
    this.wallet.set(b.student, this.wallet.get(b.student)! + b.price - fee);
    this.commissionRevenue += commission;
    if (fee - commission > 0) {
      this.tutor(b.tutor).pending += fee - commission;
      b.earnings = {
        amount: fee - commission,
        reversed: 0,
        status: 'pending',
        clearableAtMs: this.nowMs + b.earningsHoldDays * DAY,
      };
    }
  }

  refundOutcome(b: MBooking, amount: number | null): 'ok' | 'invalid_state' | 'limit_exceeded' {
    if (b.status !== 'completed') return 'invalid_state';
    const remaining = b.captured - b.refunded;
    if (remaining === 0) return 'invalid_state';
    if (amount !== null && amount > remaining) return 'limit_exceeded';
    return 'ok';
  }

  refund(b: MBooking, requested: number | null): void {
    const amount = requested ?? b.captured - b.refunded;
    const share = (x: number) => Math.floor((x * b.commission) / b.captured);
    const commissionPart = share(b.refunded + amount) - share(b.refunded);
    const tutorPart = amount - commissionPart;
    b.refunded += amount;
    this.wallet.set(b.student, this.wallet.get(b.student)! + amount);
    this.commissionRevenue -= commissionPart;
    if (tutorPart > 0) {
      const e = b.earnings!;
      const t = this.tutor(b.tutor);
      if (e.status === 'pending') {
        t.pending -= tutorPart;
        e.reversed += tutorPart;
      } else {
        t.receivable += tutorPart;
      }
    }
  }

  /** Advances the clock and applies what runDueTasks must do; returns the expected counts. */
  runDue(): { expiredHolds: number; clearedEarnings: number } {
    let expiredHolds = 0;
    let clearedEarnings = 0;
    for (const b of this.bookings) {
      if (b.status === 'held' && b.expiresAtMs <= this.nowMs) {
        b.status = 'expired';
        this.wallet.set(b.student, this.wallet.get(b.student)! + b.price);
        expiredHolds++;
      }
    }
    for (const b of this.bookings) {
      const e = b.earnings;
      if (e && e.status === 'pending' && e.clearableAtMs <= this.nowMs) {
        const t = this.tutor(b.tutor);
        const amount = e.amount - e.reversed;
        const recovered = Math.min(amount, t.receivable);
        t.pending -= amount;
        t.available += amount - recovered;
        t.receivable -= recovered;
        e.status = 'cleared';
        clearedEarnings++;
      }
    }
    return { expiredHolds, clearedEarnings };
  }
}

// ---------------------------------------------------------------------------------------------------
// The run

type Outcome =
  | 'ok'
  | 'insufficient_funds'
  | 'invalid_state'
  | 'limit_exceeded'
  | 'not_found'
  | 'validation_failed';

interface Replayable {
  /** Runs the same command with the same key and payload again. */
  again: () => Promise<{ position: bigint }>;
  /** Runs the same key with a different payload. */
  reuse: () => Promise<unknown>;
}

export class LedgerRun {
  readonly model = new Model();
  readonly fold = new LedgerFold();
  readonly service: LedgerService;
  private seq = 0;
  private last: Replayable | null = null;
  /** Lifecycle status per booking, folded from the booking events (independent of the domain state). */
  private readonly bookingStatus = new Map<string, string>();
  private readonly capturedByBooking = new Map<string, number>();
  private readonly refundedByBooking = new Map<string, number>();

  constructor(
    readonly store: EventStore,
    private readonly t: string,
  ) {
    this.service = createLedgerService({
      store,
      clock: () => new Date(this.model.nowMs),
      handler: { backoff: { baseDelayMs: 1, maxDelayMs: 4 }, maxAttempts: 50 },
    });
  }

  private ctx(prefix: string, role = 'student'): CommandContext {
    const key = `${prefix}-${++this.seq}`;
    return {
      tenantId: this.t,
      actor: { id: `${role}-1`, role },
      idempotencyKey: key,
      correlationId: key,
      causationId: key,
    };
  }

  private pick<X>(list: X[], i: number): X | undefined {
    return list.length === 0 ? undefined : list[i % list.length];
  }

  /** Runs `action`; checks its outcome is `expected`, and that a rejection appended nothing (docs/architecture.md, invariant 8). */
  private async expectOutcome<R>(expected: Outcome, action: () => Promise<R>): Promise<R | undefined> {
    const head = await this.store.headPosition();
    try {
      const result = await action();
      if (expected !== 'ok') throw new Error(`expected ${expected}, the command succeeded`);
      return result;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      if (expected !== error.code)
        throw new Error(`expected ${expected}, got ${error.code}: ${error.message}`);
      expect(await this.store.headPosition()).toBe(head);
      return undefined;
    }
  }

  /** Runs an idempotent repeat: it must return the original position and append nothing (docs/architecture.md, invariant 7). */
  private async expectNoChange(position: bigint, action: () => Promise<{ position: bigint }>): Promise<void> {
    const head = await this.store.headPosition();
    const again = await action();
    expect(again.position).toBe(position);
    expect(await this.store.headPosition()).toBe(head);
  }

  async apply(op: Op): Promise<void> {
    const m = this.model;
    switch (op.kind) {
      case 'topUp': {
        const studentId = STUDENTS[op.student]!;
        const topUpId = `tu${++this.seq}`;
        const ctx = this.ctx('topup');
        const input = { topUpId, studentId, amount: { amount: op.amount, currency: CUR } };
        const started = await this.expectOutcome(op.amount < 500 ? 'limit_exceeded' : 'ok', () =>
          this.service.initiateTopUp(ctx, input),
        );
        if (!started) return;
        const webhook = this.ctx('webhook', 'service');
        const pi = `pi_${topUpId}`;
        const outcome = op.succeed
          ? await this.service.succeedTopUp(webhook, {
              topUpId,
              paymentIntentId: pi,
              amountReceived: op.amount,
              currency: CUR,
            })
          : await this.service.failTopUp(webhook, { topUpId, paymentIntentId: pi, reason: 'card_declined' });
        if (op.succeed) {
          m.wallet.set(studentId, m.wallet.get(studentId)! + op.amount);
          m.stripeBalance += op.amount;
        }
        // Redelivered webhooks: the same Stripe event (same key) and a new delivery (new key) change nothing.
        const redeliver = (key: CommandContext) =>
          op.succeed
            ? this.service.succeedTopUp(key, {
                topUpId,
                paymentIntentId: pi,
                amountReceived: op.amount,
                currency: CUR,
              })
            : this.service.failTopUp(key, { topUpId, paymentIntentId: pi, reason: 'card_declined' });
        if (op.redeliver >= 1) await this.expectNoChange(outcome.position, () => redeliver(webhook));
        if (op.redeliver >= 2) {
          const head = await this.store.headPosition();
          await redeliver(this.ctx('webhook', 'service'));
          expect(await this.store.headPosition()).toBe(head);
        }
        this.last = {
          again: () => this.service.initiateTopUp(ctx, input),
          reuse: () =>
            this.service.initiateTopUp(ctx, { ...input, amount: { amount: op.amount + 1, currency: CUR } }),
        };
        return;
      }

      case 'book': {
        const result = await this.book(STUDENTS[op.student]!, TUTORS[op.tutor]!, op.price, op.inHours);
        if (result) this.last = result;
        return;
      }

      case 'complete': {
        const b = this.pick(m.bookings, op.booking);
        if (!b) return;
        const ctx = this.ctx('complete');
        const r = await this.expectOutcome(m.liveHold(b) ? 'ok' : 'invalid_state', () =>
          this.service.completeBooking(ctx, { bookingId: b.id }),
        );
        if (!r) return;
        m.complete(b);
        expect(r.booking).toMatchObject({
          status: 'completed',
          captured: b.captured,
          commission: b.commission,
        });
        this.last = {
          again: () => this.service.completeBooking(ctx, { bookingId: b.id }),
          reuse: () => this.service.completeBooking(ctx, { bookingId: `${b.id}x` }),
        };
        return;
      }

      case 'cancel': {
        const b = this.pick(m.bookings, op.booking);
        if (!b) return;
        const ctx = this.ctx('cancel');
        const r = await this.expectOutcome(m.liveHold(b) ? 'ok' : 'invalid_state', () =>
          this.service.cancelBooking(ctx, { bookingId: b.id, reason: 'changed plans' }),
        );
        if (!r) return;
        m.cancel(b);
        this.last = {
          again: () => this.service.cancelBooking(ctx, { bookingId: b.id, reason: 'changed plans' }),
          reuse: () => this.service.cancelBooking(ctx, { bookingId: b.id, reason: 'another reason' }),
        };
        return;
      }

      case 'refund': {
        const b = this.pick(m.bookings, op.booking);
        if (!b) return;
        const ctx = this.ctx('refund');
        const input = {
          bookingId: b.id,
          reason: 'quality',
          ...(op.amount === null ? {} : { amount: op.amount }),
        };
        const r = await this.expectOutcome(m.refundOutcome(b, op.amount), () =>
          this.service.refundBooking(ctx, input),
        );
        if (!r) return;
        m.refund(b, op.amount);
        expect(r.booking.refunded).toBe(b.refunded);
        this.last = {
          again: () => this.service.refundBooking(ctx, input),
          reuse: () => this.service.refundBooking(ctx, { ...input, reason: 'other' }),
        };
        return;
      }

      case 'advance': {
        m.nowMs += op.hours * HOUR;
        const expected = m.runDue();
        const now = new Date(m.nowMs);
        expect(await this.service.runDueTasks(this.t, now)).toEqual(expected);
        // Idempotent: running again at the same instant does nothing.
        const head = await this.store.headPosition();
        expect(await this.service.runDueTasks(this.t, now)).toEqual({ expiredHolds: 0, clearedEarnings: 0 });
        expect(await this.store.headPosition()).toBe(head);
        this.last = null;
        return;
      }

      case 'payout': {
        // Prefer a tutor with withdrawable earnings, so that payouts succeed often enough to matter.
        const other = TUTORS[(op.tutor + 1) % TUTORS.length]!;
        const tutorId = m.tutor(TUTORS[op.tutor]!).available > 0 ? TUTORS[op.tutor]! : other;
        const t = m.tutor(tutorId);
        const amount =
          op.mode === 'all'
            ? t.available
            : op.mode === 'part'
              ? Math.max(PAYOUT_MIN, Math.floor(t.available * op.fraction))
              : op.mode === 'over'
                ? t.available + 1 + Math.floor(op.fraction * 1000)
                : Math.max(1, Math.floor((PAYOUT_MIN - 1) * op.fraction));
        if (amount === 0) return;
        const expected: Outcome =
          amount < PAYOUT_MIN ? 'limit_exceeded' : amount > t.available ? 'insufficient_funds' : 'ok';
        const payoutId = `po${++this.seq}`;
        const ctx = this.ctx('payout', 'tutor');
        const input = { payoutId, tutorId, amount: { amount, currency: CUR } };
        const r = await this.expectOutcome(expected, () => this.service.requestPayout(ctx, input));
        if (!r) return;
        t.available -= amount;
        m.payouts.push({ id: payoutId, tutor: tutorId, amount, status: 'requested' });
        this.last = {
          again: () => this.service.requestPayout(ctx, input),
          reuse: () =>
            this.service.requestPayout(ctx, { ...input, amount: { amount: amount + 1, currency: CUR } }),
        };
        return;
      }

      case 'settlePayout': {
        const p = this.pick(m.payouts, op.payout);
        if (!p) return;
        const ctx = this.ctx('settle', 'service');
        const outcome = op.paid ? 'paid' : 'failed';
        const expected: Outcome = p.status === 'requested' || p.status === outcome ? 'ok' : 'invalid_state';
        const run = () =>
          op.paid
            ? this.service.markPayoutPaid(ctx, { payoutId: p.id, stripeTransferId: `tr_${p.id}` })
            : this.service.markPayoutFailed(ctx, { payoutId: p.id, reason: 'account_closed' });
        const head = await this.store.headPosition();
        const r = await this.expectOutcome(expected, run);
        if (!r) return;
        if (p.status === outcome) {
          expect(await this.store.headPosition()).toBe(head);
          return;
        }
        p.status = outcome;
        if (op.paid) m.stripeBalance -= p.amount;
        else m.tutor(p.tutor).available += p.amount;
        this.last = { again: run, reuse: () => this.service.markPayoutPaid(ctx, { payoutId: `${p.id}x` }) };
        return;
      }

      case 'configure': {
        const ctx = this.ctx('settings', 'tenant_admin');
        const r = await this.service.updateSettings(ctx, { earningsHoldPeriodDays: op.earningsHoldDays });
        same(r.settings.earningsHoldPeriodDays, op.earningsHoldDays, 'earnings hold days');
        m.earningsHoldDays = op.earningsHoldDays;
        this.last = null;
        return;
      }

      case 'setCommission': {
        const ctx = this.ctx('settings', 'tenant_admin');
        const r = await this.service.updateSettings(ctx, { commissionRateBps: op.bps });
        expect(r.settings.commissionRateBps).toBe(op.bps);
        m.commissionBps = op.bps;
        this.last = null;
        return;
      }

      case 'repeatLast': {
        if (!this.last) return;
        const head = await this.store.headPosition();
        await this.last.again();
        expect(await this.store.headPosition()).toBe(head);
        return;
      }

      case 'reuseKey': {
        if (!this.last) return;
        const head = await this.store.headPosition();
        const error = await this.last.reuse().then(
          () => null,
          (e: unknown) => e,
        );
        // The reused key is refused (or the different payload is itself invalid); nothing is appended.
        expect(error instanceof IdempotencyKeyReusedError || error instanceof DomainError).toBe(true);
        expect(await this.store.headPosition()).toBe(head);
        return;
      }

      case 'burstBookings': {
        const studentId = STUDENTS[op.student]!;
        const before = m.wallet.get(studentId)!;
        const attempts = op.prices.map((p) => ({ price: p, id: `b${++this.seq}`, ctx: this.ctx('book') }));
        const scheduledAtMs = m.nowMs + 48 * HOUR;
        const results = await Promise.allSettled(
          attempts.map((a) =>
            this.service.placeBooking(a.ctx, {
              bookingId: a.id,
              studentId,
              tutorId: TUTORS[op.tutor]!,
              price: { amount: a.price, currency: CUR },
              scheduledAt: new Date(scheduledAtMs).toISOString(),
            }),
          ),
        );
        let spent = 0;
        results.forEach((r, i) => {
          const a = attempts[i]!;
          if (r.status === 'fulfilled') {
            spent += a.price;
            m.bookings.push(this.newBooking(a.id, studentId, TUTORS[op.tutor]!, a.price, scheduledAtMs));
          } else {
            expect((r.reason as DomainError).code).toBe('insufficient_funds');
          }
        });
        expect(spent).toBeLessThanOrEqual(before);
        m.wallet.set(studentId, before - spent);
        // Any rejected booking did not fit even in what was left at the end.
        results.forEach((r, i) => {
          if (r.status === 'rejected') expect(attempts[i]!.price).toBeGreaterThan(before - spent);
        });
        this.last = null;
        return;
      }

      case 'completeVsCancel': {
        const b = this.pick(m.bookings, op.booking);
        if (!b) return;
        const live = m.liveHold(b);
        const [completed, cancelled] = await Promise.allSettled([
          this.service.completeBooking(this.ctx('complete'), { bookingId: b.id }),
          this.service.cancelBooking(this.ctx('cancel'), { bookingId: b.id, reason: 'race' }),
        ]);
        const wins = [completed, cancelled].filter((r) => r.status === 'fulfilled').length;
        expect(wins).toBe(live ? 1 : 0);
        for (const r of [completed, cancelled]) {
          if (r.status === 'rejected') expect((r.reason as DomainError).code).toBe('invalid_state');
        }
        if (completed.status === 'fulfilled') m.complete(b);
        if (cancelled.status === 'fulfilled') m.cancel(b);
        this.last = null;
        return;
      }

      case 'duplicateBurst': {
        const b = this.pick(m.bookings, op.booking);
        if (!b) return;
        const ctx = this.ctx('complete');
        const live = m.liveHold(b);
        const results = await Promise.allSettled(
          Array.from({ length: op.copies }, () => this.service.completeBooking(ctx, { bookingId: b.id })),
        );
        if (live) {
          const positions = results.map((r) => {
            if (r.status === 'rejected') throw r.reason;
            return r.value.position;
          });
          expect(new Set(positions).size).toBe(1);
          m.complete(b);
        } else {
          for (const r of results) {
            expect(r.status).toBe('rejected');
            expect(((r as PromiseRejectedResult).reason as DomainError).code).toBe('invalid_state');
          }
        }
        this.last = null;
        return;
      }

      case 'burstRefunds': {
        const b = this.pick(m.bookings, op.booking);
        if (!b) return;
        const remaining = b.captured - b.refunded;
        const results = await Promise.allSettled(
          op.amounts.map((amount) =>
            this.service.refundBooking(this.ctx('refund'), { bookingId: b.id, amount, reason: 'burst' }),
          ),
        );
        let refunded = 0;
        results.forEach((r, i) => {
          if (r.status === 'fulfilled') refunded += op.amounts[i]!;
          else expect(['invalid_state', 'limit_exceeded']).toContain((r.reason as DomainError).code);
        });
        if (b.status !== 'completed') expect(refunded).toBe(0);
        expect(refunded).toBeLessThanOrEqual(remaining);
        // Cumulative splits make the totals independent of the order the refunds landed in.
        if (refunded > 0) m.refund(b, refunded);
        this.last = null;
        return;
      }
    }
  }

  private newBooking(
    id: string,
    studentId: string,
    tutorId: string,
    amount: number,
    scheduledAtMs: number,
  ): MBooking {
    return {
      id,
      student: studentId,
      tutor: tutorId,
      price: amount,
      expiresAtMs: scheduledAtMs + 7 * DAY,
      freeUntilMs: scheduledAtMs - 24 * HOUR,
      commissionBps: this.model.commissionBps,
      earningsHoldDays: this.model.earningsHoldDays,
      status: 'held',
      captured: 0,
      commission: 0,
      refunded: 0,
      earnings: null,
    };
  }

  private async book(
    studentId: string,
    tutorId: string,
    amount: number,
    inHours: number,
  ): Promise<Replayable | null> {
    const m = this.model;
    const bookingId = `b${++this.seq}`;
    const ctx = this.ctx('book');
    const scheduledAtMs = m.nowMs + inHours * HOUR;
    const input = {
      bookingId,
      studentId,
      tutorId,
      price: { amount, currency: CUR },
      scheduledAt: new Date(scheduledAtMs).toISOString(),
    };
    const affordable = amount <= m.wallet.get(studentId)!;
    const r = await this.expectOutcome(affordable ? 'ok' : 'insufficient_funds', () =>
      this.service.placeBooking(ctx, input),
    );
    if (!r) return null;
    expect(r.booking).toMatchObject({ status: 'held', price: { amount, currency: CUR } });
    m.wallet.set(studentId, m.wallet.get(studentId)! - amount);
    m.bookings.push(this.newBooking(bookingId, studentId, tutorId, amount, scheduledAtMs));
    return {
      again: () => this.service.placeBooking(ctx, input),
      reuse: () => this.service.placeBooking(ctx, { ...input, price: { amount: amount + 1, currency: CUR } }),
    };
  }

  /** Folds the new events (asserting invariants 1, 2, 4, 5, 9) and compares everything with the model. */
  async check(): Promise<void> {
    const fresh = await this.fold.catchUp(this.store);
    for (const e of fresh) this.observe(e);
    const m = this.model;
    const f = this.fold;
    for (const s of STUDENTS) {
      same(f.available(this.t, `student:${s}:wallet`, CUR), m.wallet.get(s), `wallet ${s}`);
    }
    for (const u of TUTORS) {
      const t = m.tutor(u);
      same(f.creditBalance(this.t, `tutor:${u}:earnings:pending`, CUR), t.pending, `pending ${u}`);
      same(f.available(this.t, `tutor:${u}:earnings:available`, CUR), t.available, `available ${u}`);
      same(f.debitBalance(this.t, `tutor:${u}:receivable`, CUR), t.receivable, `receivable ${u}`);
    }
    same(f.debitBalance(this.t, 'stripe:balance', CUR), m.stripeBalance, 'stripe balance');
    same(f.creditBalance(this.t, 'platform:revenue:commission', CUR), m.commissionRevenue, 'commission');
    for (const b of m.bookings) {
      same(this.bookingStatus.get(b.id), b.status, `booking ${b.id}`);
      // Invariant 10: a booking's clearing account is zero once its hold resolved; it holds the price until then.
      const clearing = f.get(this.t, `clearing:booking:${b.id}`, CUR);
      if (b.status === 'held') same(clearing.creditsPending, b.price, `clearing of held ${b.id}`);
      else same(f.isZero(this.t, `clearing:booking:${b.id}`, CUR), true, `clearing of ${b.id}`);
      // Invariant 6: refunds never exceed the capture.
      if ((this.refundedByBooking.get(b.id) ?? 0) > (this.capturedByBooking.get(b.id) ?? 0)) {
        throw new Error(`refunds of ${b.id} exceed the capture`);
      }
      same(this.refundedByBooking.get(b.id) ?? 0, b.refunded, `refunded ${b.id}`);
    }
    for (const p of m.payouts) {
      const clearing = `clearing:payout:${p.id}`;
      if (p.status === 'requested')
        same(f.get(this.t, clearing, CUR).creditsPending, p.amount, 'pending of a clearing account');
      else same(f.isZero(this.t, clearing, CUR), true, clearing);
    }
    // Refund clearing accounts: every refund flow completed within its command.
    for (const [key] of f.totals) {
      if (key.includes('|clearing:refund:')) same(f.isZero(this.t, key.split('|')[1]!, CUR), true, key);
    }
    // Invariant 5: every resolved booking's hold was resolved (LedgerFold asserts "at most once").
    for (const b of m.bookings) {
      const hold = f.holds.get(this.holdOf.get(b.id) ?? '');
      same(hold?.amount, b.price, `hold of ${b.id}`);
      if (b.status !== 'held' && hold?.resolvedAt === undefined)
        throw new Error(`hold of ${b.id} unresolved`);
    }
  }

  private readonly holdOf = new Map<string, string>();

  private observe(e: RecordedEvent): void {
    const bookingId = typeof e.data.bookingId === 'string' ? e.data.bookingId : undefined;
    switch (e.type) {
      case 'BookingPlaced':
        this.bookingStatus.set(bookingId!, 'held');
        this.holdOf.set(bookingId!, String(e.data.holdId));
        return;
      case 'BookingCompleted':
        this.bookingStatus.set(bookingId!, 'completed');
        return;
      case 'BookingCancelled':
        this.bookingStatus.set(bookingId!, 'cancelled');
        return;
      case 'BookingExpired':
        this.bookingStatus.set(bookingId!, 'expired');
        return;
      case 'WalletHoldCaptured':
        this.capturedByBooking.set(bookingId!, Number(e.data.captured));
        return;
      case 'WalletRefunded':
        this.refundedByBooking.set(
          bookingId!,
          (this.refundedByBooking.get(bookingId!) ?? 0) + Number(e.data.amount),
        );
        return;
    }
  }
}

/** Every run starts with funded wallets so that the deeper flows (completion, clearing, payout) happen often. */
const SEED: Op[] = STUDENTS.map((_, i) => ({
  kind: 'topUp',
  student: i,
  amount: 10_000,
  succeed: true,
  redeliver: 0,
}));

export const opsArb = (maxLength: number) =>
  fc
    .tuple(
      // A short earnings hold in most runs, so that clearing and payouts happen within ~30 commands.
      fc.constantFrom(0, 1, 2, 7),
      fc.array(opArb, { minLength: 5, maxLength: maxLength - SEED.length - 1 }),
    )
    .map(([earningsHoldDays, ops]): Op[] => [{ kind: 'configure', earningsHoldDays }, ...SEED, ...ops]);

/** One property run: every op, then the full check. Tenants isolate runs that share a store. */
export async function runOps(store: EventStore, ops: Op[], tenantId: string): Promise<void> {
  const run = new LedgerRun(store, tenantId);
  run.fold.position = await store.headPosition();
  for (const op of ops) {
    await run.apply(op);
    await run.check();
  }
}

/** A cheap equality check for the per-step comparisons (vitest's expect is too slow for ~10^6 calls). */
function same(actual: unknown, expected: unknown, label: string): void {
  if (actual !== expected) throw new Error(`${label}: expected ${String(expected)}, got ${String(actual)}`);
}
