import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/api/auth.js';
import { chainShellFeatures } from '../chain/shellFeatures.js';
import { documentShellFeatures } from '../documents/shellFeatures.js';
import { webhookShellFeatures } from '../webhooks/shellFeatures.js';
import { type ShellHarness, shellHarness, token } from './support/harness.js';
import { walletControlShellFeatures } from './support/walletControlsShellFeatures.js';

/**
 * Random requests against every route: bodies, headers, path parameters and query strings. Whatever
 * arrives, the API never answers 5xx, always answers errors as problem+json, and a rejected request
 * never changes state.
 */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);

const TEMPLATES: Array<{ method: string; path: string }> = [
  { method: 'POST', path: '/v1/webhook-endpoints' },
  { method: 'GET', path: '/v1/webhook-endpoints' },
  { method: 'GET', path: '/v1/webhook-endpoints/{a}' },
  { method: 'POST', path: '/v1/webhook-endpoints/{a}/disable' },
  { method: 'POST', path: '/v1/webhook-endpoints/{a}/enable' },
  { method: 'POST', path: '/v1/webhook-endpoints/{a}/rotate-secret' },
  { method: 'DELETE', path: '/v1/webhook-endpoints/{a}' },
  { method: 'GET', path: '/v1/webhook-endpoints/{a}/deliveries' },
  { method: 'GET', path: '/v1/webhook-endpoints/we_f/deliveries/{a}' },
  { method: 'POST', path: '/v1/webhook-endpoints/we_f/deliveries/{a}/retry' },
  { method: 'POST', path: '/v1/balance-monitors' },
  { method: 'GET', path: '/v1/balance-monitors' },
  { method: 'GET', path: '/v1/balance-monitors/{a}' },
  { method: 'DELETE', path: '/v1/balance-monitors/{a}' },
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
  { method: 'POST', path: '/v1/tutors/{a}/payout-account' },
  { method: 'GET', path: '/v1/tutors/{a}/payout-account' },
  { method: 'GET', path: '/v1/payouts/{a}' },
  { method: 'GET', path: '/v1/accounts/{a}/balance' },
  { method: 'GET', path: '/v1/accounts/{a}/entries' },
  { method: 'GET', path: '/v1/entries/{a}' },
  { method: 'GET', path: '/v1/streams/{a}/events' },
  { method: 'GET', path: '/v1/ledger/trial-balance' },
  { method: 'POST', path: '/v1/adjustments' },
  { method: 'POST', path: '/v1/periods/{a}/close' },
  { method: 'POST', path: '/v1/periods/2020-01/close' },
  { method: 'GET', path: '/v1/periods' },
  { method: 'GET', path: '/v1/tenant/settings' },
  { method: 'PUT', path: '/v1/tenant/settings' },
  { method: 'POST', path: '/v1/jobs/due-tasks' },
  { method: 'GET', path: '/v1/search' },
  { method: 'GET', path: '/v1/accounts' },
  { method: 'GET', path: '/v1/accounts/{a}/statement' },
  { method: 'GET', path: '/v1/accounts/{a}/statement.csv' },
  { method: 'GET', path: '/v1/accounts/{a}/balance-series' },
  { method: 'GET', path: '/v1/journal' },
  { method: 'GET', path: '/v1/journal.csv' },
  { method: 'GET', path: '/v1/events/{a}' },
  { method: 'GET', path: '/v1/events/{a}/causes' },
  { method: 'GET', path: '/v1/entries/{a}/causes' },
  { method: 'GET', path: '/v1/stories/booking/{a}' },
  { method: 'GET', path: '/v1/stories/{a}/bk_f' },
  { method: 'GET', path: '/v1/ledger/trial-balance/groups' },
  { method: 'GET', path: '/v1/ledger/clearing' },
  { method: 'GET', path: '/v1/analytics' },
  { method: 'POST', path: '/v1/adjustment-proposals' },
  { method: 'GET', path: '/v1/adjustment-proposals' },
  { method: 'GET', path: '/v1/adjustment-proposals/{a}' },
  { method: 'POST', path: '/v1/adjustment-proposals/{a}/approve' },
  { method: 'POST', path: '/v1/adjustment-proposals/{a}/reject' },
  { method: 'GET', path: '/v1/documents' },
  { method: 'GET', path: '/v1/documents/{a}' },
  { method: 'GET', path: '/v1/documents/{a}.pdf' },
  { method: 'GET', path: '/v1/tenant/billing-settings' },
  { method: 'GET', path: '/v1/ledger/balances.csv' },
  { method: 'GET', path: '/v1/ledger/chain-head' },
  { method: 'GET', path: '/v1/tutors/{a}/statements/2020-01.pdf' },
  { method: 'GET', path: '/v1/tutors/tut_f/statements/{a}.csv' },
  { method: 'GET', path: '/v1/tutors/tut_f/statements/annual/{a}.pdf' },
  { method: 'PUT', path: '/v1/tenant/billing-settings' },
  { method: 'GET', path: '/v1/wallets/{a}/limits' },
  { method: 'PUT', path: '/v1/wallets/{a}/limits' },
  { method: 'POST', path: '/v1/promo-codes' },
  { method: 'GET', path: '/v1/promo-codes/{a}' },
  { method: 'PATCH', path: '/v1/promo-codes/{a}' },
  { method: 'GET', path: '/v1/students/{a}/guardians' },
  { method: 'POST', path: '/v1/students/{a}/guardians' },
  { method: 'DELETE', path: '/v1/students/stu_f/guardians/{a}' },
  { method: 'GET', path: '/v1/students/{a}/referral' },
  { method: 'POST', path: '/v1/students/{a}/referred-by' },
  { method: 'GET', path: '/v1/tenant/plans' },
  { method: 'PUT', path: '/v1/tenant/plans' },
  { method: 'POST', path: '/v1/subscriptions' },
  { method: 'GET', path: '/v1/subscriptions/{a}' },
  { method: 'GET', path: '/v1/students/{a}/subscription' },
  { method: 'POST', path: '/v1/subscriptions/{a}/change-plan' },
  { method: 'POST', path: '/v1/subscriptions/{a}/cancel' },
];

