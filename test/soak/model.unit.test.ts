import { describe, expect, it } from 'vitest';
import { type BookingModel, createTenantModel, expectedWallet, parsePosition } from '../../soak/model.js';
import { createRng, deriveSeed } from '../../soak/rng.js';

function booking(over: Partial<BookingModel>): BookingModel {
  return {
    bookingId: 'b',
    studentId: 's0',
    tutorId: 't0',
    price: 1_000,
    status: 'held',
    captured: 0,
    cancellationFee: 0,
    refunds: new Map(),
    busy: false,
    ...over,
  };
}

describe('client-side wallet model', () => {
  it('folds credited top-ups, holds, captures, cancellation fees and refunds', () => {
    const t = createTenantModel('soak_a', 'usd', 2, 1);
    t.topUps.set('u1', { topUpId: 'u1', studentId: 's0', amount: 10_000, expect: 'succeed' });
    t.topUps.set('u2', { topUpId: 'u2', studentId: 's0', amount: 5_000, expect: 'succeed' });
    t.topUps.set('u3', { topUpId: 'u3', studentId: 's0', amount: 7_000, expect: 'fail' });
    t.topUps.set('u4', { topUpId: 'u4', studentId: 's1', amount: 9_000, expect: 'succeed' });
    t.bookings.set('b1', booking({ bookingId: 'b1', price: 1_000 }));
    t.bookings.set(
      'b2',
      booking({
        bookingId: 'b2',
        price: 2_000,
        status: 'completed',
        captured: 2_000,
        refunds: new Map([
          ['k1', 300],
          ['k2', 200],
        ]),
      }),
    );
    t.bookings.set(
      'b3',
      booking({ bookingId: 'b3', price: 1_500, status: 'cancelled', cancellationFee: 150 }),
    );
    t.bookings.set('b4', booking({ bookingId: 'b4', studentId: 's1', price: 4_000 }));
    // u2 not credited (yet): it does not count.
    expect(expectedWallet(t, 's0', new Set(['u1', 'u4']))).toEqual({
      posted: 10_000 - 2_000 + 500 - 150,
      pending: 1_000,
      available: 10_000 - 2_000 + 500 - 150 - 1_000,
    });
    expect(expectedWallet(t, 's1', new Set(['u1', 'u4']))).toEqual({
      posted: 9_000,
      pending: 4_000,
      available: 5_000,
    });
    expect(expectedWallet(t, 's1', new Set())).toEqual({ posted: 0, pending: 4_000, available: -4_000 });
  });

  it('parses positions as strings (and small numbers), nothing else', () => {
    expect(parsePosition('12345678901234567890')).toBe(12345678901234567890n);
    expect(parsePosition(7)).toBe(7n);
    expect(parsePosition('-1')).toBeNull();
    expect(parsePosition('1e3')).toBeNull();
    expect(parsePosition(1.5)).toBeNull();
    expect(parsePosition(undefined)).toBeNull();
  });
});

describe('seeded randomness', () => {
  it('replays the same choices for the same seed and differs across sub-seeds', () => {
    const a = createRng(123);
    const b = createRng(123);
    const xs = Array.from({ length: 20 }, () => a.int(0, 1_000));
    expect(Array.from({ length: 20 }, () => b.int(0, 1_000))).toEqual(xs);
    expect(deriveSeed(1, 0)).not.toBe(deriveSeed(1, 1));
    const r = createRng(5);
    const counts = { x: 0, y: 0 };
    for (let i = 0; i < 10_000; i++) counts[r.weighted({ x: 1, y: 3 })]++;
    expect(counts.y / 10_000).toBeGreaterThan(0.7);
    expect(counts.y / 10_000).toBeLessThan(0.8);
  });
});
