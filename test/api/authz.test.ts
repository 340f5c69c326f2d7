import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/api/auth.js';
import { type ShellHarness, shellHarness, token } from './support/harness.js';

/**
 * Every role against every route, acting on resources that are their own where ownership matters:
 * allowed (anything but 401/403) or 403. The expected table is written out here, independently of the
 * policies in the route modules, so a policy change shows up as a test diff.
 */
const T = 'acme';
const ROLES: Role[] = ['student', 'tutor', 'finance_admin', 'tenant_admin', 'service'];
const SUB: Record<Role, string> = {
  student: 'stu_a',
  tutor: 'tut_a',
  finance_admin: 'fin_a',
  tenant_admin: 'adm_a',
  service: 'svc_a',
};

interface RouteCase {
  name: string;
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  body?: unknown;
  allowed: Role[];
}

const ROUTES: RouteCase[] = [
  {
    name: 'top up',
    method: 'POST',
    url: '/v1/wallets/stu_a/top-ups',
    body: { amount: 1000, currency: 'usd' },
    allowed: ['student', 'service'],
  },
  {
    name: 'wallet',
    method: 'GET',
    url: '/v1/wallets/stu_a',
    allowed: ['student', 'finance_admin', 'service'],
  },
  {
    name: 'wallet transactions',
    method: 'GET',
    url: '/v1/wallets/stu_a/transactions?limit=10',
    allowed: ['student', 'finance_admin', 'service'],
  },
  {
    name: 'top-up',
    method: 'GET',
    url: '/v1/top-ups/tu_a',
    allowed: ['student', 'finance_admin', 'service'],
  },
  {
    name: 'book',
    method: 'POST',
    url: '/v1/bookings',
    body: {
      studentId: 'stu_a',
      tutorId: 'tut_a',
      price: { amount: 100, currency: 'usd' },
      scheduledAt: '2030-01-01T10:00:00Z',
    },
    allowed: ['student', 'service'],
  },
  { name: 'complete', method: 'POST', url: '/v1/bookings/bk_a/complete', allowed: ['tutor', 'service'] },
  {
    name: 'cancel',
    method: 'POST',
    url: '/v1/bookings/bk_a/cancel',
    body: { reason: 'ill' },
    allowed: ['student', 'tutor', 'service'],
  },
  {
    name: 'refund',
    method: 'POST',
    url: '/v1/bookings/bk_a/refunds',
    body: { reason: 'complaint' },
    allowed: ['finance_admin', 'service'],
  },
  {
    name: 'booking',
    method: 'GET',
    url: '/v1/bookings/bk_a',
    allowed: ['student', 'tutor', 'finance_admin', 'service'],
  },
  {
    name: 'earnings',
    method: 'GET',
    url: '/v1/tutors/tut_a/earnings',
    allowed: ['tutor', 'finance_admin', 'service'],
  },
  {
    name: 'payout request',
    method: 'POST',
    url: '/v1/tutors/tut_a/payouts',
    body: { amount: 1000, currency: 'usd' },
    allowed: ['tutor', 'service'],
  },
  { name: 'payout', method: 'GET', url: '/v1/payouts/po_a', allowed: ['tutor', 'finance_admin', 'service'] },
  {
    name: 'account balance',
    method: 'GET',
    url: '/v1/accounts/student:stu_a:wallet/balance',
    allowed: ['student', 'finance_admin', 'service'],
  },
  {
    name: 'tutor account entries',
    method: 'GET',
    url: '/v1/accounts/tutor:tut_a:earnings:available/entries',
    allowed: ['tutor', 'finance_admin', 'service'],
  },
  {
    name: 'platform account balance',
    method: 'GET',
    url: '/v1/accounts/platform:revenue:commission/balance',
    allowed: ['finance_admin', 'service'],
  },
  { name: 'entry', method: 'GET', url: '/v1/entries/e_1', allowed: ['finance_admin', 'service'] },
  {
    name: 'stream events',
    method: 'GET',
    url: '/v1/streams/booking-acme.bk_a/events',
    allowed: ['finance_admin', 'service'],
  },
  {
    name: 'trial balance',
    method: 'GET',
    url: '/v1/ledger/trial-balance',
    allowed: ['finance_admin', 'service'],
  },
  {
    name: 'adjustment',
    method: 'POST',
    url: '/v1/adjustments',
    body: {
      account: 'platform:revenue:commission',
      direction: 'debit',
      amount: 5,
      currency: 'usd',
      reason: 'fix',
    },
    allowed: ['finance_admin'],
  },
  {
    name: 'settings',
    method: 'GET',
    url: '/v1/tenant/settings',
    allowed: ['tenant_admin', 'finance_admin', 'service'],
  },
  {
    name: 'settings change',
    method: 'PUT',
    url: '/v1/tenant/settings',
    body: { commissionRateBps: 1500 },
    allowed: ['tenant_admin'],
  },
  { name: 'due tasks', method: 'POST', url: '/v1/jobs/due-tasks', body: {}, allowed: ['service'] },
  {
    name: 'reconciliation run',
    method: 'POST',
    url: '/v1/reconciliation/runs',
    body: { from: '2030-01-01T00:00:00Z', to: '2030-01-02T00:00:00Z' },
    allowed: ['finance_admin'],
  },
  {
    name: 'reconciliation report',
    method: 'GET',
    url: '/v1/reconciliation/runs/run_a?format=csv',
    allowed: ['finance_admin'],
  },
];

