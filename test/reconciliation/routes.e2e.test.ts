import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerApp } from '../../src/api/app.js';
import { reconciliationRoutes } from '../../src/api/routes/reconciliation.js';
import { eventStoreFactSource } from '../../src/reconciliation/ledgerFacts.js';
import { Reconciler } from '../../src/reconciliation/reconciler.js';
import { type ShellHarness, shellHarness, token } from '../api/support/harness.js';
import { type LedgerHarness, startLedgerHarness, TENANT } from '../stripe/ledgerHarness.js';

/** The reconciliation route module in the API's /v1 context, over the real command layer and fake Stripe. */
describe('reconciliation routes', () => {
  let h: LedgerHarness;
  let api: ShellHarness;
  let app: LedgerApp;
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
    api = await shellHarness({
      store: h.store,
      routes: [reconciliationRoutes({ reconciler, store: h.store })],
    });
    app = api.app;
    admin = await token(TENANT, 'fin1', 'finance_admin');
  });
  afterAll(async () => {
    await api.close();
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
    // A money route: the retry is answered with the first response, nothing is booked twice.
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(run);
    const sameKeyOtherBody = await app.inject({
      method: 'POST',
      url: '/v1/reconciliation/runs',
      headers,
      payload: { ...body, to: new Date(Date.now() + 7_200_000).toISOString() },
    });
    expect(sameKeyOtherBody.statusCode).toBe(422);
    // Without a key it is refused, as every money POST is (it books fees).
    const keyless = await app.inject({
      method: 'POST',
      url: '/v1/reconciliation/runs',
      headers: { authorization: `Bearer ${admin}` },
      payload: body,
    });
    expect(keyless.statusCode).toBe(400);
    expect(keyless.json()).toMatchObject({ code: 'validation_failed' });

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

  it('lists runs newest first, paged with an opaque cursor, without their items', async () => {
    const headers = { authorization: `Bearer ${admin}` };
    const runIds: string[] = [];
    for (const n of [1, 2, 3]) {
      const created = await app.inject({
        method: 'POST',
        url: '/v1/reconciliation/runs',
        headers: { ...headers, 'idempotency-key': `recon-list-${n}` },
        payload: {
          from: new Date(Date.now() - n * 3_600_000).toISOString(),
          to: new Date(Date.now() + 3_600_000).toISOString(),
        },
      });
      expect(created.statusCode).toBe(201);
      runIds.push(created.json().runId);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await app.inject({
        method: 'GET',
        url: `/v1/reconciliation/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        headers,
      });
      expect(page.statusCode, page.body).toBe(200);
      const body = page.json() as { runs: Array<Record<string, unknown>>; nextCursor: string | null };
      expect(body.runs.length).toBeLessThanOrEqual(2);
      for (const run of body.runs) {
        expect(run).not.toHaveProperty('items');
        expect(run).toMatchObject({ status: 'completed', scope: { kind: 'range' } });
        seen.push(run.runId as string);
      }
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(expect.arrayContaining(runIds));
    expect(new Set(seen).size).toBe(seen.length);
    const started = await Promise.all(
      seen.map(
        async (id) =>
          (await app.inject({ method: 'GET', url: `/v1/reconciliation/runs/${id}`, headers })).json()
            .startedAt as string,
      ),
    );
    expect([...started].sort().reverse()).toEqual(started);
    const bad = await app.inject({ method: 'GET', url: '/v1/reconciliation/runs?cursor=bm9wZQ', headers });
    expect(bad.statusCode).toBe(400);
    expect(
      (await app.inject({ method: 'GET', url: '/v1/reconciliation/runs?limit=0', headers })).statusCode,
    ).toBe(400);
  });

  it('declares its answers in OpenAPI: the run for 200 and 201, the pending run for 202', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<
        string,
        Record<
          string,
          {
            responses: Record<
              string,
              { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }
            >;
          }
        >
      >;
    };
    const post = doc.paths['/v1/reconciliation/runs']?.post;
    for (const status of ['200', '201']) {
      expect(
        Object.keys(post?.responses[status]?.content?.['application/json']?.schema?.properties ?? {}),
      ).toEqual(expect.arrayContaining(['runId', 'status', 'scope', 'summary', 'items']));
    }
    expect(post?.responses['202']).toBeDefined();
    expect(
      doc.paths['/v1/reconciliation/runs/{id}']?.get?.responses['200']?.content?.['text/csv'],
    ).toBeDefined();
  });

  it('is for finance admins only, validates the body, 404s unknown runs', async () => {
    const student = await token(TENANT, 's1', 'student');
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
