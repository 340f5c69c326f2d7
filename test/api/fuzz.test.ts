import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/api/auth.js';
import { type ShellHarness, shellHarness, token } from './support/harness.js';

/**
 * Random requests against every route: bodies, headers, path parameters and query strings. Whatever
 * arrives, the API never answers 5xx, always answers errors as problem+json, and a rejected request
 * never changes state.
 */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);

const TEMPLATES: Array<{ method: string; path: string }> = [
  { method: 'POST', path: '/v1/wallets/{a}/top-ups' },
  { method: 'GET', path: '/v1/wallets/{a}' },
  { method: 'GET', path: '/v1/wallets/{a}/transactions' },
  { method: 'GET', path: '/v1/top-ups/{a}' },
  { method: 'POST', path: '/v1/bookings' },
  { method: 'POST', path: '/v1/bookings/{a}/complete' },
  { method: 'POST', path: '/v1/bookings/{a}/cancel' },
  { method: 'POST', path: '/v1/bookings/{a}/refunds' },
  { method: 'GET', path: '/v1/bookings/{a}' },
  { method: 'GET', path: '/v1/tutors/{a}/earnings' },
  { method: 'POST', path: '/v1/tutors/{a}/payouts' },
  { method: 'GET', path: '/v1/payouts/{a}' },
  { method: 'GET', path: '/v1/accounts/{a}/balance' },
  { method: 'GET', path: '/v1/accounts/{a}/entries' },
  { method: 'GET', path: '/v1/entries/{a}' },
  { method: 'GET', path: '/v1/streams/{a}/events' },
  { method: 'GET', path: '/v1/ledger/trial-balance' },
  { method: 'POST', path: '/v1/adjustments' },
  { method: 'GET', path: '/v1/tenant/settings' },
  { method: 'PUT', path: '/v1/tenant/settings' },
  { method: 'POST', path: '/v1/jobs/due-tasks' },
];

const ROLES: Role[] = ['student', 'tutor', 'finance_admin', 'tenant_admin', 'service'];

/** Path segments: plausible ids, ids of seeded things, and hostile strings (encoded or raw). */
const segment = fc.oneof(
  fc.constantFrom(
    'stu_f',
    'tut_f',
    'bk_f',
    'po_f',
    'student:stu_f:wallet',
    'booking-acme.bk_f',
    'booking-other.x',
  ),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/),
  fc.string({ maxLength: 80 }).map(encodeURIComponent),
  fc.constantFrom('%', '%E0%A4%A', '..', '%2e%2e%2f', '%00', '', 'a%2Fb', '😀', 'x'.repeat(400)),
);

const query = fc
  .dictionary(
    fc.constantFrom('consistentWith', 'cursor', 'limit', 'asOf', 'position', 'fromRevision', 'x'),
    fc.oneof(
      fc.constantFrom(
        '0',
        '1',
        '-1',
        '200',
        '201',
        '18446744073709551616',
        'NaN',
        '1e3',
        '',
        '2024-01-01T00:00:00Z',
      ),
      fc.string({ maxLength: 30 }),
    ),
    { maxKeys: 3 },
  )
  .map((d) => new URLSearchParams(d).toString());

const money = fc.record({
  amount: fc.oneof(fc.integer({ min: -5, max: 200_000 }), fc.double(), fc.constant(2 ** 53), fc.string()),
  currency: fc.oneof(fc.constantFrom('usd', 'eur', 'USD', 'us', ''), fc.string({ maxLength: 4 })),
});

const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3 }),
  money,
  fc.record(
    {
      bookingId: segment,
      studentId: fc.constantFrom('stu_f', 'stu_x'),
      tutorId: fc.constantFrom('tut_f', 'tut_x'),
      price: money,
      scheduledAt: fc.constantFrom('2030-01-01T10:00:00Z', 'tomorrow', ''),
      reason: fc.string({ maxLength: 20 }),
      amount: fc.integer({ min: -1, max: 10_000 }),
      account: fc.constantFrom('student:stu_f:wallet', 'platform:revenue:commission', 'nope'),
      direction: fc.constantFrom('debit', 'credit', 'sideways'),
      commissionRateBps: fc.integer({ min: -1, max: 20_000 }),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  ),
);

describe('fuzzing the HTTP API', () => {
  let h: ShellHarness;
  const tokens: string[] = [];
  beforeAll(async () => {
    h = await shellHarness();
    h.fake.credit('acme', 'stu_f', 50_000);
    h.fake.seedEarnings('acme', 'tut_f', 50_000);
    for (const role of ROLES) {
      for (const sub of ['stu_f', 'tut_f', 'someone']) tokens.push(await token('acme', sub, role));
    }
    tokens.push(await token('other', 'stu_f', ['student', 'finance_admin', 'service']));
  });
  afterAll(() => h.close());

  it('never answers 5xx, and a rejected request never changes state', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...TEMPLATES),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', null),
        segment,
        query,
        body,
        fc.oneof(
          fc.constantFrom(...tokens).map((t) => `Bearer ${t}`),
          fc.constantFrom(undefined, 'Bearer', 'Bearer x.y.z', 'bearer abc', 'Basic Zm9vOmJhcg=='),
          fc.string({ maxLength: 40 }),
        ),
        fc.oneof(fc.constant(undefined), fc.stringMatching(/^[!-~]{1,20}$/), fc.string({ maxLength: 300 })),
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined),
        async (template, methodOverride, seg, qs, payload, authorization, key, contentType) => {
          const method = methodOverride ?? template.method;
          const url = `${template.path.replace('{a}', seg)}${qs ? `?${qs}` : ''}`;
          const headers: Record<string, string> = {};
          if (authorization !== undefined) headers.authorization = authorization;
          if (key !== undefined) headers['idempotency-key'] = `${key}-${n++}`;
          if (contentType !== undefined) headers['content-type'] = contentType;
          const before = h.fake.changes.length;
          let res: Awaited<ReturnType<typeof h.app.inject>>;
          try {
            res = await h.app.inject({
              method: method as 'GET',
              url,
              headers,
              ...(payload !== undefined && method !== 'GET' ? { payload: JSON.stringify(payload) } : {}),
            });
          } catch (error) {
            // Only a header value the HTTP layer itself refuses to build (invalid characters) may throw.
            expect(String(error)).toMatch(/Invalid character|ERR_INVALID_CHAR|header/i);
            return;
          }
          expect(res.statusCode, `${method} ${url} -> ${res.body}`).toBeLessThan(500);
          if (res.statusCode >= 400) {
            expect(res.headers['content-type']).toContain('application/problem+json');
            expect(h.fake.changes.length, `${method} ${url} changed state`).toBe(before);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
