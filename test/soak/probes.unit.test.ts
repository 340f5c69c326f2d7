import { describe, expect, it } from 'vitest';
import { diffSnapshots } from '../../soak/final.js';
import { alteredBody } from '../../soak/workload.js';

describe('idempotency-key reuse probe', () => {
  it('changes one business field of the original body', () => {
    expect(alteredBody({ amount: 100, currency: 'usd' })).toEqual({ amount: 101, currency: 'usd' });
    expect(alteredBody({ bookingId: 'b', price: { amount: 5, currency: 'usd' } })).toEqual({
      bookingId: 'b',
      price: { amount: 6, currency: 'usd' },
    });
    expect(alteredBody({ reason: 'x' })).toEqual({ reason: 'x (changed)' });
    expect(alteredBody({})).toBeNull();
    expect(alteredBody(undefined)).toBeNull();
  });
});

describe('rebuild comparison', () => {
  it('reports the keys whose reads differ, bounded', () => {
    const before = { 'wallet s0': { available: 1 }, 'booking b1': { status: 'held' }, 'booking b2': null };
    const after = { 'wallet s0': { available: 1 }, 'booking b1': { status: 'completed' }, 'payout p1': {} };
    const diffs = diffSnapshots(before, after);
    expect(diffs.map((d) => d.split(':')[0])).toEqual(['booking b1', 'booking b2', 'payout p1']);
    expect(diffSnapshots(before, before)).toEqual([]);
    expect(diffSnapshots(before, after, 1)).toHaveLength(1);
  });
});
