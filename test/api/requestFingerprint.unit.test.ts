import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, requestFingerprint } from '../../src/api/idempotency.js';

// ---------------------------------------------------------------------------------------------------
// The implementation before the rewrite, kept verbatim as the reference: fingerprints are stored for
// 24 h, and a changed one turns a retry into idempotency_key_reused.

function oldCanonicalJson(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(oldCanonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${oldCanonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function oldRequestFingerprint(method: string, url: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${url}\n${oldCanonicalJson(body)}`)
    .digest('hex');
}

// ---------------------------------------------------------------------------------------------------

function outcome(run: () => unknown): { value: unknown } | { error: string } {
  try {
    return { value: run() };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}

const same = (method: string, url: string, body: unknown): void => {
  expect(outcome(() => canonicalJson(body))).toEqual(outcome(() => oldCanonicalJson(body)));
  expect(outcome(() => requestFingerprint(method, url, body))).toEqual(
    outcome(() => oldRequestFingerprint(method, url, body)),
  );
};

const method = fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE');
const url = fc.constantFrom('/v1/bookings', '/v1/bookings/b-1/complete', '/v1/payouts', '/');

/** Everything a JavaScript value can be, including what a JSON body never is. */
const oddValues = fc.anything({
  maxDepth: 4,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
  values: [
    fc.string({ unit: 'binary' }),
    fc.double(),
    fc.boolean(),
    fc.constant(undefined),
    fc.constant(null),
    fc.constant(Symbol('s')),
    fc.func(fc.integer()),
  ],
});

describe('requestFingerprint equals the Object.entries implementation', () => {
  it('on JSON bodies (what fastify hands over)', () => {
    fc.assert(fc.property(method, url, fc.jsonValue(), same), { numRuns: 5_000 });
  });

  it('on booking-hold-shaped bodies, whatever the key order', () => {
    const hold = fc.record(
      {
        bookingId: fc.string({ maxLength: 70 }),
        studentId: fc.string({ maxLength: 70 }),
        tutorId: fc.string({ maxLength: 70 }),
        amount: fc.record({ amountMinor: fc.integer(), currency: fc.constantFrom('EUR', 'USD', 'GBP') }),
        scheduledAt: fc.string(),
        lessonMinutes: fc.option(fc.integer(), { nil: undefined }),
        notes: fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
      },
      { requiredKeys: ['bookingId'] },
    );
    fc.assert(
      fc.property(method, url, hold, fc.nat(), (m, u, body, seed) => {
        same(m, u, body);
        const keys = Object.keys(body);
        const shuffled = Object.fromEntries(
          keys.map((_, i) => keys[(i + seed) % keys.length]!).map((k) => [k, body[k as keyof typeof body]]),
        );
        expect(requestFingerprint(m, u, shuffled)).toBe(requestFingerprint(m, u, body));
      }),
      { numRuns: 3_000 },
    );
  });

  it('on any JavaScript value (holes, functions, symbols, boxed values, dates, typed arrays)', () => {
    fc.assert(fc.property(method, url, oddValues, same), { numRuns: 5_000 });
    const holey: number[] = [1];
    holey[2] = 3;
    expect(oldCanonicalJson(holey)).toBe('[1,,3]');
    same('POST', '/', holey);
    same('POST', '/', [() => 1, Symbol('s'), undefined, 2]);
    same('POST', '/', { f: () => 1, s: Symbol('s'), u: undefined, n: Number.NaN, z: -0 });
    same('POST', '/', () => 1);
    same('POST', '/', { b: 1n });
  });

  it('keeps the fingerprints already stored (fixed vectors)', () => {
    const body = {
      tutorId: 'tutor-7',
      studentId: 'student-42',
      scheduledAt: '2026-03-01T10:00:00Z',
      placedAt: '2026-02-20T09:30:00.123Z',
      lessonMinutes: 60,
      bookingId: 'booking-123456',
      amount: { currency: 'EUR', amountMinor: 4500 },
    };
    const expected = 'e82001e253d463831a1f2d186afe41fef383bd71f040836744b61fd7ae0768d0';
    expect(requestFingerprint('POST', '/v1/bookings', body)).toBe(expected);
    expect(oldRequestFingerprint('POST', '/v1/bookings', body)).toBe(expected);
    expect(requestFingerprint('POST', '/v1/bookings', undefined)).toBe(
      '3c4603cf0a04e1cc08ce57bcf2cde120f02b978cf7ed34e90d96400e4e7b4936',
    );
  });
});
