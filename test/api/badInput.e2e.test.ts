import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack, WEBHOOK_SECRET } from './support/realStack.js';

/**
 * Requests that once answered 5xx (or the wrong 4xx) although they are plainly the client's mistake.
 * Each one must get a 4xx problem+json with a stable code, and none may append an event.
 */
const T = 'badin';
const LEAP_SECOND = '2030-06-30T23:59:60Z';

describe('input that passes the schemas but not the ledger is a 4xx, never a 5xx', () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok = {} as Record<'student' | 'finance' | 'admin' | 'service', string>;
  let head: bigint;

  beforeAll(async () => {
    s = await startRealStack();
    call = client(s.baseUrl);
    tok.student = await token(T, 'stu_b', 'student');
    tok.finance = await token(T, 'fin_b', 'finance_admin');
    tok.admin = await token(T, 'adm_b', 'tenant_admin');
    tok.service = await token(T, 'svc_b', 'service');
    // A usd balance, so the tenant's usd is in use.
    const credited = await call('POST', '/v1/adjustments', {
      token: tok.finance,
      key: 'seed-usd',
      body: {
        account: 'student:stu_b:wallet',
        direction: 'credit',
        amount: 5_000,
        currency: 'usd',
        reason: 'seed',
      },
    });
    expect(credited.status, JSON.stringify(credited.body)).toBe(201);
    const read = await call('GET', `/v1/wallets/stu_b?consistentWith=${String(credited.body.position)}`, {
      token: tok.student,
    });
    expect(read.status).toBe(200);
  }, 180_000);
  afterAll(() => s.close());

  /** Runs `send`, then checks the answer is `status` problem+json with `code` and nothing was appended. */
  async function refused(
    send: () => Promise<{ status: number; headers: Headers; text: string }>,
    status: number,
    code: string,
  ): Promise<Record<string, unknown>> {
    head = await s.store.headPosition();
    const res = await send();
    expect(res.status, res.text).toBe(status);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const body = JSON.parse(res.text) as Record<string, unknown>;
    expect(body.code, res.text).toBe(code);
    expect(body.status).toBe(status);
    expect(await s.store.headPosition()).toBe(head);
    return body;
  }

  async function http(
    method: string,
    path: string,
    options: { token?: string; body?: string; key?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; headers: Headers; text: string }> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    if (options.key) headers['idempotency-key'] = options.key;
    const res = await fetch(`${s.baseUrl}${path}`, {
      method,
      headers,
      ...(options.body !== undefined ? { body: options.body } : {}),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }

  const json = (value: unknown) => JSON.stringify(value);

  describe('leap seconds and years outside the calendar', () => {
    it('a leap second as a booking scheduledAt', async () => {
      await refused(
        () =>
          http('POST', '/v1/bookings', {
            token: tok.student,
            key: 'leap-booking',
            body: json({
              studentId: 'stu_b',
              tutorId: 'tut_b',
              price: { amount: 100, currency: 'usd' },
              scheduledAt: LEAP_SECOND,
            }),
          }),
        400,
        'validation_failed',
      );
    });

    it('a leap second as an account balance asOf', async () => {
      await refused(
        () =>
          http('GET', `/v1/accounts/student:stu_b:wallet/balance?asOf=${encodeURIComponent(LEAP_SECOND)}`, {
            token: tok.finance,
          }),
        400,
        'validation_failed',
      );
    });

    it('a leap second as the due-tasks now', async () => {
      await refused(
        () => http('POST', '/v1/jobs/due-tasks', { token: tok.service, body: json({ now: LEAP_SECOND }) }),
        400,
        'validation_failed',
      );
    });

    it('year 0 as asOf', async () => {
      await refused(
        () =>
          http('GET', `/v1/accounts/student:stu_b:wallet/balance?asOf=0000-01-01T00:00:00Z`, {
            token: tok.finance,
          }),
        400,
        'validation_failed',
      );
    });

    it('year 0 as a booking scheduledAt and as the due-tasks now', async () => {
      await refused(
        () =>
          http('POST', '/v1/bookings', {
            token: tok.student,
            key: 'year0-booking',
            body: json({
              studentId: 'stu_b',
              tutorId: 'tut_b',
              price: { amount: 100, currency: 'usd' },
              scheduledAt: '0000-01-01T00:00:00Z',
            }),
          }),
        400,
        'validation_failed',
      );
      await refused(
        () =>
          http('POST', '/v1/jobs/due-tasks', {
            token: tok.service,
            body: json({ now: '0000-01-01T00:00:00Z' }),
          }),
        400,
        'validation_failed',
      );
    });
  });

  describe('positions and revisions past what a store can hold', () => {
    const TOO_BIG = '9999999999999999999';

    it('position on an account balance', async () => {
      await refused(
        () =>
          http('GET', `/v1/accounts/student:stu_b:wallet/balance?position=${TOO_BIG}`, {
            token: tok.finance,
          }),
        400,
        'validation_failed',
      );
    });

    it('fromRevision on stream events', async () => {
      await refused(
        () =>
          http('GET', `/v1/streams/wallet-${T}.stu_b/events?fromRevision=${TOO_BIG}`, { token: tok.finance }),
        400,
        'validation_failed',
      );
    });

    it('consistentWith on any read', async () => {
      await refused(
        () => http('GET', `/v1/wallets/stu_b?consistentWith=${TOO_BIG}`, { token: tok.student }),
        400,
        'validation_failed',
      );
    });

    it('one past the largest position a store can hold is refused, the largest is valid', async () => {
      await refused(
        () =>
          http('GET', `/v1/accounts/student:stu_b:wallet/balance?position=9007199254740992`, {
            token: tok.finance,
          }),
        400,
        'validation_failed',
      );
      const res = await http('GET', `/v1/accounts/student:stu_b:wallet/balance?position=9007199254740991`, {
        token: tok.finance,
      });
      expect(res.status, res.text).toBe(200);
      const far = await http('GET', `/v1/streams/wallet-${T}.stu_b/events?fromRevision=9007199254740991`, {
        token: tok.finance,
      });
      expect(far.status, far.text).toBe(200);
      expect(JSON.parse(far.text)).toMatchObject({ events: [], nextRevision: null });
    });
  });

  describe('signed Stripe webhooks that are not Stripe events', () => {
    async function signed(payload: string) {
      return http('POST', '/v1/webhooks/stripe', {
        body: payload,
        headers: {
          'content-type': 'application/json',
          'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }),
        },
      });
    }
    const created = () => Math.floor(Date.now() / 1000);

    it('no data', async () => {
      await refused(
        () =>
          signed(
            json({ id: 'evt_nodata', object: 'event', type: 'payment_intent.succeeded', created: created() }),
          ),
        400,
        'validation_failed',
      );
    });

    it('data.object null', async () => {
      await refused(
        () =>
          signed(
            json({
              id: 'evt_nullobj',
              object: 'event',
              type: 'payment_intent.succeeded',
              created: created(),
              data: { object: null },
            }),
          ),
        400,
        'validation_failed',
      );
    });

    it('no id', async () => {
      await refused(
        () =>
          signed(
            json({
              object: 'event',
              type: 'payment_intent.succeeded',
              created: created(),
              data: { object: { id: 'pi_x', object: 'payment_intent', metadata: {} } },
            }),
          ),
        400,
        'validation_failed',
      );
    });

    it('the body []', async () => {
      await refused(() => signed('[]'), 400, 'validation_failed');
    });

    it('a well-formed event of a type the ledger ignores is still acknowledged', async () => {
      const res = await signed(
        json({
          id: 'evt_ignored',
          object: 'event',
          type: 'customer.created',
          created: created(),
          data: { object: { id: 'cus_1', object: 'customer' } },
        }),
      );
      expect(res.status, res.text).toBe(200);
    });
  });

  describe('tokens', () => {
    it('a 100 kB token is a 401 problem, not a raw 431', async () => {
      await refused(
        () =>
          http('GET', '/v1/wallets/stu_b', { headers: { authorization: `Bearer ${'a'.repeat(100_000)}` } }),
        401,
        'unauthenticated',
      );
    });

    it('headers past the server bound are a 431 problem', async () => {
      await refused(
        () =>
          http('GET', '/v1/wallets/stu_b', {
            token: tok.student,
            headers: { 'x-padding': 'p'.repeat(200_000) },
          }),
        431,
        'headers_too_large',
      );
    });

    it('a token whose lifetime is past the maximum is refused', async () => {
      // Expires in 2100: valid signature, valid claims, far too long-lived.
      const long = await token(T, 'stu_b', 'student', {
        ttlSeconds: 4_102_444_800 - Math.floor(Date.now() / 1000),
      });
      const body = await refused(
        () => http('GET', '/v1/wallets/stu_b', { token: long }),
        401,
        'unauthenticated',
      );
      expect(String(body.detail)).toMatch(/lifetime/);
    });

    it('a token issued a day in the future is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const future = await token(T, 'stu_b', 'student', { issuedAt: now + 86_400, ttlSeconds: 3_600 });
      await refused(() => http('GET', '/v1/wallets/stu_b', { token: future }), 401, 'unauthenticated');
    });

    it('a token not valid before tomorrow is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const later = await token(T, 'stu_b', 'student', { notBefore: now + 86_400, ttlSeconds: 3_600 });
      await refused(() => http('GET', '/v1/wallets/stu_b', { token: later }), 401, 'unauthenticated');
    });

    it('a token without iat is refused (its lifetime cannot be checked)', async () => {
      const noIat = await token(T, 'stu_b', 'student', { issuedAt: null, ttlSeconds: 600 });
      await refused(() => http('GET', '/v1/wallets/stu_b', { token: noIat }), 401, 'unauthenticated');
    });

    it('a token within the maximum lifetime and the clock skew is accepted', async () => {
      const now = Math.floor(Date.now() / 1000);
      const ok = await token(T, 'stu_b', 'student', { issuedAt: now + 10, ttlSeconds: 3_600 });
      const res = await http('GET', '/v1/wallets/stu_b', { token: ok });
      expect(res.status, res.text).toBe(200);
    });
  });

  describe('queries and media types', () => {
    it('GET /v1/reconciliation/runs/{id}?limit=5 reads the limit', async () => {
      const res = await http('GET', '/v1/reconciliation/runs/no_such_run?limit=5', { token: tok.finance });
      expect(res.status, res.text).toBe(404);
      expect(JSON.parse(res.text)).toMatchObject({ code: 'not_found' });
      await refused(
        () => http('GET', '/v1/reconciliation/runs/no_such_run?limit=0', { token: tok.finance }),
        400,
        'validation_failed',
      );
      await refused(
        () => http('GET', '/v1/reconciliation/runs/no_such_run?limit=10001', { token: tok.finance }),
        400,
        'validation_failed',
      );
    });

    it('a text/plain body is 415', async () => {
      await refused(
        () =>
          http('POST', '/v1/adjustments', {
            token: tok.finance,
            key: 'plain-1',
            headers: { 'content-type': 'text/plain' },
            body: json({
              account: 'stripe:balance',
              direction: 'debit',
              amount: 1,
              currency: 'usd',
              reason: 'x',
            }),
          }),
        415,
        'unsupported_media_type',
      );
      await refused(
        () =>
          http('PUT', '/v1/tenant/settings', {
            token: tok.admin,
            headers: { 'content-type': 'text/plain' },
            body: 'commissionRateBps=1',
          }),
        415,
        'unsupported_media_type',
      );
      await refused(
        () =>
          http('POST', '/v1/webhooks/stripe', {
            headers: { 'content-type': 'text/plain', 'stripe-signature': 't=1,v1=00' },
            body: '{}',
          }),
        415,
        'unsupported_media_type',
      );
    });
  });

  describe('tenant settings', () => {
    it('allowedCurrencies without a currency the ledger holds money in is refused', async () => {
      const body = await refused(
        () =>
          http('PUT', '/v1/tenant/settings', {
            token: tok.admin,
            body: json({ allowedCurrencies: ['eur'] }),
          }),
        422,
        'currency_in_use',
      );
      expect(body.details).toMatchObject({ currencies: ['usd'] });
      const kept = await call('PUT', '/v1/tenant/settings', {
        token: tok.admin,
        body: { allowedCurrencies: ['usd', 'eur'] },
      });
      expect(kept.status, JSON.stringify(kept.body)).toBe(200);
    });
  });
});
