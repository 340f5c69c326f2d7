import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referralRoutes } from '../../src/api/routes/referrals.js';
import { createWalletControlsFeature } from '../../src/walletControlsFeature.js';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack } from './support/realStack.js';

/**
 * Referral credits over HTTP against the real stack (docs/ledger-flows.md, "Referral credits"): the
 * code, the link at sign-up and its refusals, both rewards at the referee's first completed booking,
 * the monthly cap, the clawback of a full refund, the credits on the ledger against
 * platform:expense:promotions with a zero trial balance, and who may see what.
 */
const T = 'refe2e';

describe(`referral credits over HTTP (${process.env.DATABASE_URL ? 'Postgres' : 'PGlite'})`, () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok: Record<string, string> = {};
  let n = 0;

  beforeAll(async () => {
    s = await startRealStack({
      features: (parts) => ({
        routes: [
          referralRoutes({ referrals: parts.service.referrals }),
          // The guardian links the role checks below rely on.
          ...createWalletControlsFeature({ handler: parts.service.handler }).routes,
        ],
        close: async () => undefined,
      }),
    });
    call = client(s.baseUrl);
    for (const [name, sub, role] of [
      ['referrer', 'stu_r', 'student'],
      ['a', 'stu_a', 'student'],
      ['b', 'stu_b', 'student'],
      ['c', 'stu_c', 'student'],
      ['tutor', 'tut_r', 'tutor'],
      ['admin', 'adm_r', 'tenant_admin'],
      ['finance', 'fin_r', 'finance_admin'],
      ['guardian', 'grd_r', 'guardian'],
      ['otherGuardian', 'grd_x', 'guardian'],
    ] as const) {
      tok[name] = await token(T, sub, role);
    }
    for (const student of ['stu_a', 'stu_b', 'stu_c']) {
      await s.service.initiateTopUp(s.ctx(T, `fund-${student}`, 'student'), {
        topUpId: `fund_${student}`,
        studentId: student,
        amount: { amount: 50_000, currency: 'usd' },
      });
      await s.service.succeedTopUp(s.ctx(T, `fund-${student}-webhook`), {
        topUpId: `fund_${student}`,
        paymentIntentId: `pi_${student}`,
        amountReceived: 50_000,
        currency: 'usd',
      });
    }
  }, 180_000);
  afterAll(() => s?.close());

  const referral = (student: string, as = tok.admin!) =>
    call('GET', `/v1/students/${student}/referral`, { token: as });
  const link = (student: string, code: unknown, as: string) =>
    call('POST', `/v1/students/${student}/referred-by`, { token: as, body: { code } });

  /** Books, completes as the tutor: the referee's first paid booking. */
  async function bookAndComplete(
    student: string,
    as: string,
  ): Promise<{ bookingId: string; position: string }> {
    const booked = await call('POST', '/v1/bookings', {
      token: as,
      key: `bk-${n++}`,
      body: {
        studentId: student,
        tutorId: 'tut_r',
        price: { amount: 4_000, currency: 'usd' },
        scheduledAt: new Date(Date.now() + 3 * 86_400_000).toISOString(),
      },
    });
    expect(booked.status, JSON.stringify(booked.body)).toBe(201);
    const bookingId = booked.body.bookingId as string;
    const done = await call('POST', `/v1/bookings/${bookingId}/complete`, {
      token: tok.tutor!,
      key: `done-${n++}`,
      body: {},
    });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    return { bookingId, position: done.body.position as string };
  }

  async function balance(account: string, position: string): Promise<number> {
    const res = await call('GET', `/v1/accounts/${account}/balance?consistentWith=${position}`, {
      token: tok.finance!,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // Credit-normal credits, debit-normal promotions expense: available on the normal side.
    return Number(res.body.available);
  }

  it('without a programme a code is shown but cannot be used', async () => {
    const r = await referral('stu_r', tok.referrer!);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ studentId: 'stu_r', program: { active: false }, referredBy: null });
    const refused = await link('stu_a', r.body.code, tok.a!);
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({
      code: 'referral_rejected',
      details: { reason: 'program_inactive' },
    });
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });

  it('links a new student once; refuses self-referral, unknown codes and bad input with nothing appended', async () => {
    const settings = await call('PUT', '/v1/tenant/settings', {
      token: tok.admin!,
      body: {
        referralRefereeCredit: 500,
        referralReferrerCredit: 1_000,
        referralMonthlyCap: 1,
        referralClawbackDays: 30,
      },
    });
    expect(settings.status, JSON.stringify(settings.body)).toBe(200);
    const code = (await referral('stu_r', tok.referrer!)).body.code as string;
    const head = await s.store.headPosition();

    const self = await link('stu_r', code, tok.referrer!);
    expect(self.body).toMatchObject({ code: 'referral_rejected', details: { reason: 'self_referral' } });
    const typo = await link('stu_a', `${code.slice(0, -1)}${code.endsWith('0') ? '1' : '0'}`, tok.a!);
    expect(typo.status).toBe(422);
    expect(typo.body).toMatchObject({ details: { reason: 'unknown_code' } });
    for (const body of [{}, { code: '' }, { code: 7 }, { code, extra: 1 }]) {
      const bad = await call('POST', '/v1/students/stu_a/referred-by', { token: tok.a!, body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body).toMatchObject({ code: 'validation_failed' });
    }
    // Another student cannot link someone else.
    expect((await link('stu_a', code, tok.b!)).status).toBe(403);
    expect(await s.store.headPosition()).toBe(head);

    const linked = await link('stu_a', code, tok.a!);
    expect(linked.status, JSON.stringify(linked.body)).toBe(201);
    expect(linked.body.referral).toMatchObject({ referredBy: { referrerId: 'stu_r', qualified: null } });
    expect((await link('stu_a', code, tok.a!)).status).toBe(200);
    const b = await link('stu_b', code, tok.admin!);
    expect(b.status).toBe(201);
  });

  it('the first completed booking credits both; the second referee this month is capped', async () => {
    const first = await bookAndComplete('stu_a', tok.a!);
    const a = await referral('stu_a', tok.a!);
    expect(a.body).toMatchObject({
      referredBy: {
        referrerId: 'stu_r',
        qualified: { bookingId: first.bookingId, credit: 500, clawedBack: false },
      },
      credits: [{ currency: 'usd', available: 500 }],
    });
    const r = await referral('stu_r', tok.referrer!);
    expect(r.body).toMatchObject({
      rewards: { granted: 1, capped: 0, thisMonth: { granted: 1, cap: 1, remaining: 0 } },
      credits: [{ currency: 'usd', available: 1_000 }],
    });
    expect(await balance('student:stu_a:credits', first.position)).toBe(500);
    expect(await balance('student:stu_r:credits', first.position)).toBe(1_000);
    // A second booking of the same referee rewards nobody again.
    await bookAndComplete('stu_a', tok.a!);
    const second = await bookAndComplete('stu_b', tok.b!);
    expect((await referral('stu_b', tok.b!)).body).toMatchObject({
      credits: [{ currency: 'usd', available: 500 }],
    });
    expect((await referral('stu_r', tok.referrer!)).body).toMatchObject({
      rewards: { granted: 1, capped: 1 },
      credits: [{ currency: 'usd', available: 1_000 }],
    });
    expect(await balance('platform:expense:promotions', second.position)).toBe(2_000);
    // A student who completed a booking before signing up with a code is not new: refused.
    await bookAndComplete('stu_c', tok.c!);
    const code = (await referral('stu_r', tok.referrer!)).body.code;
    const late = await link('stu_c', code, tok.c!);
    expect(late.body).toMatchObject({ code: 'referral_rejected', details: { reason: 'not_new' } });
  });

  it('a full refund of the qualifying booking within the window claws both rewards back', async () => {
    const a = (await referral('stu_a', tok.a!)).body as { referredBy: { qualified: { bookingId: string } } };
    const bookingId = a.referredBy.qualified.bookingId;
    const partial = await call('POST', `/v1/bookings/${bookingId}/refunds`, {
      token: tok.finance!,
      key: `rf-${n++}`,
      body: { amount: 1_000, reason: 'late start' },
    });
    expect(partial.status, JSON.stringify(partial.body)).toBe(201);
    expect((await referral('stu_a', tok.a!)).body).toMatchObject({ credits: [{ available: 500 }] });
    const rest = await call('POST', `/v1/bookings/${bookingId}/refunds`, {
      token: tok.finance!,
      key: `rf-${n++}`,
      body: { reason: 'no show' },
    });
    expect(rest.status, JSON.stringify(rest.body)).toBe(201);
    expect((await referral('stu_a', tok.a!)).body).toMatchObject({
      referredBy: { qualified: { clawedBack: true } },
      credits: [{ currency: 'usd', available: 0 }],
    });
    expect((await referral('stu_r', tok.referrer!)).body).toMatchObject({
      rewards: { granted: 1, clawedBack: 1 },
      credits: [{ currency: 'usd', available: 0 }],
    });
    const position = rest.body.position as string;
    expect(await balance('student:stu_r:credits', position)).toBe(0);
    expect(await balance('platform:expense:promotions', position)).toBe(500);
    const trial = await call('GET', `/v1/ledger/trial-balance?consistentWith=${position}`, {
      token: tok.finance!,
    });
    expect(trial.body).toMatchObject({ balanced: true });
  });

  it('students see their own, guardians their linked students, admins and services all', async () => {
    expect((await referral('stu_a', tok.b!)).status).toBe(403);
    expect((await referral('stu_a', tok.tutor!)).status).toBe(403);
    expect((await referral('stu_a', tok.finance!)).status).toBe(200);
    const linked = await call('POST', '/v1/students/stu_a/guardians', {
      token: tok.admin!,
      body: { guardianId: 'grd_r' },
    });
    expect(linked.status).toBe(201);
    expect((await referral('stu_a', tok.guardian!)).status).toBe(200);
    expect((await referral('stu_a', tok.otherGuardian!)).status).toBe(404);
  });
});