async function seed(h: ShellHarness, tenant: string): Promise<void> {
  h.fake.credit(tenant, 'stu_a', 123_457);
  h.fake.seedEarnings(tenant, 'tut_a', 98_765);
  const svc = {
    tenantId: tenant,
    actor: { id: 'seed', role: 'service' },
    correlationId: 'c',
    causationId: 'c',
  };
  await h.fake.commands.placeBooking(
    { ...svc, idempotencyKey: 'seed-bk' },
    {
      bookingId: 'bk_a',
      studentId: 'stu_a',
      tutorId: 'tut_a',
      price: { amount: 500, currency: 'usd' },
      scheduledAt: '2030-01-01T10:00:00Z',
    },
  );
  await h.fake.commands.requestPayout(
    { ...svc, idempotencyKey: 'seed-po' },
    { payoutId: 'po_a', tutorId: 'tut_a', amount: { amount: 1000, currency: 'usd' } },
  );
  await h.fake.commands.initiateTopUp(
    { ...svc, idempotencyKey: 'seed-tu' },
    { topUpId: 'tu_a', studentId: 'stu_a', amount: { amount: 1000, currency: 'usd' } },
  );
  await h.store.append(
    `booking-${tenant}.bk_a`,
    [
      {
        id: crypto.randomUUID(),
        type: 'BookingPlaced',
        data: { studentId: 'stu_a', tutorId: 'tut_a' },
        metadata: {
          tenantId: tenant,
          correlationId: 'c',
          causationId: 'c',
          actor: { id: 'seed', role: 'service' },
          idempotencyKey: 'seed',
          occurredAt: new Date().toISOString(),
          schemaVersion: 1,
        },
      },
    ],
    { expectedRevision: 'any' },
  );
}

describe('authorization matrix: every role x every route', () => {
  let h: ShellHarness;
  const tokens = new Map<Role, string>();
  beforeAll(async () => {
    h = await shellHarness();
    await seed(h, T);
    for (const role of ROLES) tokens.set(role, await token(T, SUB[role], role));
  });
  afterAll(() => h.close());

  let n = 0;
  for (const route of ROUTES) {
    for (const role of ROLES) {
      const allowed = route.allowed.includes(role);
      it(`${role} ${allowed ? 'may' : 'may not'} ${route.name}`, async () => {
        const res = await h.app.inject({
          method: route.method,
          url: route.url,
          headers: { authorization: `Bearer ${tokens.get(role)}`, 'idempotency-key': `matrix-${n++}` },
          ...(route.body !== undefined ? { payload: route.body as object } : {}),
        });
        if (allowed) {
          expect([401, 403], `${res.statusCode} ${res.body}`).not.toContain(res.statusCode);
          expect(res.statusCode).toBeLessThan(500);
        } else {
          expect(res.statusCode, res.body).toBe(403);
          expect(res.json()).toMatchObject({ code: 'forbidden' });
        }
      });
    }
  }

  it('the reconciliation routes sit behind the /v1 hooks: one authenticator, rate limits, problems', async () => {
    for (const url of ['/v1/reconciliation/runs', '/v1/reconciliation/runs/run_a']) {
      const method = url.endsWith('runs') ? 'POST' : 'GET';
      const anonymous = await h.app.inject({ method, url, payload: method === 'POST' ? {} : undefined });
      expect(anonymous.statusCode, url).toBe(401);
      expect(anonymous.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(anonymous.json()).toMatchObject({ code: 'unauthenticated' });
    }
    const run = await h.app.inject({
      method: 'POST',
      url: '/v1/reconciliation/runs',
      headers: { authorization: `Bearer ${tokens.get('finance_admin')}` },
      payload: { from: '2030-01-01T00:00:00Z', to: '2030-01-02T00:00:00Z' },
    });
    expect(run.statusCode, run.body).toBe(201);
    expect(run.headers['ratelimit-limit']).toBeDefined();
    expect(run.json()).toMatchObject({ tenantId: T, status: 'completed' });
  });

  it('a student may not touch another student, a tutor not another tutor', async () => {
    const otherStudent = await token(T, 'stu_b', 'student');
    const otherTutor = await token(T, 'tut_b', 'tutor');
    const before = h.fake.changes.length;
    const probes: Array<[string, string, string, unknown?]> = [
      [otherStudent, 'GET', '/v1/wallets/stu_a'],
      [otherStudent, 'GET', '/v1/wallets/stu_a/transactions'],
      [otherStudent, 'GET', '/v1/accounts/student:stu_a:wallet/balance'],
      [otherStudent, 'POST', '/v1/wallets/stu_a/top-ups', { amount: 1000, currency: 'usd' }],
      [
        otherStudent,
        'POST',
        '/v1/bookings',
        {
          studentId: 'stu_a',
          tutorId: 'tut_a',
          price: { amount: 1, currency: 'usd' },
          scheduledAt: '2030-01-01T00:00:00Z',
        },
      ],
      [otherTutor, 'GET', '/v1/tutors/tut_a/earnings'],
      [otherTutor, 'POST', '/v1/tutors/tut_a/payouts', { amount: 1000, currency: 'usd' }],
      [otherTutor, 'GET', '/v1/accounts/tutor:tut_a:earnings:available/balance'],
    ];
    for (const [t, method, url, body] of probes) {
      const res = await h.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${t}`, 'idempotency-key': `other-${url}` },
        ...(body !== undefined ? { payload: body as object } : {}),
      });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
    }
    // Resources found by id answer 404 to non-owners, so their ids cannot be probed.
    const hidden: Array<[string, string, string, unknown?]> = [
      [otherStudent, 'GET', '/v1/bookings/bk_a'],
      [otherStudent, 'POST', '/v1/bookings/bk_a/cancel', { reason: 'x' }],
      [otherStudent, 'GET', '/v1/top-ups/tu_a'],
      [otherTutor, 'GET', '/v1/bookings/bk_a'],
      [otherTutor, 'POST', '/v1/bookings/bk_a/complete'],
      [otherTutor, 'GET', '/v1/payouts/po_a'],
    ];
    for (const [t, method, url, body] of hidden) {
      const res = await h.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${t}`, 'idempotency-key': `hidden-${url}` },
        ...(body !== undefined ? { payload: body as object } : {}),
      });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
    }
    expect(h.fake.changes.length).toBe(before);
  });
});

