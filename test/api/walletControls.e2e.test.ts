import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWalletControlsFeature } from '../../src/walletControlsFeature.js';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack } from './support/realStack.js';

/**
 * Spending limits over HTTP against the real stack (docs/ledger-flows.md, "Spending limits"): the
 * tenant's time zone, limits set by the student, refusals naming the limit and what is left, room given
 * back by a free cancellation, bad input refused with nothing appended, and the routes in OpenAPI.
 */
const T = 'lim';
const STUDENT = 'stu_l';

describe(`spending limits over HTTP (${process.env.DATABASE_URL ? 'Postgres' : 'PGlite'})`, () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok: Record<string, string> = {};
  let n = 0;

  beforeAll(async () => {
    s = await startRealStack({
      features: (parts) => ({
        routes: createWalletControlsFeature({ handler: parts.service.handler }).routes,
        close: async () => undefined,
      }),
    });
    call = client(s.baseUrl);
    tok.student = await token(T, STUDENT, 'student');
    tok.other = await token(T, 'stu_other', 'student');
    tok.admin = await token(T, 'adm_l', 'tenant_admin');
    tok.tutor = await token(T, 'tut_l', 'tutor');
    tok.guardian = await token(T, 'grd_l', 'guardian');
    tok.otherGuardian = await token(T, 'grd_x', 'guardian');
    await s.service.initiateTopUp(s.ctx(T, 'fund', 'student'), {
      topUpId: 'fund',
      studentId: STUDENT,
      amount: { amount: 100_000, currency: 'usd' },
    });
    await s.service.succeedTopUp(s.ctx(T, 'fund-webhook'), {
      topUpId: 'fund',
      paymentIntentId: 'pi_fund',
      amountReceived: 100_000,
      currency: 'usd',
    });
  }, 180_000);
  afterAll(() => s?.close());

  const book = (amount: number) =>
    call('POST', '/v1/bookings', {
      token: tok.student!,
      key: `bk-${n++}`,
      body: {
        studentId: STUDENT,
        tutorId: 'tut_l',
        price: { amount, currency: 'usd' },
        scheduledAt: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      },
    });

  it('the tenant time zone is a validated IANA setting', async () => {
    const bad = await call('PUT', '/v1/tenant/settings', {
      token: tok.admin!,
      body: { timeZone: 'Mars/Base' },
    });
    expect(bad.status, JSON.stringify(bad.body)).toBe(400);
    expect(bad.body).toMatchObject({ code: 'validation_failed' });
    const ok = await call('PUT', '/v1/tenant/settings', {
      token: tok.admin!,
      body: { timeZone: 'Europe/Berlin' },
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.settings).toMatchObject({ timeZone: 'Europe/Berlin' });
  });

  it('the student sets limits; a booking over one is 422 spending_limit_exceeded naming it', async () => {
    const before = await call('GET', `/v1/wallets/${STUDENT}/limits`, { token: tok.student! });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({
      studentId: STUDENT,
      currency: 'usd',
      timeZone: 'Europe/Berlin',
      limits: { perBooking: null, perDay: null, perWeek: null, perMonth: null },
      standing: { perBooking: null, perDay: null, perWeek: null, perMonth: null },
    });
    const set = await call('PUT', `/v1/wallets/${STUDENT}/limits`, {
      token: tok.student!,
      body: { perBooking: 3000, perDay: 5000 },
    });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body.limits).toMatchObject({
      limits: { perBooking: 3000, perDay: 5000, perWeek: null, perMonth: null },
      standing: { perDay: { limit: 5000, spent: 0, remaining: 5000 } },
    });

    const tooBig = await book(3500);
    expect(tooBig.status, JSON.stringify(tooBig.body)).toBe(422);
    expect(tooBig.body).toMatchObject({
      code: 'spending_limit_exceeded',
      details: { limit: 'perBooking', limitAmount: 3000, remaining: 3000, requested: 3500 },
    });

    const first = await book(3000);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const over = await book(2500);
    expect(over.status).toBe(422);
    expect(over.body).toMatchObject({
      code: 'spending_limit_exceeded',
      details: { limit: 'perDay', limitAmount: 5000, spent: 3000, remaining: 2000, requested: 2500 },
    });
    expect(String(over.body.detail)).toMatch(/20\.00 USD left/);
    const left = await call('GET', `/v1/wallets/${STUDENT}/limits`, { token: tok.student! });
    expect(left.body).toMatchObject({ standing: { perDay: { spent: 3000, remaining: 2000 } } });

    // A free cancellation gives the room back.
    const bookingId = String(first.body.bookingId);
    const cancelled = await call('POST', `/v1/bookings/${bookingId}/cancel`, {
      token: tok.student!,
      key: `cancel-${bookingId}`,
      body: { reason: 'changed plans' },
    });
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    const back = await call('GET', `/v1/wallets/${STUDENT}/limits`, { token: tok.student! });
    expect(back.body).toMatchObject({ standing: { perDay: { spent: 0, remaining: 5000 } } });
    expect((await book(2500)).status).toBe(201);
  });

  it('refuses bad limits with 400 and appends nothing; others cannot read or set them', async () => {
    const head = await s.store.headPosition();
    for (const body of [
      { perDay: 0 },
      { perDay: -1 },
      { perDay: '100' },
      { perDay: 1.5 },
      { perYear: 100 },
      { perDay: 2 ** 53 },
      { perDay: 100, currency: 'USD' },
    ]) {
      const res = await call('PUT', `/v1/wallets/${STUDENT}/limits`, { token: tok.student!, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toMatchObject({ code: 'validation_failed' });
    }
    // Another currency than the wallet's is a 422, not a silent change.
    const eur = await call('PUT', `/v1/wallets/${STUDENT}/limits`, {
      token: tok.student!,
      body: { perDay: 100, currency: 'eur' },
    });
    expect(eur.status).toBe(422);
    expect(eur.body).toMatchObject({ code: 'currency_mismatch' });
    // A wallet with no money yet needs the currency its limits are in.
    const fresh = await call('PUT', '/v1/wallets/stu_other/limits', {
      token: tok.other!,
      body: { perDay: 100 },
    });
    expect(fresh.status).toBe(400);
    expect(fresh.body).toMatchObject({ code: 'validation_failed', details: { field: 'currency' } });
    expect(await s.store.headPosition()).toBe(head);
    for (const t of [tok.other!, tok.tutor!]) {
      expect((await call('GET', `/v1/wallets/${STUDENT}/limits`, { token: t })).status).toBe(403);
      const put = await call('PUT', `/v1/wallets/${STUDENT}/limits`, { token: t, body: { perDay: 1 } });
      expect(put.status).toBe(403);
    }
  });

  it('a tenant admin clears the limits with an empty body; the same limits again append nothing', async () => {
    const cleared = await call('PUT', `/v1/wallets/${STUDENT}/limits`, { token: tok.admin!, body: {} });
    expect(cleared.status).toBe(200);
    expect(cleared.body.limits).toMatchObject({
      limits: { perBooking: null, perDay: null, perWeek: null, perMonth: null },
    });
    const head = await s.store.headPosition();
    expect((await call('PUT', `/v1/wallets/${STUDENT}/limits`, { token: tok.admin!, body: {} })).status).toBe(
      200,
    );
    expect(await s.store.headPosition()).toBe(head);
    expect((await book(9000)).status).toBe(201);
  });

  it('guardians: a tenant admin links one; they see and set the limits; the student may then only lower them', async () => {
    const notYet = await call('GET', `/v1/wallets/${STUDENT}/limits`, { token: tok.guardian! });
    expect(notYet.status).toBe(404);
    const linked = await call('POST', `/v1/students/${STUDENT}/guardians`, {
      token: tok.admin!,
      body: { guardianId: 'grd_l' },
    });
    expect(linked.status, JSON.stringify(linked.body)).toBe(201);
    expect(linked.body.guardians).toMatchObject({ studentId: STUDENT, guardians: [{ guardianId: 'grd_l' }] });
    const again = await call('POST', `/v1/students/${STUDENT}/guardians`, {
      token: tok.admin!,
      body: { guardianId: 'grd_l' },
    });
    expect(again.status).toBe(200);
    const listed = await call('GET', `/v1/students/${STUDENT}/guardians`, { token: tok.student! });
    expect(listed.body).toMatchObject({ guardians: [{ guardianId: 'grd_l' }] });

    const set = await call('PUT', `/v1/wallets/${STUDENT}/limits`, {
      token: tok.guardian!,
      body: { perDay: 4000, perMonth: 20_000 },
    });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    const seen = await call('GET', `/v1/wallets/${STUDENT}/limits`, { token: tok.guardian! });
    expect(seen.body).toMatchObject({ limits: { perDay: 4000, perMonth: 20_000 } });
    const history = await call('GET', `/v1/wallets/${STUDENT}/transactions`, { token: tok.guardian! });
    expect(history.status, JSON.stringify(history.body)).toBe(200);

    const raise = await call('PUT', `/v1/wallets/${STUDENT}/limits`, {
      token: tok.student!,
      body: { perDay: 9000, perMonth: 20_000 },
    });
    expect(raise.status).toBe(403);
    expect(raise.body).toMatchObject({ code: 'forbidden', details: { raised: ['perDay'] } });
    const lower = await call('PUT', `/v1/wallets/${STUDENT}/limits`, {
      token: tok.student!,
      body: { perDay: 3000, perMonth: 20_000 },
    });
    expect(lower.status).toBe(200);

    for (const [method, path] of [
      ['GET', `/v1/wallets/${STUDENT}/limits`],
      ['GET', `/v1/wallets/${STUDENT}`],
      ['GET', `/v1/students/${STUDENT}/guardians`],
    ] as const) {
      expect((await call(method, path, { token: tok.otherGuardian! })).status, path).toBe(404);
    }

    const unlinked = await call('DELETE', `/v1/students/${STUDENT}/guardians/grd_l`, { token: tok.admin! });
    expect(unlinked.status).toBe(200);
    expect(unlinked.body.guardians).toMatchObject({ guardians: [] });
    expect((await call('GET', `/v1/wallets/${STUDENT}/limits`, { token: tok.guardian! })).status).toBe(404);
    const free = await call('PUT', `/v1/wallets/${STUDENT}/limits`, { token: tok.student!, body: {} });
    expect(free.status).toBe(200);
    const gone = await call('DELETE', `/v1/students/${STUDENT}/guardians/grd_l`, { token: tok.admin! });
    expect(gone.status).toBe(404);
  });

  it('the routes are in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${s.baseUrl}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(Object.keys(doc.paths['/v1/wallets/{studentId}/limits'] ?? {}).sort()).toEqual(['get', 'put']);
    expect(Object.keys(doc.paths['/v1/students/{studentId}/guardians'] ?? {}).sort()).toEqual([
      'get',
      'post',
    ]);
    expect(Object.keys(doc.paths['/v1/students/{studentId}/guardians/{guardianId}'] ?? {})).toEqual([
      'delete',
    ]);
    expect(doc.paths['/v1/wallets/{studentId}/limits']!.put!.responses['422']).toBeDefined();
  });
});
