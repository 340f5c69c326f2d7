import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, stableHash } from '../../src/commands/stableHash.js';

// ---------------------------------------------------------------------------------------------------
// The implementation before the rewrite, kept verbatim as the reference: command hashes are stored in
// event metadata and compared on retries (a changed hash reads as a reused idempotency key).

function oldCanonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  switch (typeof value) {
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'number':
    case 'boolean':
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(oldCanonicalJson).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${oldCanonicalJson(v)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`cannot hash a ${typeof value}`);
  }
}

const oldStableHash = (value: unknown): string =>
  createHash('sha256').update(oldCanonicalJson(value)).digest('hex');

// ---------------------------------------------------------------------------------------------------

function outcome(run: () => unknown): { value: unknown } | { error: string } {
  try {
    return { value: run() };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}

const same = (value: unknown): void => {
  expect(outcome(() => canonicalJson(value))).toEqual(outcome(() => oldCanonicalJson(value)));
  expect(outcome(() => stableHash(value))).toEqual(outcome(() => oldStableHash(value)));
};

describe('stableHash equals the Object.entries implementation', () => {
  it('on command-like values (strings, numbers, bigints, dates, nested records and arrays)', () => {
    const leaf = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.double(),
      fc.bigInt(),
      fc.boolean(),
      fc.date({ noInvalidDate: false }),
      fc.constant(undefined),
      fc.constant(null),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
      array: fc.oneof(fc.array(tie('node'), { maxLength: 5 }), fc.sparseArray(tie('node'), { maxLength: 5 })),
      object: fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), tie('node'), { maxKeys: 6 }),
    })).node;
    fc.assert(fc.property(value, same), { numRuns: 5_000 });
  });

  it('on any JavaScript value, throwing alike for functions and symbols', () => {
    const anything = fc.anything({
      maxDepth: 4,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
    });
    fc.assert(fc.property(anything, same), { numRuns: 5_000 });
    same({ b: () => 1, a: Symbol('s') });
    same([1, Symbol('s'), () => 1]);
    same({ when: new Date(Number.NaN) });
  });

  it('keeps the hashes already stored (fixed vector)', () => {
    const command = {
      type: 'PlaceBookingHold',
      command: {
        bookingId: 'booking-1',
        n: 12345678901234567890n,
        at: new Date(1_700_000_000_000),
        amount: { currency: 'EUR', amountMinor: 4500 },
        skipped: undefined,
      },
    };
    const expected = '951267f53fa6139c2cb1153b36728408cbd642db2a9ddc1bb264ac9d452fdff2';
    expect(stableHash(command)).toBe(expected);
    expect(oldStableHash(command)).toBe(expected);
  });
});
