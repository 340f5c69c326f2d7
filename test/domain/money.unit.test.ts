import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import {
  allocateProportionally,
  assertAmount,
  assertCurrency,
  cumulativeShare,
  currencyExponent,
  formatMoney,
  mulDivFloor,
  parseMoney,
  splitByBps,
} from '../../src/domain/money.js';
import { BAD_AMOUNTS } from './fixtures.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 200);
const amountArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

function expectValidation(fn: () => unknown, message?: RegExp): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe('validation_failed');
    if (message) expect((error as DomainError).message).toMatch(message);
    return;
  }
  throw new Error('expected validation_failed');
}

describe('assertAmount', () => {
  it.each(BAD_AMOUNTS)('rejects %s', (_why, value) => {
    expectValidation(() => assertAmount(value));
  });
  it('names the field and the reason', () => {
    expectValidation(() => assertAmount(1.5, { field: 'price' }), /price must be an integer/);
    expectValidation(() => assertAmount(-1), /must not be negative/);
    expectValidation(() => assertAmount(Number.NaN), /NaN/);
    expectValidation(() => assertAmount(0), /greater than zero/);
    expectValidation(() => assertAmount(2 ** 60), /at most 9007199254740991/);
  });
  it('accepts positive safe integers up to MAX_SAFE_INTEGER', () => {
    expect(assertAmount(1)).toBe(1);
    expect(assertAmount(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
  });
  it('accepts zero only when allowed, normalising -0', () => {
    expect(assertAmount(0, { allowZero: true })).toBe(0);
    expect(Object.is(assertAmount(-0, { allowZero: true }), 0)).toBe(true);
  });
});

describe('currencies', () => {
  it('knows the exponents of zero-, two- and three-decimal currencies', () => {
    expect(currencyExponent('usd')).toBe(2);
    expect(currencyExponent('eur')).toBe(2);
    expect(currencyExponent('gbp')).toBe(2);
    expect(currencyExponent('jpy')).toBe(0);
    expect(currencyExponent('vnd')).toBe(0);
    expect(currencyExponent('kwd')).toBe(3);
  });
  it.each([['xxx'], ['USD'], [''], [' usd'], [42], [null], ['__proto__'], ['toString'], ['constructor']])(
    'rejects currency %j',
    (value) => {
      expectValidation(() => assertCurrency(value), /unknown currency/);
    },
  );
  it('formats money for descriptions', () => {
    expect(formatMoney({ amount: 1234, currency: 'usd' })).toBe('12.34 USD');
    expect(formatMoney({ amount: 5, currency: 'eur' })).toBe('0.05 EUR');
    expect(formatMoney({ amount: 1500, currency: 'jpy' })).toBe('1500 JPY');
    expect(formatMoney({ amount: 1250, currency: 'kwd' })).toBe('1.250 KWD');
  });
});

describe('parseMoney', () => {
  it('parses a valid amount', () => {
    expect(parseMoney({ amount: 500, currency: 'usd' })).toEqual({ amount: 500, currency: 'usd' });
  });
  it.each(BAD_AMOUNTS)('rejects a %s amount', (_why, amount) => {
    expectValidation(() => parseMoney({ amount, currency: 'usd' }));
  });
  it('rejects unknown, uppercase and tenant-disallowed currencies, and non-objects', () => {
    expectValidation(() => parseMoney({ amount: 1, currency: 'abc' }), /unknown currency/);
    expectValidation(() => parseMoney({ amount: 1, currency: 'USD' }), /unknown currency/);
    expectValidation(
      () => parseMoney({ amount: 1, currency: 'jpy' }, { allowedCurrencies: ['usd'] }),
      /not allowed/,
    );
    expectValidation(() => parseMoney(null));
    expectValidation(() => parseMoney([1, 'usd']));
  });
});

describe('mulDivFloor', () => {
  it('is exact past 2^53 intermediates, and refuses results past MAX_SAFE_INTEGER', () => {
    fc.assert(
      fc.property(
        amountArb,
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 10_000 }),
        (a, b, c) => {
          const exact = (BigInt(a) * BigInt(b)) / BigInt(c);
          if (exact > BigInt(Number.MAX_SAFE_INTEGER)) expect(() => mulDivFloor(a, b, c)).toThrow(RangeError);
          else expect(BigInt(mulDivFloor(a, b, c))).toBe(exact);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('splitByBps', () => {
  it('floors the bps side and gives the remainder to the other', () => {
    expect(splitByBps(1000, 2000)).toEqual({ part: 200, rest: 800 });
    expect(splitByBps(999, 2000)).toEqual({ part: 199, rest: 800 });
    expect(splitByBps(1, 2000)).toEqual({ part: 0, rest: 1 });
    expect(splitByBps(7, 10_000)).toEqual({ part: 7, rest: 0 });
    expect(splitByBps(0, 2000)).toEqual({ part: 0, rest: 0 });
  });
  it('rejects bps outside 0..10000 and bad amounts', () => {
    expectValidation(() => splitByBps(100, -1));
    expectValidation(() => splitByBps(100, 10_001));
    expectValidation(() => splitByBps(100, 2.5));
    expectValidation(() => splitByBps(-5, 100));
  });
  it('property: parts sum to the whole, are never negative, and the bps side is the floor', () => {
    fc.assert(
      fc.property(amountArb, fc.integer({ min: 0, max: 10_000 }), (amount, bps) => {
        const { part, rest } = splitByBps(amount, bps);
        expect(part + rest).toBe(amount);
        expect(part).toBeGreaterThanOrEqual(0);
        expect(rest).toBeGreaterThanOrEqual(0);
        const exact = BigInt(amount) * BigInt(bps);
        expect(BigInt(part) * 10_000n <= exact).toBe(true);
        expect((BigInt(part) + 1n) * 10_000n > exact).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('allocateProportionally', () => {
  it('uses largest remainders, ties to the earlier part', () => {
    expect(allocateProportionally(100, [1, 1, 1])).toEqual([34, 33, 33]);
    expect(allocateProportionally(10, [1, 2])).toEqual([3, 7]);
    expect(allocateProportionally(5, [0, 3, 0])).toEqual([0, 5, 0]);
    expect(allocateProportionally(0, [1, 2])).toEqual([0, 0]);
  });
  it('rejects empty, negative and all-zero weights', () => {
    expectValidation(() => allocateProportionally(10, []));
    expectValidation(() => allocateProportionally(10, [1, -1]));
    expectValidation(() => allocateProportionally(10, [0, 0]));
    expectValidation(() => allocateProportionally(1.5, [1]));
  });
  it('property: allocations sum exactly to the total, within one unit of the exact share', () => {
    fc.assert(
      fc.property(
        amountArb,
        fc
          .array(fc.integer({ min: 0, max: 1_000_000_000 }), { minLength: 1, maxLength: 12 })
          .filter((w) => w.some((x) => x > 0)),
        (total, weights) => {
          const parts = allocateProportionally(total, weights);
          expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
          const sum = weights.reduce((a, b) => a + BigInt(b), 0n);
          parts.forEach((part, i) => {
            expect(part).toBeGreaterThanOrEqual(0);
            const floor = (BigInt(total) * BigInt(weights[i]!)) / sum;
            expect(BigInt(part) === floor || BigInt(part) === floor + 1n).toBe(true);
            if (weights[i] === 0) expect(part).toBe(0);
          });
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('cumulativeShare (partial refunds)', () => {
  it('does not over-reverse either side with many small refunds', () => {
    // captured 4, commission 2, tutor share 2: refunds 1+1+1+1.
    const shares = [0, 1, 2, 3].map((before) => cumulativeShare(2, 4, before, 1));
    expect(shares).toEqual([0, 1, 0, 1]);
    expect(shares.reduce((a, b) => a + b)).toBe(2);
  });
  it('property: any sequence of partial refunds up to the whole splits both sides exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 20 }),
        (whole, bps, cuts) => {
          const part = splitByBps(whole, bps).part;
          let before = 0;
          let partTotal = 0;
          for (const cut of cuts) {
            if (before >= whole) break;
            const amount = Math.min(cut, whole - before);
            const share = cumulativeShare(part, whole, before, amount);
            expect(share).toBeGreaterThanOrEqual(0);
            expect(share).toBeLessThanOrEqual(amount);
            partTotal += share;
            before += amount;
            expect(partTotal).toBeLessThanOrEqual(part);
            expect(before - partTotal).toBeLessThanOrEqual(whole - part);
          }
          const last = whole - before;
          if (last > 0) partTotal += cumulativeShare(part, whole, before, last);
          expect(partTotal).toBe(part);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
