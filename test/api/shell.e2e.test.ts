import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { createMetrics } from '../../src/api/metrics.js';
import { closeGracefully } from '../../src/api/shutdown.js';
import { type ShellHarness, shellHarness, token } from './support/harness.js';

const T = 'acme';

describe('HTTP shell', () => {
  let h: ShellHarness;
  let student: string;
  let finance: string;
  beforeAll(async () => {
    h = await shellHarness();
    student = await token(T, 'stu_1', 'student');
    finance = await token(T, 'fin_1', 'finance_admin');
  });
  afterAll(() => h.close());

  it('serves liveness, readiness and metrics without a token', async () => {
    expect((await h.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await h.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    await h.app.inject({ url: '/v1/wallets/stu_1', headers: { authorization: `Bearer ${student}` } });
    const metrics = await h.app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('ledger_http_request_duration_seconds_bucket');
    expect(metrics.body).toContain('route="/v1/wallets/:studentId"');
    expect(metrics.body).toContain('ledger_projection_lag_positions');
  });

  it('readiness names the failing dependency with 503', async () => {
    const failing = await shellHarness({
      readiness: [
        { name: 'database', check: async () => undefined },
        {
          name: 'redis',
          check: async () => {
            throw new Error('connection refused');
          },
        },
      ],
    });
    try {
      const res = await failing.app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json()).toMatchObject({ code: 'unavailable', failing: ['redis'] });
    } finally {
      await failing.close();
    }
  });

  it('publishes an OpenAPI document generated from the route schemas', async () => {
    const res = await h.app.inject({ url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [
      '/v1/wallets/{studentId}/top-ups',
      '/v1/wallets/{studentId}',
      '/v1/wallets/{studentId}/transactions',
      '/v1/bookings',
      '/v1/bookings/{bookingId}/complete',
      '/v1/bookings/{bookingId}/cancel',
      '/v1/bookings/{bookingId}/refunds',
      '/v1/bookings/{bookingId}',
      '/v1/tutors/{tutorId}/earnings',
      '/v1/tutors/{tutorId}/payouts',
      '/v1/payouts/{payoutId}',
      '/v1/accounts/{account}/balance',
      '/v1/accounts/{account}/entries',
      '/v1/entries/{entryId}',
      '/v1/streams/{stream}/events',
      '/v1/ledger/trial-balance',
      '/v1/adjustments',
      '/v1/tenant/settings',
      '/v1/reconciliation/runs',
      '/v1/reconciliation/runs/{id}',
      '/v1/promo-codes',
      '/v1/promo-codes/{code}',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
  });

  it('answers 401 problem+json for missing, malformed, wrongly signed and expired tokens', async () => {
    const wrongSecret = await token(T, 'stu_1', 'student', { secret: 'another-secret-0123456789' });
    const expired = await token(T, 'stu_1', 'student', { ttlSeconds: 1 });
    const cases = [undefined, 'Basic abc', 'Bearer not.a.jwt', `Bearer ${wrongSecret}`];
    for (const authorization of cases) {
      const res = await h.app.inject({
        url: '/v1/wallets/stu_1',
        headers: authorization ? { authorization } : {},
      });
      expect(res.statusCode, String(authorization)).toBe(401);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json()).toMatchObject({ code: 'unauthenticated', status: 401 });
    }
    // exp is in the past by more than the clock tolerance: sign with a past exp.
    const { SignJWT } = await import('jose');
    const past = await new SignJWT({ tenant: T, roles: ['student'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('stu_1')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3_600)
      // Past by more than the default clock skew (60 s).
      .setExpirationTime(Math.floor(Date.now() / 1000) - 120)
      .sign(new TextEncoder().encode('test-secret-0123456789abcdef'));
    const res = await h.app.inject({
      url: '/v1/wallets/stu_1',
      headers: { authorization: `Bearer ${past}` },
    });
    expect(res.json()).toMatchObject({ code: 'unauthenticated', detail: 'token expired' });
    expect(expired).toBeTruthy();
    // No exp at all, and an unknown role: rejected.
    const noExp = await new SignJWT({ tenant: T, roles: ['student'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('stu_1')
      .sign(new TextEncoder().encode('test-secret-0123456789abcdef'));
    const badRole = await new SignJWT({ tenant: T, roles: ['root'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('stu_1')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('test-secret-0123456789abcdef'));
    for (const t of [noExp, badRole]) {
      const r = await h.app.inject({ url: '/v1/wallets/stu_1', headers: { authorization: `Bearer ${t}` } });
      expect(r.statusCode).toBe(401);
    }
  });

  it('rejects bad bodies with 400 validation_failed problem+json, never coercing or stripping', async () => {
    const auth = {
      authorization: `Bearer ${student}`,
      'idempotency-key': 'k-validation',
      'content-type': 'application/json',
    };
    const bodies: unknown[] = [
      { amount: '1500', currency: 'usd' },
      { amount: 15.5, currency: 'usd' },
      { amount: -5, currency: 'usd' },
      { amount: 0, currency: 'usd' },
      { amount: 2 ** 53, currency: 'usd' },
      { amount: 1500, currency: 'USD' },
      { amount: 1500, currency: 'usd', extra: true },
      { currency: 'usd' },
      [],
      'text',
    ];
    for (const body of bodies) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/wallets/stu_1/top-ups',
        headers: auth,
        payload: JSON.stringify(body),
      });
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation_failed', status: 400 });
    }
    const broken = await h.app.inject({
      method: 'POST',
      url: '/v1/wallets/stu_1/top-ups',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"amount": ',
    });
    expect(broken.statusCode).toBe(400);
    expect(h.fake.changes).toEqual([]);
  });

  it('requires an Idempotency-Key on money-moving POSTs', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/wallets/stu_1/top-ups',
      headers: { authorization: `Bearer ${student}` },
      payload: { amount: 1500, currency: 'usd' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'validation_failed' });
  });

  it('enforces the body limit with 413', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/bookings/b1/cancel',
      headers: {
        authorization: `Bearer ${finance}`,
        'content-type': 'application/json',
        'idempotency-key': 'x',
      },
      payload: JSON.stringify({ reason: 'x'.repeat(100_000) }),
    });
    // finance_admin may not cancel (403 before the body is read); a student is checked after parsing.
    expect(res.statusCode).toBe(403);
    const big = await h.app.inject({
      method: 'POST',
      url: '/v1/wallets/stu_1/top-ups',
      headers: {
        authorization: `Bearer ${student}`,
        'content-type': 'application/json',
        'idempotency-key': 'y',
      },
      payload: JSON.stringify({ amount: 1, currency: 'usd', paymentMethod: 'x'.repeat(100_000) }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ code: 'payload_too_large' });
  });

  it('maps domain errors to their stable codes and statuses', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/bookings',
      headers: { authorization: `Bearer ${student}`, 'idempotency-key': 'k-poor' },
      payload: {
        studentId: 'stu_1',
        tutorId: 'tut_1',
        price: { amount: 5000, currency: 'usd' },
        scheduledAt: '2030-01-01T10:00:00Z',
      },
    });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({
      code: 'insufficient_funds',
      details: { available: 0, requested: 5000 },
    });
  });

  it('malformed URLs are 400 problem+json (fast-check seed 188627910)', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/wallets/%/top-ups',
      headers: { authorization: `Bearer ${student}` },
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ code: 'validation_failed' });
  });

  it('unknown routes are 404 problem+json', async () => {
    const res = await h.app.inject({ url: '/v1/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'not_found' });
  });

  it('consistentWith waits for the read models and answers 503 + Retry-After when they lag', async () => {
    h.fake.credit(T, 'stu_cw', 1000);
    const ok = await h.app.inject({
      url: `/v1/wallets/stu_cw?consistentWith=${h.fake.position}`,
      headers: { authorization: `Bearer ${await token(T, 'stu_cw', 'student')}` },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ available: 1000 });
    // The write is in the store but the read models lag behind it.
    const lagging = h.fake.queries.waitForPosition;
    h.fake.queries.waitForPosition = async () => false;
    const ahead = await h.app.inject({
      url: `/v1/wallets/stu_cw?consistentWith=${h.fake.position}`,
      headers: { authorization: `Bearer ${await token(T, 'stu_cw', 'student')}` },
    });
    h.fake.queries.waitForPosition = lagging;
    expect(ahead.statusCode).toBe(503);
    expect(ahead.headers['retry-after']).toBe('1');
    expect(ahead.json()).toMatchObject({ code: 'unavailable' });
    // A position no command ever returned (past the store's head) is a bad request, not a 5 s wait
    // (fast-check seed 1342418940).
    const future = await h.app.inject({
      url: `/v1/wallets/stu_cw?consistentWith=${h.fake.position + 100n}`,
      headers: { authorization: `Bearer ${await token(T, 'stu_cw', 'student')}` },
    });
    expect(future.statusCode).toBe(400);
    const bad = await h.app.inject({
      url: '/v1/wallets/stu_cw?consistentWith=-1',
      headers: { authorization: `Bearer ${await token(T, 'stu_cw', 'student')}` },
    });
    expect(bad.statusCode).toBe(400);
  });

  it('works over real HTTP and drains in-flight requests on graceful shutdown', async () => {
    const other = await shellHarness();
    const address = await other.app.listen({ port: 0, host: '127.0.0.1' });
    other.fake.credit(T, 'stu_http', 10_000);
    const auth = { authorization: `Bearer ${await token(T, 'stu_http', 'student')}` };
    const wallet = await fetch(`${address}/v1/wallets/stu_http`, { headers: auth });
    expect(wallet.status).toBe(200);
    expect(await wallet.json()).toEqual({
      studentId: 'stu_http',
      currency: 'usd',
      available: 10_000,
      pending: 0,
      posted: 10_000,
      version: 1,
    });
    // A request held in flight while shutdown starts still completes.
    let open!: () => void;
    other.fake.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const inFlight = fetch(`${address}/v1/bookings`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': 'drain-1' },
      body: JSON.stringify({
        studentId: 'stu_http',
        tutorId: 'tut_1',
        price: { amount: 2500, currency: 'usd' },
        scheduledAt: '2030-01-01T10:00:00Z',
      }),
    });
    while (other.fake.waiting === 0) await new Promise((r) => setTimeout(r, 2));
    const closing = closeGracefully(other.app, { drainTimeoutMs: 5_000 });
    open();
    const res = await inFlight;
    expect(res.status).toBe(201);
    expect(await closing).toEqual({ drained: true });
    await other.close();
  });

  it('refuses a JWT secret that is too short', () => {
    expect(() =>
      buildApp({
        ...({} as Parameters<typeof buildApp>[0]),
        auth: { jwtSecret: 'short' },
        metrics: createMetrics(),
      }),
    ).toThrow();
  });
});
