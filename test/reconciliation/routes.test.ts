import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator, signToken } from '../../src/api/auth.js';
import { eventStoreFactSource } from '../../src/reconciliation/ledgerFacts.js';
import { Reconciler } from '../../src/reconciliation/reconciler.js';
import { reconciliationRoutes } from '../../src/reconciliation/routes.js';
import { type LedgerHarness, startLedgerHarness, TENANT } from '../stripe/ledgerHarness.js';

const SECRET = 'test-secret-at-least-16-chars';

describe('reconciliation routes', () => {
  let h: LedgerHarness;
  const app = Fastify({ logger: false });
  let admin: string;

  beforeAll(async () => {
    h = await startLedgerHarness();
    await h.service.initiateTopUp(h.ctx('init-r1', 'student'), {
      topUpId: 'r1',
      studentId: 's1',
      amount: { amount: 10_000, currency: 'usd' },
      paymentMethod: 'pm_card_visa',
    });
    await h.fake.flushWebhooks();
    const reconciler = new Reconciler({
      stripe: h.gateway,
      ledger: () => eventStoreFactSource(h.store),
      store: h.store,
      commands: h.service,
      clock: () => new Date(),
    });
    await app.register(
      reconciliationRoutes({
        reconciler,
        store: h.store,
        authenticator: createAuthenticator({ jwtSecret: SECRET }),
      }),
      { prefix: '/v1' },
    );
    admin = await signToken({
      tenant: TENANT,
      sub: 'fin1',
      roles: ['finance_admin'],
      secret: SECRET,
      ttlSeconds: 600,
    });
  });
  afterAll(async () => {
    await app.close();
    await h.close();
  });

  it('runs a reconciliation, serves it as JSON and CSV, and replays an idempotent POST', async () => {
    const body = {
      from: new Date(Date.now() - 3_600_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    };
    const headers = { authorization: `Bearer ${admin}`, 'idempotency-key': 'recon-1' };
    const created = await app.inject({
      method: 'POST',
      url: '/v1/reconciliation/runs',
      headers,
      payload: body,
    });
    expect(created.statusCode).toBe(201);
    const run = created.json();
    expect(run).toMatchObject({
      status: 'completed',
      summary: { unbookedFee: 1, feesBooked: 1, scanned: 1 },
    });
    const again = await app.inject({
      method: 'POST',
      url: '/v1/reconciliation/runs',
      headers,
      payload: body,
    });
    expect(again.statusCode).toBe(200);
    expect(again.json().runId).toBe(run.runId);

    const got = await app.inject({ method: 'GET', url: `/v1/reconciliation/runs/${run.runId}`, headers });
    expect(got.json()).toMatchObject({ runId: run.runId, summary: run.summary, items: run.items });
    const csv = await app.inject({
      method: 'GET',
      url: `/v1/reconciliation/runs/${run.runId}?format=csv`,
      headers,
    });
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(csv.body.split('\r\n')[1]).toMatch(/^unbooked_fee,pi_/);
  });

  it('is for finance admins only, validates the body, 404s unknown runs', async () => {
    const student = await signToken({
      tenant: TENANT,
      sub: 's1',
      roles: ['student'],
      secret: SECRET,
      ttlSeconds: 600,
    });
    const body = { from: new Date(0).toISOString(), to: new Date(1_000).toISOString() };
    expect(
      (await app.inject({ method: 'POST', url: '/v1/reconciliation/runs', payload: body })).statusCode,
    ).toBe(401);
    const forbidden = await app.inject({
      method: 'POST',
      url: '/v1/reconciliation/runs',
      headers: { authorization: `Bearer ${student}` },
      payload: body,
    });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.headers['content-type']).toMatch(/problem\+json/);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/reconciliation/runs',
      headers: { authorization: `Bearer ${admin}` },
      payload: { from: 'yesterday' },
    });
    expect(bad.statusCode).toBe(400);
    const missing = await app.inject({
      method: 'GET',
      url: '/v1/reconciliation/runs/nope',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(missing.statusCode).toBe(404);
  });
});
