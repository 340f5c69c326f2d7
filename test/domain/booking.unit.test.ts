import { describe, expect, it } from 'vitest';
import {
  type BookingCommand,
  type BookingEvent,
  bookingDecider,
  type PlaceBooking,
  type RefundBooking,
} from '../../src/domain/booking.js';
import { at, BAD_AMOUNTS, POLICY, uuid } from './fixtures.js';
import { foldEvents, history, spec } from './spec.js';

const PLACED_AT = '2026-03-01T10:00:00.000Z';
const SCHEDULED = '2026-03-10T10:00:00.000Z';
const HOLD = uuid('hold-b1');

const place = (price = 4000, overrides: Partial<PlaceBooking> = {}): PlaceBooking => ({
  type: 'PlaceBooking',
  bookingId: 'b1',
  studentId: 's1',
  tutorId: 't1',
  price,
  currency: 'usd',
  scheduledAt: SCHEDULED,
  holdId: HOLD,
  policy: POLICY,
  placedAt: PLACED_AT,
  ...overrides,
});
const complete = (completedAt = at(SCHEDULED, 1)): BookingCommand => ({
  type: 'CompleteBooking',
  completedAt,
});
const cancel = (cancelledAt: string): BookingCommand => ({
  type: 'CancelBooking',
  reason: 'student is ill',
  cancelledAt,
});
const expire = (now: string): BookingCommand => ({ type: 'ExpireBooking', now });
const refund = (refundId: string, amount?: number): RefundBooking => ({
  type: 'RefundBooking',
  refundId,
  amount,
  reason: 'tutor was late',
  refundedAt: at(SCHEDULED, 2),
});

const placed = (price = 4000) => history(bookingDecider, [place(price)]);
const completed = (price = 4000) => history(bookingDecider, [place(price), complete()]);
const ref = { bookingId: 'b1', studentId: 's1', tutorId: 't1', holdId: HOLD, currency: 'usd' };

describe('booking: PlaceBooking', () => {
  it('records the booking with a snapshot of the policy, its expiry and free cancellation window', () => {
    spec(bookingDecider)
      .given([])
      .when(place())
      .thenEmits([
        {
          type: 'BookingPlaced',
          data: {
            ...ref,
            price: 4000,
            scheduledAt: SCHEDULED,
            policy: POLICY,
            placedAt: PLACED_AT,
            expiresAt: '2026-03-17T10:00:00.000Z',
            freeCancellationUntil: '2026-03-09T10:00:00.000Z',
          },
        },
      ]);
  });
  it.each(BAD_AMOUNTS)('rejects a %s price', (_why, price) => {
    spec(bookingDecider)
      .given([])
      .when(place(price as number))
      .thenFails('validation_failed');
  });
  it('rejects bad fields: currency, ids, times, policy', () => {
    const bad: Array<Partial<PlaceBooking>> = [
      { currency: 'usdx' },
      { bookingId: '' },
      { studentId: 'a b' },
      { holdId: 'not-a-uuid' },
      { scheduledAt: 'tomorrow' },
      { scheduledAt: PLACED_AT },
      { placedAt: '2026-03-01' },
      { policy: { ...POLICY, commissionRateBps: 10_000 } },
      { policy: { ...POLICY, cancellationFeeBps: -1 } },
      { policy: { ...POLICY, holdExpiryDays: 0 } },
      { policy: null as never },
    ];
    for (const overrides of bad) {
      spec(bookingDecider).given([]).when(place(4000, overrides)).thenFails('validation_failed');
    }
  });
  it('rejects placing a booking twice', () => {
    spec(bookingDecider).given(placed()).when(place()).thenFails('invalid_state');
  });
});