const ROLES: Role[] = ['student', 'tutor', 'finance_admin', 'tenant_admin', 'service', 'guardian'];

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
    fc.constantFrom(
      'consistentWith',
      'cursor',
      'limit',
      'asOf',
      'position',
      'fromRevision',
      'x',
      'q',
      'from',
      'to',
      'upTo',
      'order',
      'kind',
      'prefix',
      'currency',
      'points',
      'granularity',
      'owner',
      'asOf',
      'atPosition',
      'knownAt',
    ),
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
        '2024-01-01',
        'asc',
        'liability',
        'usd',
        'month',
        '%_',
        'student:stu_f',
        'tutor:tut_f',
        'invoice',
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
      effectiveAt: fc.constantFrom(
        '2020-01-15T00:00:00Z',
        '2999-01-01T00:00:00Z',
        'yesterday',
        '',
        '0000-01-01T00:00:00Z',
      ),
      corrects: fc.constantFrom('00000000-0000-5000-8000-000000000000', 'nope', ''),
      commissionRateBps: fc.integer({ min: -1, max: 20_000 }),
      url: fc.constantFrom('http://127.0.0.1:9/h', 'http://10.0.0.1/', 'ftp://x', 'http://[::1]/', ''),
      eventTypes: fc.oneof(fc.constant(['*']), fc.array(fc.string({ maxLength: 30 }), { maxLength: 3 })),
      condition: fc.record(
        {
          field: fc.constantFrom('available', 'posted', 'pending', 'x'),
          op: fc.constantFrom('lt', 'lte', 'gt', 'gte', 'eq'),
          amount: fc.oneof(fc.integer(), fc.double(), fc.string()),
        },
        { requiredKeys: [] },
      ),
      graceHours: fc.integer({ min: -1, max: 100 }),
      guardianId: fc.constantFrom('grd_f', 'stu_f', 'bad id', ''),
      perBooking: fc.oneof(fc.integer({ min: -1, max: 10_000 }), fc.constant(null), fc.constant(2 ** 53)),
      perDay: fc.oneof(fc.integer({ min: -1, max: 10_000 }), fc.constant(null), fc.double()),
      perWeek: fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.constant('100')),
      perMonth: fc.oneof(fc.integer({ min: 1, max: 10_000 }), fc.constant(null)),
      currency: fc.constantFrom('usd', 'eur', 'xxx', 'USD', ''),
      legalName: fc.oneof(fc.string({ maxLength: 10 }), fc.constant('Acme Ltd')),
      locale: fc.constantFrom('en-US', 'de-DE', 'xx-ZZ-very-long-and-wrong', '', 'de_DE'),
      pricesIncludeTax: fc.oneof(fc.boolean(), fc.constant('yes')),
      taxRatesBps: fc.record(
        { invoice: fc.integer({ min: -1, max: 10_001 }), receipt: fc.integer({ min: -1, max: 10_001 }) },
        { requiredKeys: [] },
      ),
      code: fc.constantFrom('FUZZ10', 'fuzz10', 'x', '', '-AB'),
      promoCode: fc.constantFrom('FUZZ10', 'nope', ''),
      discount: fc.oneof(
        fc.record({ type: fc.constant('fixed'), amount: fc.integer({ min: -1, max: 10_000 }) }),
        fc.record({
          type: fc.constantFrom('percentage', 'bogus'),
          bps: fc.integer({ min: -1, max: 10_001 }),
          maxAmount: fc.oneof(fc.constant(null), fc.integer({ min: -1, max: 10_000 })),
        }),
      ),
      appliesTo: fc.subarray(['bookings', 'courses', 'subscriptions', 'bookings', 'x']),
      validUntil: fc.constantFrom('2099-01-01T00:00:00Z', '2000-01-01T00:00:00Z', 'never'),
      maxRedemptions: fc.integer({ min: -1, max: 200_000 }),
      maxRedemptionsPerStudent: fc.integer({ min: -1, max: 5 }),
      budget: fc.oneof(fc.constant(null), fc.integer({ min: -1, max: 10_000 })),
      active: fc.oneof(fc.boolean(), fc.constant('no')),
      planId: fc.constantFrom('gold', 'silver', 'nope', ''),
      atPeriodEnd: fc.oneof(fc.boolean(), fc.constant('yes')),
      plans: fc.oneof(
        fc.constant([]),
        fc.array(
          fc.record(
            {
              planId: fc.constantFrom('gold', 'silver', ''),
              name: fc.string({ maxLength: 5 }),
              tier: fc.constantFrom('gold', 'Gold'),
              interval: fc.constantFrom('month', 'year', 'week'),
              price: fc.oneof(fc.integer({ min: -1, max: 10_000 }), fc.constant(2 ** 53)),
              currency: fc.constantFrom('usd', 'jpy', 'USD'),
              benefits: fc.record(
                {
                  bookingDiscountBps: fc.integer({ min: -1, max: 10_001 }),
                  lateCancellationFeeBps: fc.oneof(fc.constant(null), fc.integer({ min: -1, max: 10_001 })),
                  includedCredits: fc.integer({ min: -1, max: 101 }),
                  creditPriceCap: fc.integer({ min: -1, max: 5_000 }),
                },
                { requiredKeys: [] },
              ),
              active: fc.oneof(fc.boolean(), fc.constant('no')),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
      ),
      policy: fc.record(
        {
          dunningRetryDays: fc.array(fc.integer({ min: -1, max: 30 }), { maxLength: 4 }),
          cancelNowRefund: fc.constantFrom('prorated', 'none', 'all'),
        },
        { requiredKeys: [] },
      ),
      extra: fc.anything(),
    },
    { requiredKeys: [] },
  ),
);

