import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import type { CommandContext } from '../../src/commands/context.js';
import { IdempotencyKeyReusedError } from '../../src/commands/errors.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { startProcessManagers } from '../../src/commands/processManagers.js';
import { startScheduler } from '../../src/commands/scheduler.js';
import { DomainError } from '../../src/domain/errors.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore } from '../../src/eventstore/port.js';
import type { PaymentsGateway } from '../../src/stripe/gateway.js';
import { LedgerFold } from '../property/ledgerFold.js';
import { startFakeStripe } from '../stripe/support.js';

const T = 'svc';
const DAY = 86_400_000;
let seq = 0;
const ctx = (role = 'student', id = `${role}-1`): CommandContext => {
  const key = `key-${++seq}`;
  return { tenantId: T, actor: { id, role }, idempotencyKey: key, correlationId: key, causationId: key };
};
const usd = (amount: number) => ({ amount, currency: 'usd' });

function setup(gateway?: PaymentsGateway) {
  let nowMs = Date.parse('2026-04-01T00:00:00.000Z');
  const store = new MemoryEventStore();
  const service = createLedgerService({
    store,
    clock: () => new Date(nowMs),
    ...(gateway ? { gateway } : {}),
    onboardingFallbackUrls: () => ({
      returnUrl: 'https://tutors.example/done',
      refreshUrl: 'https://tutors.example/again',
    }),
  });
  return {
    store,
    service,
    now: () => new Date(nowMs),
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

async function fold(store: EventStore): Promise<LedgerFold> {
  const f = new LedgerFold();
  await f.catchUp(store);
  return f;
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

const bookingInput = (bookingId: string, scheduledAt: Date, amount = 2_000) => ({
  bookingId,
  studentId: 's1',
  tutorId: 'u1',
  price: usd(amount),
  scheduledAt: scheduledAt.toISOString(),
});

async function rejectsWith(code: string, store: EventStore, action: () => Promise<unknown>): Promise<void> {
  const head = await store.headPosition();
  const error = await action().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  expect((error as DomainError).code).toBe(code);
  expect(await store.headPosition()).toBe(head);
}

describe('LedgerService flows', () => {
  it('bad booking input is a typed rejection that appends nothing anywhere', async () => {
    const { store, service, now } = setup();
    await fund(service, 's1', 10_000);
    const later = new Date(now().getTime() + DAY);
    await rejectsWith('validation_failed', store, () =>
      service.placeBooking(ctx(), bookingInput('b1', new Date(now().getTime() - 1))),
    );
    for (const amount of [0, -5, 10.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2]) {
      await rejectsWith('validation_failed', store, () =>
        service.placeBooking(ctx(), bookingInput('b1', later, amount)),
      );
    }
    await rejectsWith('validation_failed', store, () =>
      service.placeBooking(ctx(), { ...bookingInput('b1', later), price: { amount: 100, currency: 'xyz' } }),
    );
    await rejectsWith('currency_mismatch', store, () =>
      service.placeBooking(ctx(), { ...bookingInput('b1', later), price: { amount: 100, currency: 'eur' } }),
    );
    await rejectsWith('validation_failed', store, () =>
      service.placeBooking(ctx(), bookingInput('bad id!', later)),
    );
    await rejectsWith('insufficient_funds', store, () =>
      service.placeBooking(ctx(), bookingInput('b1', later, 10_001)),
    );
    await rejectsWith('not_found', store, () => service.completeBooking(ctx(), { bookingId: 'nope' }));
    // A booking id taken by another student is refused before any hold is placed.
    await service.placeBooking(ctx(), bookingInput('b1', later));
    await fund(service, 's2', 10_000);
    await rejectsWith('invalid_state', store, () =>
      service.placeBooking(ctx(), { ...bookingInput('b1', later), studentId: 's2' }),
    );
  });

  it('bookings keep the policy in force when placed; refunds never exceed the capture', async () => {
    const { store, service, now } = setup();
    await fund(service, 's1', 10_000);
    const placed = await service.placeBooking(ctx(), bookingInput('b1', new Date(now().getTime() + 3 * DAY)));
    await service.updateSettings(ctx('tenant_admin'), { commissionRateBps: 3000 });
    const done = await service.completeBooking(ctx(), { bookingId: 'b1' });
    expect(done.booking).toMatchObject({
      status: 'completed',
      captured: 2_000,
      commission: 400,
      tutorShare: 1_600,
    });
    expect(done.position).toBeGreaterThan(placed.position);
    const first = await service.refundBooking(ctx(), { bookingId: 'b1', amount: 700, reason: 'partial' });
    expect(first.booking.refunded).toBe(700);
    await rejectsWith('limit_exceeded', store, () =>
      service.refundBooking(ctx(), { bookingId: 'b1', amount: 1_301, reason: 'too much' }),
    );
    const rest = await service.refundBooking(ctx(), { bookingId: 'b1', reason: 'the rest' });
    expect(rest.booking.refunded).toBe(2_000);
    await rejectsWith('invalid_state', store, () =>
      service.refundBooking(ctx(), { bookingId: 'b1', reason: 'again' }),
    );
    const f = await fold(store);
    expect(f.available(T, 'student:s1:wallet', 'usd')).toBe(10_000);
    expect(f.creditBalance(T, 'platform:revenue:commission', 'usd')).toBe(0);
    expect(f.creditBalance(T, 'tutor:u1:earnings:pending', 'usd')).toBe(0);
  });

  it('retries are no-ops and a reused key with another payload is refused', async () => {
    const { store, service, now } = setup();
    await fund(service, 's1', 10_000);
    const c = ctx();
    const input = bookingInput('b1', new Date(now().getTime() + 3 * DAY));
    const first = await service.placeBooking(c, input);
    const head = await store.headPosition();
    expect((await service.placeBooking(c, input)).position).toBe(first.position);
    await expect(service.placeBooking(c, { ...input, price: usd(2_001) })).rejects.toBeInstanceOf(
      IdempotencyKeyReusedError,
    );
    await expect(service.placeBooking(c, { ...input, bookingId: 'b2' })).rejects.toBeInstanceOf(
      IdempotencyKeyReusedError,
    );
    expect(await store.headPosition()).toBe(head);
  });

  it('late cancellation charges the fee; hold expiry and earnings clearing run from the scheduler, once', async () => {
    const { store, service, now, advance } = setup();
    await fund(service, 's1', 10_000);
    await service.placeBooking(ctx(), bookingInput('late', new Date(now().getTime() + 12 * 3_600_000)));
    await service.placeBooking(ctx(), bookingInput('never', new Date(now().getTime() + DAY)));
    const cancelled = await service.cancelBooking(ctx(), { bookingId: 'late', reason: 'sick' });
    expect(cancelled.booking).toMatchObject({ status: 'cancelled', cancellationFee: 1_000 });
    advance(8 * DAY + 1);
    const scheduler = startScheduler({ runner: service.dueTasks, clock: now, intervalMs: 10 });
    try {
      const expired = await waitForEvent(store, 'BookingExpired');
      expect(expired.data.bookingId).toBe('never');
      await waitForEvent(store, 'TutorEarningsCleared');
    } finally {
      await scheduler.stop();
    }
    expect(await service.runDueTasks(T, now())).toEqual({ expiredHolds: 0, clearedEarnings: 0 });
    const f = await fold(store);
    // Fee 1,000 of 2,000: 200 commission, 800 to the tutor (cleared after 7 days); the expired hold came back.
    expect(f.available(T, 'student:s1:wallet', 'usd')).toBe(9_000);
    expect(f.available(T, 'tutor:u1:earnings:available', 'usd')).toBe(800);
    expect(f.isZero(T, 'clearing:booking:never', 'usd')).toBe(true);
  });

  it('adjustments: finance admin only, reason required, constrained accounts in their own stream', async () => {
    const { store, service } = setup();
    await fund(service, 's1', 1_000);
    const admin = () => ctx('finance_admin', 'fa-1');
    const credit = await service.adjust(admin(), {
      account: 'student:s1:wallet',
      direction: 'credit',
      amount: usd(250),
      reason: 'goodwill',
    });
    expect(credit.entryId).toMatch(/^[0-9a-f-]{36}$/);
    await rejectsWith('insufficient_funds', store, () =>
      service.adjust(admin(), {
        account: 'student:s1:wallet',
        direction: 'debit',
        amount: usd(1_251),
        reason: 'fix',
      }),
    );
    await rejectsWith('forbidden', store, () =>
      service.adjust(ctx('student'), {
        account: 'student:s1:wallet',
        direction: 'credit',
        amount: usd(1),
        reason: 'me',
      }),
    );
    await rejectsWith('validation_failed', store, () =>
      service.adjust(admin(), {
        account: 'student:s1:wallet',
        direction: 'credit',
        amount: usd(1),
        reason: ' ',
      }),
    );
    await service.adjust(admin(), {
      account: 'platform:expense:promotions',
      direction: 'debit',
      amount: usd(75),
      reason: 'promo',
    });
    await service.recordStripeCharge(ctx('service'), {
      kind: 'fee',
      stripeObjectId: 'txn_1',
      amount: usd(30),
      description: 'card fee',
    });
    const f = await fold(store);
    expect(f.available(T, 'student:s1:wallet', 'usd')).toBe(1_250);
    expect(f.debitBalance(T, 'platform:expense:promotions', 'usd')).toBe(75);
    expect(f.debitBalance(T, 'platform:expense:stripe-fees', 'usd')).toBe(30);
    const adjusted = await store.readAll({ maxCount: 100, filter: { eventTypes: ['WalletAdjusted'] } });
    expect(adjusted[0]!.data).toMatchObject({
      reason: 'goodwill',
      actor: { id: 'fa-1', role: 'finance_admin' },
    });
  });
});

describe('LedgerService with Stripe (fake Stripe server, real SDK)', () => {
  let stripe: Awaited<ReturnType<typeof startFakeStripe>>;
  beforeAll(async () => {
    // Onboarded accounts and funds available at once: this suite is about the command path, not onboarding.
    stripe = await startFakeStripe({ fake: { accountsStartEnabled: true, availableAfterSeconds: 0 } });
  });
  afterAll(async () => {
    await stripe?.stop();
  });

  it('top-ups: confirmed card credits the wallet once; declined card fails; no card leaves a client secret', async () => {
    const { store, service } = setup(stripe.gateway);
    const c = ctx();
    const ok = await service.initiateTopUp(c, {
      topUpId: 'card',
      studentId: 's1',
      amount: usd(5_000),
      paymentMethod: 'pm_card_visa',
    });
    expect(ok.topUp).toMatchObject({ status: 'succeeded', amount: usd(5_000) });
    const head = await store.headPosition();
    const again = await service.initiateTopUp(c, {
      topUpId: 'card',
      studentId: 's1',
      amount: usd(5_000),
      paymentMethod: 'pm_card_visa',
    });
    expect(again.topUp.status).toBe('succeeded');
    expect(await store.headPosition()).toBe(head);
    // The webhook for the same PaymentIntent arrives later: nothing new.
    await service.succeedTopUp(ctx('service'), {
      topUpId: 'card',
      paymentIntentId: ok.topUp.paymentIntentId!,
      amountReceived: 5_000,
      currency: 'usd',
    });
    expect(await store.headPosition()).toBe(head);

    const declined = await service.initiateTopUp(ctx(), {
      topUpId: 'declined',
      studentId: 's1',
      amount: usd(5_000),
      paymentMethod: 'pm_card_chargeDeclined',
    });
    expect(declined.topUp.status).toBe('failed');
    const pending = await service.initiateTopUp(ctx(), {
      topUpId: 'later',
      studentId: 's1',
      amount: usd(700),
    });
    expect(pending.topUp.status).toBe('pending');
    expect(pending.topUp.clientSecret).toEqual(expect.any(String));
    const f = await fold(store);
    expect(f.available(T, 'student:s1:wallet', 'usd')).toBe(5_000);
  });

  it('payouts are submitted to Stripe by the process manager, then paid by the webhook command', async () => {
    const { store, service, now, advance } = setup(stripe.gateway);
    await service.initiateTopUp(ctx(), {
      topUpId: 'f',
      studentId: 's1',
      amount: usd(10_000),
      paymentMethod: 'pm_card_visa',
    });
    await service.placeBooking(ctx(), bookingInput('b1', new Date(now().getTime() + 2 * DAY), 5_000));
    await service.completeBooking(ctx(), { bookingId: 'b1' });
    advance(8 * DAY);
    expect(await service.runDueTasks(T, now())).toEqual({ expiredHolds: 0, clearedEarnings: 1 });
    // Accounts start onboarded in this suite: opening one records it, and it takes payouts at once.
    await service.openPayoutAccount(ctx('tutor'), { tutorId: 'u1' });
    const requested = await service.requestPayout(ctx('tutor'), {
      payoutId: 'p1',
      tutorId: 'u1',
      amount: usd(4_000),
    });
    expect(requested.payout.status).toBe('requested');
    const runner = startProcessManagers({ service, store, checkpoints: new MemoryCheckpointStore() });
    try {
      const submitted = await waitForEvent(store, 'PayoutSubmitted');
      expect(submitted.data.stripeTransferId).toMatch(/^tr_/);
      expect(submitted.data.stripePayoutId).toMatch(/^po_/);
    } finally {
      await runner.stop();
    }
    await service.markPayoutPaid(ctx('service'), { payoutId: 'p1', stripePayoutId: 'po_from_webhook' });
    const head = await store.headPosition();
    await service.markPayoutPaid(ctx('service'), { payoutId: 'p1' });
    expect(await store.headPosition()).toBe(head);
    await rejectsWith('invalid_state', store, () =>
      service.markPayoutFailed(ctx('service'), { payoutId: 'p1', reason: 'late' }),
    );
    const f = await fold(store);
    expect(f.available(T, 'tutor:u1:earnings:available', 'usd')).toBe(0);
    expect(f.debitBalance(T, 'stripe:balance', 'usd')).toBe(6_000);
    expect(f.isZero(T, 'clearing:payout:p1', 'usd')).toBe(true);
  });
});

/** Resolves with the first event of `type` (already stored or arriving), bounded by a timeout. */
async function waitForEvent(store: EventStore, type: string, timeoutMs = 10_000) {
  const subscription = store.subscribe({ filter: { eventTypes: [type] } });
  const timer = setTimeout(() => void subscription.close(), timeoutMs);
  try {
    for await (const message of subscription) {
      if (message.kind === 'event') return message.event;
    }
    throw new Error(`no ${type} within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    await subscription.close();
  }
}