describe('booking: CompleteBooking', () => {
  it('captures the price and splits it: commission floored, the tutor gets the rest', () => {
    spec(bookingDecider)
      .given(placed(999))
      .when(complete('2026-03-10T11:00:00.000Z'))
      .thenEmits([
        {
          type: 'BookingCompleted',
          data: {
            ...ref,
            captured: 999,
            tutorShare: 800,
            commission: 199,
            completedAt: '2026-03-10T11:00:00.000Z',
            earningsClearableAt: '2026-03-17T11:00:00.000Z',
          },
        },
      ]);
  });
  it('uses the policy snapshot, not later settings', () => {
    const events = history(bookingDecider, [place(1000, { policy: { ...POLICY, commissionRateBps: 1500 } })]);
    spec(bookingDecider)
      .given(events)
      .when(complete())
      .thenEmits((e) => expect(e[0]!.data).toMatchObject({ commission: 150, tutorShare: 850 }));
  });
  it('rejects an unknown booking, a booking not held, and a hold past its expiry', () => {
    spec(bookingDecider).given([]).when(complete()).thenFails('not_found');
    spec(bookingDecider).given(completed()).when(complete()).thenFails('invalid_state');
    const cancelled = history(bookingDecider, [place(), cancel(PLACED_AT)]);
    spec(bookingDecider).given(cancelled).when(complete()).thenFails('invalid_state');
    spec(bookingDecider)
      .given(placed())
      .when(complete('2026-03-17T10:00:00.000Z'))
      .thenFails('invalid_state');
    spec(bookingDecider).given(placed()).when(complete('not a date')).thenFails('validation_failed');
  });
});

describe('booking: CancelBooking', () => {
  it('is free at or before the free window', () => {
    spec(bookingDecider)
      .given(placed())
      .when(cancel('2026-03-09T10:00:00.000Z'))
      .thenEmits([
        {
          type: 'BookingCancelled',
          data: {
            ...ref,
            reason: 'student is ill',
            late: false,
            fee: 0,
            tutorShare: 0,
            commission: 0,
            cancelledAt: '2026-03-09T10:00:00.000Z',
            earningsClearableAt: null,
          },
        },
      ]);
  });
  it('charges the late fee after the free window, split like a capture', () => {
    spec(bookingDecider)
      .given(placed(4001))
      .when(cancel('2026-03-09T10:00:00.001Z'))
      .thenEmits((events) => {
        // fee = floor(4001 * 5000 / 10000) = 2000; commission = floor(2000 * 2000 / 10000) = 400.
        expect(events[0]!.data).toMatchObject({
          late: true,
          fee: 2000,
          tutorShare: 1600,
          commission: 400,
          earningsClearableAt: '2026-03-16T10:00:00.001Z',
        });
      });
  });
  it('still allows a no-show cancellation after the session, before expiry', () => {
    spec(bookingDecider)
      .given(placed())
      .when(cancel(at(SCHEDULED, 5)))
      .thenEmits((events) => expect(events[0]!.data).toMatchObject({ late: true, fee: 2000 }));
  });
  it('a fee that rounds to zero is no fee', () => {
    spec(bookingDecider)
      .given(placed(1))
      .when(cancel(at(SCHEDULED, -1)))
      .thenEmits((events) =>
        expect(events[0]!.data).toMatchObject({ late: true, fee: 0, earningsClearableAt: null }),
      );
  });
  it('rejects cancelling an unknown, completed, cancelled or expired booking, or after expiry', () => {
    spec(bookingDecider).given([]).when(cancel(PLACED_AT)).thenFails('not_found');
    spec(bookingDecider).given(completed()).when(cancel(PLACED_AT)).thenFails('invalid_state');
    const cancelled = history(bookingDecider, [place(), cancel(PLACED_AT)]);
    spec(bookingDecider).given(cancelled).when(cancel(PLACED_AT)).thenFails('invalid_state');
    const expired = history(bookingDecider, [place(), expire('2026-03-17T10:00:00.000Z')]);
    spec(bookingDecider).given(expired).when(cancel(PLACED_AT)).thenFails('invalid_state');
    spec(bookingDecider).given(placed()).when(cancel('2026-03-18T00:00:00.000Z')).thenFails('invalid_state');
    spec(bookingDecider)
      .given(placed())
      .when({ type: 'CancelBooking', reason: '', cancelledAt: PLACED_AT })
      .thenFails('validation_failed');
  });
});

describe('booking: ExpireBooking', () => {
  it('expires a hold not completed by scheduledAt + holdExpiryDays', () => {
    spec(bookingDecider)
      .given(placed())
      .when(expire('2026-03-17T10:00:00.000Z'))
      .thenEmits([{ type: 'BookingExpired', data: { ...ref, expiredAt: '2026-03-17T10:00:00.000Z' } }]);
  });
  it('rejects expiring too early, twice, an unknown or a completed booking', () => {
    spec(bookingDecider).given(placed()).when(expire('2026-03-17T09:59:59.999Z')).thenFails('invalid_state');
    const expired = history(bookingDecider, [place(), expire('2026-03-17T10:00:00.000Z')]);
    spec(bookingDecider).given(expired).when(expire('2026-03-18T10:00:00.000Z')).thenFails('invalid_state');
    spec(bookingDecider).given([]).when(expire('2026-03-18T10:00:00.000Z')).thenFails('not_found');
    spec(bookingDecider)
      .given(completed())
      .when(expire('2026-03-18T10:00:00.000Z'))
      .thenFails('invalid_state');
  });
});

