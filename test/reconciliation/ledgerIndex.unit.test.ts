import { describe, expect, it } from 'vitest';
import { LedgerIndex } from '../../src/reconciliation/ledgerIndex.js';

describe('LedgerIndex (hash table over typed arrays)', () => {
  it('stores, overwrites, matches and reports unmatched keys once, across growth', () => {
    const index = new LedgerIndex(50_000);
    for (let i = 0; i < 20_000; i++) {
      index.put({
        key: `pi_${i}`,
        side: i % 2 ? 'connected' : 'platform',
        amount: i,
        currency: i % 3 ? 'usd' : 'eur',
        occurredAtMs: i,
      });
    }
    index.put({ key: 'pi_7', side: 'platform', amount: -7, currency: 'gbp', occurredAtMs: 7 });
    expect(index.size).toBe(20_000);
    expect(index.peek('pi_7')).toEqual({ amount: -7, currency: 'gbp' });
    expect(index.peek('pi_20000')).toBeNull();
    for (let i = 0; i < 20_000; i += 2)
      expect(index.take(`pi_${i}`)).toEqual({ amount: i, currency: i % 3 ? 'usd' : 'eur' });
    expect(index.reportUnmatched('pi_0')).toBe(false); // matched
    expect(index.reportUnmatched('pi_1')).toBe(true);
    expect(index.reportUnmatched('pi_1')).toBe(false); // reported once
    expect(index.reportUnmatched('pi_nope')).toBe(false);
  });

  it('refuses to grow past maxEntries', () => {
    const index = new LedgerIndex(2);
    index.put({ key: 'a', side: 'platform', amount: 1, currency: 'usd', occurredAtMs: 0 });
    index.put({ key: 'b', side: 'platform', amount: 1, currency: 'usd', occurredAtMs: 0 });
    index.put({ key: 'a', side: 'platform', amount: 2, currency: 'usd', occurredAtMs: 0 });
    expect(() =>
      index.put({ key: 'c', side: 'platform', amount: 1, currency: 'usd', occurredAtMs: 0 }),
    ).toThrow(/index is full/);
  });
});