describe('tenant isolation', () => {
  let h: ShellHarness;
  beforeAll(async () => {
    h = await shellHarness();
    await seed(h, T);
  });
  afterAll(() => h.close());

  it("a token of another tenant never reads or changes acme's data, whatever ids it uses", async () => {
    const before = JSON.stringify([...h.fake.tenants.get(T)!.bookings.values()]);
    const changes = h.fake.changes.length;
    for (const role of ROLES) {
      // Same subject names as acme's users: only the tenant differs.
      const evil = await token('evil', SUB[role], [role]);
      for (const route of ROUTES) {
        const url = route.url;
        const res = await h.app.inject({
          method: route.method,
          url,
          headers: { authorization: `Bearer ${evil}`, 'idempotency-key': `evil-${role}-${route.name}` },
          ...(route.body !== undefined ? { payload: route.body as object } : {}),
        });
        expect(res.statusCode, `${role} ${route.method} ${url}: ${res.body}`).not.toBe(500);
        if (route.method === 'GET' && res.statusCode === 200) {
          // Whatever a read returns comes from the caller's own (empty) tenant, never acme's.
          expect(res.body).not.toContain('bk_a');
          expect(res.body).not.toContain('123457');
          expect(res.body).not.toContain('98765');
        }
      }
    }
    expect(JSON.stringify([...h.fake.tenants.get(T)!.bookings.values()])).toBe(before);
    // Whatever evil did happened in tenant evil only.
    const acmeChanges = h.fake.changes.slice(changes);
    for (const change of acmeChanges) expect(change).not.toMatch(/bk_a|po_a|tu_a/);
    expect(h.fake.tenants.get(T)!.wallets.get('stu_a')!.available).toBe(123_457 - 500);
  });

  it("another tenant's stream is not found even with the exact name", async () => {
    const evil = await token('evil', 'fin_a', 'finance_admin');
    const res = await h.app.inject({
      url: '/v1/streams/booking-acme.bk_a/events',
      headers: { authorization: `Bearer ${evil}` },
    });
    expect(res.statusCode).toBe(404);
    const own = await h.app.inject({
      url: '/v1/streams/booking-acme.bk_a/events',
      headers: { authorization: `Bearer ${await token(T, 'fin_a', 'finance_admin')}` },
    });
    expect(own.statusCode).toBe(200);
    expect(own.json()).toMatchObject({
      streamName: 'booking-acme.bk_a',
      events: [{ type: 'BookingPlaced' }],
    });
  });
});
