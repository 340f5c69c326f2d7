import { describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { PromoCodes } from '../../src/commands/promoCodes.js';
import { DomainError } from '../../src/domain/errors.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore } from '../../src/eventstore/port.js';
import { LedgerFold } from '../property/ledgerFold.js';

const T = 'promo';
const DAY = 86_400_000;
let seq = 0;
const ctx = (role = 'student', id = `${role}-1`): CommandContext => {
  const key = `key-${++seq}`;
  return { tenantId: T, actor: { id, role }, idempotencyKey: key, correlationId: key, causationId: key };
};
const usd = (amount: number) => ({ amount, currency: 'usd' });

function setup(store: EventStore = new MemoryEventStore()) {
  let nowMs = Date.parse('2026-04-01T00:00:00.000Z');
  const clock = () => new Date(nowMs);
  const service = createLedgerService({ store, clock });
  const promoCodes = new PromoCodes(service.handler, clock);
  return {
    store,
    service,
    promoCodes,
    now: clock,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
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

async function balances(store: EventStore): Promise<(account: string) => number> {
  const fold = new LedgerFold();
  await fold.catchUp(store);
  return (account) => {
    const t = fold.totals.get(LedgerFold.key(T, account, 'usd'));
    return t ? t.creditsPosted - t.debitsPosted : 0;
  };
}

function rejection(promise: Promise<unknown>): Promise<DomainError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(DomainError);
      return error as DomainError;
    },
  );
}

describe('promo codes on bookings', () => {
  it('discounts the student, funds it from promotions, the tutor earns on the list price; cancel releases', async () => {
    const { store, service, promoCodes, now } = setup();
    await fund(service, 's1', 10_000);
    await promoCodes.create(ctx('tenant_admin'), {
      code: 'spring25',
      currency: 'usd',
      discount: { type: 'percentage', bps: 2_500, maxAmount: 400 },
      appliesTo: ['bookings'],
      validUntil: new Date(now().getTime() + 30 * DAY).toISOString(),
      maxRedemptions: 10,
      maxRedemptionsPerStudent: 2,
    });
    const scheduledAt = new Date(now().getTime() + 3 * DAY).toISOString();
    const placed = await service.placeBooking(ctx(), {
      bookingId: 'b1',
      studentId: 's1',
      tutorId: 'u1',
      price: usd(2_000),
      scheduledAt,
      promoCode: 'Spring25',
    });
    expect(placed.booking.price).toEqual(usd(2_000));
    let view = await promoCodes.get(T, 'SPRING25');
    expect(view.usage).toMatchObject({
      reserved: 1,
      confirmed: 0,
      discountReserved: 400,
      redemptionsLeft: 9,
    });

    await service.completeBooking(ctx('tutor', 'u1'), { bookingId: 'b1' });
    view = await promoCodes.get(T, 'SPRING25');
    expect(view.usage).toMatchObject({ reserved: 0, confirmed: 1, discountConfirmed: 400 });
    let balance = await balances(store);
    expect(balance('student:s1:wallet')).toBe(10_000 - 1_600);
    expect(-balance('platform:expense:promotions')).toBe(400);
    const capture = (
      await store.readAll({ maxCount: 1_000, filter: { eventTypes: ['WalletHoldCaptured'] } })
    )[0];
    expect(capture).toBeDefined();
    expect((capture!.data as { entry: { description: string } }).entry.description).toBe(
      'Booking b1 completed: 16.00 USD captured, promo code SPRING25 4.00 USD off',
    );
    // Commission 20% by default? whatever the policy: tutor + commission = the list price.
    expect(balance('tutor:u1:earnings:pending') + balance('platform:revenue:commission')).toBe(2_000);

    // A full refund gives the student what they paid and the promotion its part back.
    await service.refundBooking(ctx('finance_admin'), { bookingId: 'b1', reason: 'no-show' });
    balance = await balances(store);
    expect(balance('student:s1:wallet')).toBe(10_000);
    expect(balance('platform:expense:promotions')).toBe(0);
    expect(balance('tutor:u1:earnings:pending')).toBe(0);

    await service.placeBooking(ctx(), {
      bookingId: 'b2',
      studentId: 's1',
      tutorId: 'u1',
      price: usd(2_000),
      scheduledAt,
      promoCode: 'SPRING25',
    });
    const third = await rejection(
      service.placeBooking(ctx(), {
        bookingId: 'b3',
        studentId: 's1',
        tutorId: 'u1',
        price: usd(2_000),
        scheduledAt,
        promoCode: 'SPRING25',
      }),
    );
    expect(third.code).toBe('promo_code_rejected');
    expect(third.details.reason).toBe('per_student_limit');
    await service.cancelBooking(ctx(), { bookingId: 'b2', reason: 'changed my mind' });
    view = await promoCodes.get(T, 'SPRING25');
    expect(view.usage).toMatchObject({ reserved: 0, confirmed: 1, released: 1, redemptionsLeft: 9 });
  });
});