describe('fuzzing the HTTP API', () => {
  let h: ShellHarness;
  const tokens: string[] = [];
  const webhooks = webhookShellFeatures();
  const documents = documentShellFeatures(() => webhooks.database());
  const walletControls = walletControlShellFeatures();
  const chain = chainShellFeatures(() => webhooks.database());
  beforeAll(async () => {
    h = await shellHarness(
      {},
      {
        routes: async (store) => [
          ...(await webhooks.routes(store)),
          ...(await documents.routes(store)),
          ...(await walletControls.routes(store)),
          ...(await chain.routes(store)),
        ],
      },
    );
    h.fake.credit('acme', 'stu_f', 50_000);
    h.fake.seedEarnings('acme', 'tut_f', 50_000);
    for (const role of ROLES) {
      for (const sub of ['stu_f', 'tut_f', 'someone']) tokens.push(await token('acme', sub, role));
    }
    tokens.push(await token('other', 'stu_f', ['student', 'finance_admin', 'service']));
  });
  afterAll(async () => {
    await h.close();
    await webhooks.close();
  });

  // Found by the property below (seed -1653213354): a GET route without a querystring schema passed a
  // non-numeric consistentWith to BigInt. Kept as a regular test.
  it('a consistentWith that is not a position is a 400 on a route without a querystring schema', async () => {
    const admin = await token('acme', 'adm_f', 'tenant_admin');
    for (const consistentWith of ['month', 'asc', '-1', '01', '1e3']) {
      const res = await h.app.inject({
        method: 'GET',
        url: `/v1/webhook-endpoints?consistentWith=${consistentWith}`,
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation_failed' });
    }
  });

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
          const headBefore = await h.store.headPosition();
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
            expect(await h.store.headPosition(), `${method} ${url} appended events`).toBe(headBefore);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
