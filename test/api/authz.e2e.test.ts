import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/api/auth.js';
import { chainShellFeatures } from '../chain/shellFeatures.js';
import { documentShellFeatures } from '../documents/shellFeatures.js';
import { webhookShellFeatures } from '../webhooks/shellFeatures.js';
import { type ShellHarness, shellHarness, token } from './support/harness.js';
import { walletControlShellFeatures } from './support/walletControlsShellFeatures.js';

/**
 * Every role against every route, acting on resources that are their own where ownership matters:
 * allowed (anything but 401/403) or 403. The expected table is written out here, independently of the
 * policies in the route modules, so a policy change shows up as a test diff.
 */
const T = 'acme';
const ROLES: Role[] = ['student', 'tutor', 'finance_admin', 'tenant_admin', 'service', 'guardian'];
const SUB: Record<Role, string> = {
  student: 'stu_a',
  tutor: 'tut_a',
  finance_admin: 'fin_a',
  tenant_admin: 'adm_a',
  service: 'svc_a',
  // Linked to stu_a by the seed (a tenant admin's POST /v1/students/stu_a/guardians).
  guardian: 'grd_a',
};

interface RouteCase {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  body?: unknown;
  allowed: Role[];
}

const ROUTES: RouteCase[] = [
  // Promo codes: tenant admins manage them; finance admins and services read them with their usage.
  {
    name: 'create promo code',
    method: 'POST',
    url: '/v1/promo-codes',
    body: {
      code: 'AUTHZ10',
      currency: 'usd',
      discount: { type: 'fixed', amount: 100 },
      appliesTo: ['bookings'],
      validUntil: '2099-01-01T00:00:00Z',
      maxRedemptions: 10,
    },
    allowed: ['tenant_admin'],
  },
  {
    name: 'promo code',
    method: 'GET',
    url: '/v1/promo-codes/AUTHZ10',
    allowed: ['tenant_admin', 'finance_admin', 'service'],
  },
  {
    name: 'change promo code',
    method: 'PATCH',
    url: '/v1/promo-codes/AUTHZ10',
    body: { active: false },
    allowed: ['tenant_admin'],
  },
  // Documents: their owner (a student's receipts, a tutor's invoices) and finance admins; billing
  // settings: tenant admins change them.
  { name: 'documents', method: 'GET', url: '/v1/documents', allowed: ['student', 'tutor', 'finance_admin'] },
  {
    name: 'document',
    method: 'GET',
    url: '/v1/documents/00000000-0000-5000-8000-000000000000',
    allowed: ['student', 'tutor', 'finance_admin'],
  },
  ...(
    [
      ['monthly statement pdf', '/v1/tutors/tut_a/statements/2020-01.pdf'],
      ['monthly statement csv', '/v1/tutors/tut_a/statements/2020-01.csv'],
      ['annual summary pdf', '/v1/tutors/tut_a/statements/annual/2020.pdf'],
      ['annual summary csv', '/v1/tutors/tut_a/statements/annual/2020.csv'],
    ] as const
  ).map(([name, url]): RouteCase => ({ name, method: 'GET', url, allowed: ['tutor', 'finance_admin'] })),
  {
    name: 'closing balances csv',
    method: 'GET',
    url: '/v1/ledger/balances.csv?asOf=2030-01-01T00:00:00Z',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  // The tamper-evident log's head (src/api/routes/chain.ts): finance admins anchor it outside.
  { name: 'chain head', method: 'GET', url: '/v1/ledger/chain-head', allowed: ['finance_admin'] },
  {
    name: 'billing settings',
    method: 'GET',
    url: '/v1/tenant/billing-settings',
    allowed: ['tenant_admin', 'finance_admin', 'service'],
  },
  {
    name: 'billing settings change',
    method: 'PUT',
    url: '/v1/tenant/billing-settings',
    body: { legalName: 'Acme Tutoring Ltd' },
    allowed: ['tenant_admin'],
  },
  {
    name: 'document pdf',
    method: 'GET',
    url: '/v1/documents/00000000-0000-5000-8000-000000000000.pdf',
    allowed: ['student', 'tutor', 'finance_admin'],
  },
  // Spending limits: the student's own, tenant admins and services set them; finance admins read.
  {
    name: 'spending limits',
    method: 'GET',
    url: '/v1/wallets/stu_a/limits',
    allowed: ['student', 'finance_admin', 'tenant_admin', 'service', 'guardian'],
  },
  {
    name: 'set spending limits',
    method: 'PUT',
    url: '/v1/wallets/stu_a/limits',
    body: { perDay: 5000, currency: 'usd' },
    allowed: ['student', 'tenant_admin', 'service', 'guardian'],
  },
  // Guardians: tenant admins link and unlink them; the student, its guardians and services list them.
  {
    name: 'guardians',
    method: 'GET',
    url: '/v1/students/stu_a/guardians',
    allowed: ['student', 'tenant_admin', 'service', 'guardian'],
  },
  {
    name: 'link guardian',
    method: 'POST',
    url: '/v1/students/stu_a/guardians',
    body: { guardianId: 'grd_new' },
    allowed: ['tenant_admin'],
  },
  {
    name: 'unlink guardian',
    method: 'DELETE',
    url: '/v1/students/stu_a/guardians/grd_none',
    allowed: ['tenant_admin'],
  },
  // Referrals: the student's own, its guardians, admins and services; finance admins read only.
  {
    name: 'referral',
    method: 'GET',
    url: '/v1/students/stu_a/referral',
    allowed: ['student', 'guardian', 'tenant_admin', 'finance_admin', 'service'],
  },
  {
    name: 'link referrer',
    method: 'POST',
    url: '/v1/students/stu_a/referred-by',
    body: { code: 'stu_x-ABCDEF' },
    allowed: ['student', 'guardian', 'tenant_admin', 'service'],
  },
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
    allowed: ['student', 'finance_admin', 'service', 'guardian'],
  },
  {
    name: 'wallet transactions',
    method: 'GET',
    url: '/v1/wallets/stu_a/transactions?limit=10',
    allowed: ['student', 'finance_admin', 'service', 'guardian'],
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
    name: 'open payout account',
    method: 'POST',
    url: '/v1/tutors/tut_a/payout-account',
    allowed: ['tutor', 'service'],
  },
  {
    name: 'payout account',
    method: 'GET',
    url: '/v1/tutors/tut_a/payout-account',
    allowed: ['tutor', 'finance_admin', 'service'],
  },
  {
    name: 'account balance',
    method: 'GET',
    url: '/v1/accounts/student:stu_a:wallet/balance',
    allowed: ['student', 'finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'tutor account entries',
    method: 'GET',
    url: '/v1/accounts/tutor:tut_a:earnings:available/entries',
    allowed: ['tutor', 'finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'platform account balance',
    method: 'GET',
    url: '/v1/accounts/platform:revenue:commission/balance',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'entry',
    method: 'GET',
    url: '/v1/entries/e_1',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'stream events',
    method: 'GET',
    url: '/v1/streams/booking-acme.bk_a/events',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'trial balance',
    method: 'GET',
    url: '/v1/ledger/trial-balance',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'propose adjustment',
    method: 'POST',
    url: '/v1/adjustment-proposals',
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
    name: 'approve adjustment proposal',
    method: 'POST',
    url: '/v1/adjustment-proposals/p_a/approve',
    allowed: ['finance_admin'],
  },
  {
    name: 'reject adjustment proposal',
    method: 'POST',
    url: '/v1/adjustment-proposals/p_a/reject',
    body: { reason: 'no' },
    allowed: ['finance_admin'],
  },
  {
    name: 'adjustment proposals',
    method: 'GET',
    url: '/v1/adjustment-proposals',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'adjustment proposal',
    method: 'GET',
    url: '/v1/adjustment-proposals/p_a',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  // The finance console's reads: finance and tenant admins (and services) of the tenant.
  ...(
    [
      ['search', '/v1/search?q=bk'],
      ['accounts', '/v1/accounts?kind=liability'],
      ['statement', '/v1/accounts/student:stu_a:wallet/statement'],
      ['statement csv', '/v1/accounts/student:stu_a:wallet/statement.csv'],
      ['balance series', '/v1/accounts/student:stu_a:wallet/balance-series'],
      ['journal', '/v1/journal?from=2030-01-01T00:00:00Z'],
      ['journal csv', '/v1/journal.csv?from=2030-01-01T00:00:00Z&to=2030-02-01T00:00:00Z'],
      ['event', '/v1/events/00000000-0000-5000-8000-000000000000'],
      ['event causes', '/v1/events/00000000-0000-5000-8000-000000000000/causes'],
      ['entry causes', '/v1/entries/e_1/causes'],
      ['story', '/v1/stories/booking/bk_a'],
      ['trial balance groups', '/v1/ledger/trial-balance/groups'],
      ['open clearing', '/v1/ledger/clearing'],
      ['analytics', '/v1/analytics?from=2030-01-01&to=2030-02-01&currency=usd'],
    ] as const
  ).map(
    ([name, url]): RouteCase => ({
      name,
      method: 'GET',
      url,
      allowed: ['finance_admin', 'tenant_admin', 'service'],
    }),
  ),
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
    name: 'backdated adjustment',
    method: 'POST',
    url: '/v1/adjustments',
    body: {
      account: 'platform:revenue:commission',
      direction: 'credit',
      amount: 5,
      currency: 'usd',
      reason: 'fix',
      effectiveAt: '2020-01-15T00:00:00Z',
      corrects: '00000000-0000-5000-8000-000000000000',
    },
    allowed: ['finance_admin'],
  },
  // Accounting periods: finance admins close them; admins and services read them.
  { name: 'close period', method: 'POST', url: '/v1/periods/2020-01/close', allowed: ['finance_admin'] },
  {
    name: 'periods',
    method: 'GET',
    url: '/v1/periods',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'balance as of, known at',
    method: 'GET',
    url: '/v1/accounts/platform:revenue:commission/balance?asOf=2020-01-31T00:00:00Z&knownAt=2020-02-01T00:00:00Z',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'statement as of, known at',
    method: 'GET',
    url: '/v1/accounts/platform:revenue:commission/statement?asOf=2020-01-31T00:00:00Z&knownAt=2020-02-01T00:00:00Z',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
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
    name: 'reconciliation runs',
    method: 'GET',
    url: '/v1/reconciliation/runs?limit=5',
    allowed: ['finance_admin'],
  },
  {
    name: 'reconciliation report',
    method: 'GET',
    url: '/v1/reconciliation/runs/run_a?format=csv',
    allowed: ['finance_admin'],
  },
  {
    name: 'register webhook endpoint',
    method: 'POST',
    url: '/v1/webhook-endpoints',
    body: { url: 'http://127.0.0.1:9/hook', eventTypes: ['*'] },
    allowed: ['tenant_admin'],
  },
  {
    name: 'webhook endpoints',
    method: 'GET',
    url: '/v1/webhook-endpoints',
    allowed: ['tenant_admin', 'finance_admin'],
  },
  {
    name: 'webhook endpoint',
    method: 'GET',
    url: '/v1/webhook-endpoints/we_a',
    allowed: ['tenant_admin', 'finance_admin'],
  },
  {
    name: 'disable webhook endpoint',
    method: 'POST',
    url: '/v1/webhook-endpoints/we_a/disable',
    allowed: ['tenant_admin'],
  },
  {
    name: 'enable webhook endpoint',
    method: 'POST',
    url: '/v1/webhook-endpoints/we_a/enable',
    allowed: ['tenant_admin'],
  },
  {
    name: 'rotate webhook secret',
    method: 'POST',
    url: '/v1/webhook-endpoints/we_a/rotate-secret',
    body: {},
    allowed: ['tenant_admin'],
  },
  {
    name: 'delete webhook endpoint',
    method: 'DELETE',
    url: '/v1/webhook-endpoints/we_a',
    allowed: ['tenant_admin'],
  },
  {
    name: 'webhook deliveries',
    method: 'GET',
    url: '/v1/webhook-endpoints/we_a/deliveries',
    allowed: ['tenant_admin', 'finance_admin'],
  },
  {
    name: 'webhook delivery',
    method: 'GET',
    url: '/v1/webhook-endpoints/we_a/deliveries/00000000-0000-4000-8000-000000000000',
    allowed: ['tenant_admin', 'finance_admin'],
  },
  {
    name: 'retry webhook delivery',
    method: 'POST',
    url: '/v1/webhook-endpoints/we_a/deliveries/00000000-0000-4000-8000-000000000000/retry',
    allowed: ['tenant_admin'],
  },
  {
    name: 'create balance monitor',
    method: 'POST',
    url: '/v1/balance-monitors',
    body: { account: 'student:stu_a:wallet', condition: { field: 'available', op: 'lt', amount: 100 } },
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'balance monitors',
    method: 'GET',
    url: '/v1/balance-monitors',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'balance monitor',
    method: 'GET',
    url: '/v1/balance-monitors/bm_a',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
  // VIP subscriptions: plans are read by everyone and changed by tenant admins; a student manages
  // their own subscription (another's is a 404), finance admins read any.
  {
    name: 'subscription plans',
    method: 'GET',
    url: '/v1/tenant/plans',
    allowed: ['student', 'tutor', 'finance_admin', 'tenant_admin', 'service'],
  },
  {
    name: 'subscription plans change',
    method: 'PUT',
    url: '/v1/tenant/plans',
    body: { plans: [] },
    allowed: ['tenant_admin'],
  },
  {
    name: 'subscribe',
    method: 'POST',
    url: '/v1/subscriptions',
    body: { studentId: 'stu_a', planId: 'gold' },
    allowed: ['student', 'service'],
  },
  {
    name: 'subscription',
    method: 'GET',
    url: '/v1/subscriptions/sub_a',
    allowed: ['student', 'finance_admin', 'service'],
  },
  {
    name: 'student subscription',
    method: 'GET',
    url: '/v1/students/stu_a/subscription',
    allowed: ['student', 'finance_admin', 'service'],
  },
  {
    name: 'change subscription plan',
    method: 'POST',
    url: '/v1/subscriptions/sub_a/change-plan',
    body: { planId: 'gold' },
    allowed: ['student', 'service'],
  },
  {
    name: 'cancel subscription',
    method: 'POST',
    url: '/v1/subscriptions/sub_a/cancel',
    body: { atPeriodEnd: true },
    allowed: ['student', 'service'],
  },
  {
    name: 'delete balance monitor',
    method: 'DELETE',
    url: '/v1/balance-monitors/bm_a',
    allowed: ['finance_admin', 'tenant_admin', 'service'],
  },
];

async function seed(h: ShellHarness, tenant: string): Promise<void> {
  const linked = await h.app.inject({
    method: 'POST',
    url: '/v1/students/stu_a/guardians',
    headers: { authorization: `Bearer ${await token(tenant, 'adm_seed', 'tenant_admin')}` },
    payload: { guardianId: 'grd_a' },
  });
  if (linked.statusCode !== 201) throw new Error(`seeding the guardian: ${linked.body}`);
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
  const webhooks = webhookShellFeatures();
  const documents = documentShellFeatures(() => webhooks.database());
  const walletControls = walletControlShellFeatures();
  const chain = chainShellFeatures(() => webhooks.database());
  const tokens = new Map<Role, string>();
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
    await seed(h, T);
    for (const role of ROLES) tokens.set(role, await token(T, SUB[role], role));
  });
  afterAll(async () => {
    await h.close();
    await webhooks.close();
  });

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
      headers: { authorization: `Bearer ${tokens.get('finance_admin')}`, 'idempotency-key': 'recon-hooks-1' },
      payload: { from: '2030-01-01T00:00:00Z', to: '2030-01-02T00:00:00Z' },
    });
    expect(run.statusCode, run.body).toBe(201);
    expect(run.headers['ratelimit-limit']).toBeDefined();
    expect(run.json()).toMatchObject({ tenantId: T, status: 'completed' });
  });

  it('a student may not touch another student, a tutor not another tutor, a guardian only their own students', async () => {
    const otherStudent = await token(T, 'stu_b', 'student');
    const otherTutor = await token(T, 'tut_b', 'tutor');
    const before = h.fake.changes.length;
    const otherGuardian = await token(T, 'grd_b', 'guardian');
    const probes: Array<[string, string, string, unknown?]> = [
      [otherStudent, 'GET', '/v1/wallets/stu_a'],
      [otherStudent, 'GET', '/v1/wallets/stu_a/transactions'],
      [otherStudent, 'GET', '/v1/accounts/student:stu_a:wallet/balance'],
      [otherStudent, 'GET', '/v1/accounts/student:stu_a:credits/balance'],
      [otherStudent, 'GET', '/v1/students/stu_a/referral'],
      [otherStudent, 'POST', '/v1/students/stu_a/referred-by', { code: 'stu_x-ABCDEF' }],
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
      [otherTutor, 'POST', '/v1/tutors/tut_a/payout-account'],
      [otherTutor, 'GET', '/v1/tutors/tut_a/payout-account'],
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
      // A guardian not linked to the student: as if the student did not exist.
      [otherGuardian, 'GET', '/v1/wallets/stu_a'],
      [otherGuardian, 'GET', '/v1/wallets/stu_a/transactions'],
      [otherGuardian, 'GET', '/v1/wallets/stu_a/limits'],
      [otherGuardian, 'PUT', '/v1/wallets/stu_a/limits', { perDay: 1 }],
      [otherGuardian, 'GET', '/v1/students/stu_a/guardians'],
      [otherGuardian, 'GET', '/v1/students/stu_a/referral'],
      [otherGuardian, 'POST', '/v1/students/stu_a/referred-by', { code: 'stu_x-ABCDEF' }],
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
    await seed(h, T);
  });
  afterAll(async () => {
    await h.close();
    await webhooks.close();
  });

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
