import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { deciderFor, deciders, EVENT_TYPES, hasDecider } from '../../src/domain/index.js';
import { categoryPrefix, parseStreamName, STREAM_CATEGORIES, streamName } from '../../src/domain/streams.js';

describe('stream names', () => {
  it.each(STREAM_CATEGORIES)('round-trips the %s category', (category) => {
    const name = streamName(category, 'acme_1', 'Id-9_x');
    expect(name).toBe(`${category}-acme_1.Id-9_x`);
    expect(parseStreamName(name)).toEqual({ category, tenantId: 'acme_1', id: 'Id-9_x' });
  });

  it('keeps dashes in entity ids (the first dash splits the category)', () => {
    expect(parseStreamName('booking-t1.b-1-2')).toEqual({ category: 'booking', tenantId: 't1', id: 'b-1-2' });
    expect(streamName('tenant', 't1', 'settings')).toBe('tenant-t1.settings');
    expect(categoryPrefix('wallet', 't1')).toBe('wallet-t1.');
    expect(categoryPrefix('wallet')).toBe('wallet-');
  });

  it.each([
    ['an unknown category', () => streamName('ledger' as never, 't1', 'x')],
    ['an uppercase tenant', () => streamName('wallet', 'T1', 'x')],
    ['a tenant with a dot', () => streamName('wallet', 't.1', 'x')],
    ['a too long tenant', () => streamName('wallet', 'a'.repeat(41), 'x')],
    ['an id with a dot', () => streamName('wallet', 't1', 'a.b')],
    ['an empty id', () => streamName('wallet', 't1', '')],
    ['a too long id', () => streamName('wallet', 't1', 'x'.repeat(65))],
  ])('rejects %s', (_why, fn) => {
    expect(fn).toThrow(DomainError);
  });

  it.each([
    '$all',
    'wallet',
    'wallet-t1',
    'wallet-.x',
    'ledger-t1.x',
    'wallet-T1.x',
    'wallet-t1.a.b',
    '$ce-wallet',
  ])('does not parse %j', (name) => {
    expect(parseStreamName(name)).toBeNull();
  });
});

describe('decider registry', () => {
  it('has a decider for every category except reconciliation', () => {
    for (const category of STREAM_CATEGORIES) {
      expect(hasDecider(category)).toBe(category !== 'reconciliation');
    }
    expect(deciderFor('wallet')).toBe(deciders.wallet);
    for (const [category, types] of Object.entries(EVENT_TYPES)) {
      expect(types.length, category).toBeGreaterThan(0);
      expect(new Set(types).size).toBe(types.length);
    }
  });
});