describe('booking: RefundBooking', () => {
  it('refunds everything left when no amount is given, reversing both sides in full', () => {
    spec(bookingDecider)
      .given(completed())
      .when(refund('r1'))
      .thenEmits([
        {
          type: 'BookingRefunded',
          data: {
            ...ref,
            refundId: 'r1',
            amount: 4000,
            tutorPart: 3200,
            commissionPart: 800,
            refundedTotal: 4000,
            reason: 'tutor was late',
            refundedAt: at(SCHEDULED, 2),
          },
        },
      ]);
  });
  it('splits partial refunds cumulatively so the last takes exactly what remains', () => {
    // price 4, commission bps 5000 -> commission 2, tutor 2; four refunds of 1.
    const base = history(bookingDecider, [
      place(4, { policy: { ...POLICY, commissionRateBps: 5000 } }),
      complete(),
    ]);
    let events: BookingEvent[] = base;
    const parts: Array<[number, number]> = [];
    for (const id of ['r1', 'r2', 'r3', 'r4']) {
      const [event] = spec(bookingDecider)
        .given(events)
        .when(refund(id, 1))
        .thenEmits(() => {});
      if (event?.type !== 'BookingRefunded') throw new Error('expected a refund');
      parts.push([event.data.tutorPart, event.data.commissionPart]);
      events = [...events, event];
    }
    expect(parts).toEqual([
      [1, 0],
      [0, 1],
      [1, 0],
      [0, 1],
    ]);
    const state = foldEvents(bookingDecider, events);
    expect(state).toMatchObject({ refunded: 4, refundedTutor: 2, refundedCommission: 2 });
    spec(bookingDecider).given(events).when(refund('r5', 1)).thenFails('invalid_state');
  });
  it('accepts ids that are Object.prototype names (regression: plain-object lookups saw them as used)', () => {
    for (const refundId of ['constructor', '__proto__', 'toString']) {
      spec(bookingDecider)
        .given(completed())
        .when(refund(refundId, 100))
        .thenEmits((e) => expect(e[0]!.data).toMatchObject({ refundId }));
    }
  });
  it('rejects refunding more than captured in total', () => {
    spec(bookingDecider).given(completed()).when(refund('r1', 4001)).thenFails('limit_exceeded');
    const partly = [
      ...completed(),
      ...bookingDecider.decide(refund('r1', 3000), foldEvents(bookingDecider, completed())),
    ];
    spec(bookingDecider).given(partly).when(refund('r2', 1001)).thenFails('limit_exceeded');
    spec(bookingDecider)
      .given(partly)
      .when(refund('r2'))
      .thenEmits((e) =>
        expect(e[0]!.data).toMatchObject({ amount: 1000, tutorPart: 800, commissionPart: 200 }),
      );
  });
  it('rejects a reused refund id, a bad amount, and refunds of bookings not completed', () => {
    const partly = [
      ...completed(),
      ...bookingDecider.decide(refund('r1', 100), foldEvents(bookingDecider, completed())),
    ];
    spec(bookingDecider).given(partly).when(refund('r1', 100)).thenFails('invalid_state');
    for (const [, amount] of BAD_AMOUNTS) {
      spec(bookingDecider)
        .given(completed())
        .when(refund('r2', amount as number))
        .thenFails('validation_failed');
    }
    spec(bookingDecider).given(placed()).when(refund('r1')).thenFails('invalid_state');
    spec(bookingDecider).given([]).when(refund('r1')).thenFails('not_found');
    spec(bookingDecider)
      .given(completed())
      .when({ ...refund('r1'), reason: '' })
      .thenFails('validation_failed');
  });
});

describe('booking: evolve asserts invariants', () => {
  it('throws on a completion after a cancellation in the stream', () => {
    const [placedEvent] = placed();
    const cancelled = bookingDecider.decide(cancel(PLACED_AT), foldEvents(bookingDecider, [placedEvent!]));
    const completedEvent = completed()[1]!;
    expect(() => foldEvents(bookingDecider, [placedEvent!, ...cancelled, completedEvent])).toThrow(
      /invariant violated/,
    );
  });
});
