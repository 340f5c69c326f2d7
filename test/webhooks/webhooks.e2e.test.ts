import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Resolver, systemResolver } from '../../src/webhooks/addressPolicy.js';
import { token } from '../api/support/harness.js';
import { client } from '../api/support/realStack.js';
import { eventually, type Receiver, startReceiver, startWebhookStack, type WebhookStack } from './support.js';

/** The verification snippet exactly as docs/webhooks.md shows it, loaded as a module. */
async function documentedVerifier(): Promise<
  (rawBody: string, header: string, secret: string, toleranceSeconds?: number) => boolean
> {
  const docs = readFileSync(path.resolve(import.meta.dirname, '../../docs/webhooks.md'), 'utf8');
  const match = /```js verify-webhook\n([\s\S]*?)```/.exec(docs);
  if (!match) throw new Error('docs/webhooks.md has no verify-webhook snippet');
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'verify-')), 'verify.mjs');
  writeFileSync(file, match[1]!);
  const module = (await import(pathToFileURL(file).href)) as { verifyWebhook: never };
  return module.verifyWebhook;
}

/** Names the tests point wherever they like; anything else resolves as usual. */
const names = new Map<string, string[]>();
const resolver: Resolver = {
  resolve: async (host) => names.get(host) ?? systemResolver.resolve(host),
};

const T = 'acme';

describe('outbound webhooks over HTTP', () => {
  let s: WebhookStack;
  let rx: Receiver;
  let admin: string;
  let finance: string;
  let call: ReturnType<typeof client>;
  let verify: Awaited<ReturnType<typeof documentedVerifier>>;
  let n = 0;

  const credit = (amount: number, studentId = 'stu_1') =>
    call('POST', '/v1/adjustments', {
      token: finance,
      key: `adj-${n++}`,
      body: {
        account: `student:${studentId}:wallet`,
        direction: 'credit',
        amount,
        currency: 'usd',
        reason: 'test',
      },
    });

  beforeAll(async () => {
    s = await startWebhookStack({ resolver });
    rx = await startReceiver();
    admin = await token(T, 'adm_1', 'tenant_admin');
    finance = await token(T, 'fin_1', 'finance_admin');
    call = client(s.baseUrl);
    verify = await documentedVerifier();
  });
  afterAll(async () => {
    await s?.close();
    await rx?.close();
  });

  let endpointId = '';
  let secret = '';

  it('registers an endpoint and delivers signed events that the documented snippet verifies', async () => {
    const created = await call('POST', '/v1/webhook-endpoints', {
      token: admin,
      key: 'hook-1',
      body: { url: rx.url, eventTypes: ['wallet.adjusted'], description: 'test receiver' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const endpoint = created.body.endpoint as { id: string; status: string; secrets: unknown[] };
    endpointId = endpoint.id;
    secret = created.body.secret as string;
    expect(endpoint.status).toBe('enabled');
    expect(secret).toMatch(/^whsec_/);
    // Same key, same request: the same endpoint and secret (no second endpoint).
    const again = await call('POST', '/v1/webhook-endpoints', {
      token: admin,
      key: 'hook-1',
      body: { url: rx.url, eventTypes: ['wallet.adjusted'], description: 'test receiver' },
    });
    expect(again.body).toMatchObject({ endpoint: { id: endpointId }, secret });
    const list = await call('GET', '/v1/webhook-endpoints', { token: finance });
    expect((list.body.items as unknown[]).length).toBe(1);

    expect((await credit(1_000)).status).toBe(201);
    await rx.waitFor(1);
    const [received] = rx.requests;
    const body = JSON.parse(received!.body) as Record<string, unknown>;
    expect(body).toMatchObject({
      object: 'event',
      type: 'wallet.adjusted',
      apiVersion: '2026-12-01',
      tenant: T,
      data: {
        object: {
          object: 'adjustment',
          studentId: 'stu_1',
          direction: 'credit',
          amount: { amount: 1_000, currency: 'usd' },
        },
      },
    });
    expect(received!.headers['wemaster-event-id']).toBe(body.id);
    expect(received!.headers['wemaster-event-type']).toBe('wallet.adjusted');
    const header = received!.headers['wemaster-signature'] as string;
    expect(verify(received!.body, header, secret)).toBe(true);
    expect(verify(`${received!.body} `, header, secret)).toBe(false);
    expect(verify(received!.body, header, 'whsec_wrong')).toBe(false);
    // A stale timestamp is refused even with a correct signature.
    const t = Number(/t=(\d+)/.exec(header)![1]);
    const { createHmac } = await import('node:crypto');
    const old = t - 3_600;
    const stale = `t=${old},v1=${createHmac('sha256', secret).update(`${old}.${received!.body}`).digest('hex')}`;
    expect(verify(received!.body, stale, secret)).toBe(false);

    const deliveries = await eventually(async () => {
      const page = await call('GET', `/v1/webhook-endpoints/${endpointId}/deliveries`, { token: finance });
      const items = page.body.items as Array<{ id: string; status: string }>;
      return items[0]?.status === 'succeeded' ? items : null;
    });
    const detail = await call('GET', `/v1/webhook-endpoints/${endpointId}/deliveries/${deliveries[0]!.id}`, {
      token: finance,
    });
    expect(detail.body).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      eventId: body.id,
      payload: received!.body,
    });
    expect(detail.body.attemptLog).toMatchObject([
      { attempt: 1, outcome: 'succeeded', statusCode: 200, manual: false },
    ]);
    const endpointRead = await call('GET', `/v1/webhook-endpoints/${endpointId}`, { token: admin });
    expect(endpointRead.body).toMatchObject({ health: { consecutiveFailures: 0, failingSince: null } });
  });

  // Found by the schema fuzz (test/api/schemaFuzz.e2e.test.ts): the limit had an integer schema, and
  // query strings are not coerced, so every ?limit=N was a 400.
  it('GET /v1/webhook-endpoints/{id}/deliveries?limit=N reads the limit', async () => {
    const list = await call('GET', '/v1/webhook-endpoints', { token: admin });
    const endpointId = (list.body.items as Array<{ id: string }>)[0]!.id;
    const page = await call('GET', `/v1/webhook-endpoints/${endpointId}/deliveries?limit=1`, {
      token: finance,
    });
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    expect((page.body.items as unknown[]).length).toBeLessThanOrEqual(1);
    const refused = await call('GET', `/v1/webhook-endpoints/${endpointId}/deliveries?limit=0`, {
      token: finance,
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'validation_failed' });
  });

  it('a failed delivery is scheduled for a retry with backoff and can be redelivered at once', async () => {
    rx.respond(() => 500);
    const before = rx.requests.length;
    await credit(200);
    await rx.waitFor(before + 1);
    const failed = await eventually(async () => {
      const page = await call('GET', `/v1/webhook-endpoints/${endpointId}/deliveries?status=pending`, {
        token: finance,
      });
      const items = page.body.items as Array<{
        id: string;
        attempts: number;
        nextAttemptAt: string;
        lastStatusCode: number;
      }>;
      return items[0]?.attempts === 1 ? items[0] : null;
    });
    expect(failed.lastStatusCode).toBe(500);
    // First retry after 5..10 s (base 10 s, equal jitter).
    const waitMs = Date.parse(failed.nextAttemptAt) - Date.now();
    expect(waitMs).toBeGreaterThan(2_000);
    expect(waitMs).toBeLessThanOrEqual(10_000);
    const health = await call('GET', `/v1/webhook-endpoints/${endpointId}`, { token: admin });
    expect(health.body).toMatchObject({ health: { consecutiveFailures: 1, lastError: 'HTTP 500' } });

    rx.respond(() => 204);
    const retried = await call('POST', `/v1/webhook-endpoints/${endpointId}/deliveries/${failed.id}/retry`, {
      token: admin,
    });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect(retried.body).toMatchObject({
      delivery: { status: 'succeeded', attempts: 2 },
      attempt: { attempt: 2, manual: true, outcome: 'succeeded', statusCode: 204 },
    });
    // The two requests of that delivery carried the same event id (dedupe on it).
    const ids = rx.requests.slice(before).map((r) => r.headers['wemaster-event-id']);
    expect(new Set(ids).size).toBe(1);
    rx.respond(() => 200);
  });

  it('a rotated secret signs beside the new one during its grace period', async () => {
    const rotated = await call('POST', `/v1/webhook-endpoints/${endpointId}/rotate-secret`, {
      token: admin,
      key: 'rotate-1',
      body: { graceHours: 1 },
    });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    const newSecret = rotated.body.secret as string;
    expect(newSecret).not.toBe(secret);
    expect((rotated.body.endpoint as { secrets: unknown[] }).secrets).toHaveLength(2);
    const before = rx.requests.length;
    await credit(300);
    await rx.waitFor(before + 1);
    const received = rx.requests[before]!;
    const header = received.headers['wemaster-signature'] as string;
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verify(received.body, header, newSecret)).toBe(true);
    expect(verify(received.body, header, secret)).toBe(true);
    secret = newSecret;
  });

  it('a disabled endpoint receives nothing new; enabled, it receives again; deleted, it is gone', async () => {
    const disabled = await call('POST', `/v1/webhook-endpoints/${endpointId}/disable`, { token: admin });
    expect(disabled.body).toMatchObject({
      endpoint: { status: 'disabled', disabled: { reason: 'by_admin' } },
    });
    const before = rx.requests.length;
    await credit(400);
    await new Promise((r) => setTimeout(r, 500));
    expect(rx.requests.length).toBe(before);
    const enabled = await call('POST', `/v1/webhook-endpoints/${endpointId}/enable`, { token: admin });
    expect(enabled.body).toMatchObject({ endpoint: { status: 'enabled', disabled: null } });
    await credit(500);
    await rx.waitFor(before + 1);
    await new Promise((r) => setTimeout(r, 200));
    // Only the event after enabling: the one while disabled was never queued.
    expect(rx.requests.slice(before).map((r) => JSON.parse(r.body).data.object.amount.amount)).toEqual([500]);

    const deleted = await call('DELETE', `/v1/webhook-endpoints/${endpointId}`, { token: admin });
    expect(deleted.body).toMatchObject({ deleted: true });
    expect((await call('GET', `/v1/webhook-endpoints/${endpointId}`, { token: admin })).status).toBe(404);
    // Deleting is an event like the others, in the tenant's endpoints stream.
    const events = await call('GET', `/v1/streams/webhook-${T}.endpoints/events`, { token: finance });
    expect((events.body.events as Array<{ type: string }>).map((e) => e.type)).toEqual([
      'WebhookEndpointRegistered',
      'WebhookEndpointSecretRotated',
      'WebhookEndpointDisabled',
      'WebhookEndpointEnabled',
      'WebhookEndpointDeleted',
    ]);
  });

  it('refuses private, loopback, link-local and other special-purpose targets at registration', async () => {
    names.set('internal.test', ['10.1.2.3']);
    names.set('mixed.test', ['93.184.215.14', '192.168.1.1']);
    const headBefore = await s.store.headPosition();
    for (const url of [
      'http://10.0.0.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/hook',
      'http://[::ffff:127.0.0.2]/hook',
      'http://127.0.0.2/hook',
      'http://100.64.0.1/hook',
      'http://[fd00::1]/hook',
      'http://internal.test/hook',
      'http://mixed.test/hook',
      'http://0.0.0.0/hook',
    ]) {
      const res = await call('POST', '/v1/webhook-endpoints', {
        token: admin,
        body: { url, eventTypes: ['*'] },
      });
      expect(res.status, `${url}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body).toMatchObject({
        code: 'validation_failed',
        details: { field: 'url', reason: 'address_not_allowed' },
      });
    }
    for (const url of [
      'ftp://example.com/x',
      'http://user:pw@127.0.0.1/x',
      'not a url',
      'http://no-such-host.invalid/',
    ]) {
      const res = await call('POST', '/v1/webhook-endpoints', {
        token: admin,
        body: { url, eventTypes: ['*'] },
      });
      expect(res.status, url).toBe(400);
    }
    const unknownType = await call('POST', '/v1/webhook-endpoints', {
      token: admin,
      body: { url: rx.url, eventTypes: ['wallet.exploded'] },
    });
    expect(unknownType.status).toBe(400);
    expect(await s.store.headPosition()).toBe(headBefore);
  });

  it('refuses at connection time a name that resolves to a refused address then (DNS rebinding)', async () => {
    names.set('rebind.test', ['93.184.215.14']);
    const created = await call('POST', '/v1/webhook-endpoints', {
      token: admin,
      body: { url: `http://rebind.test:${rx.port}/hooks`, eventTypes: ['wallet.adjusted'] },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = (created.body.endpoint as { id: string }).id;
    names.set('rebind.test', ['127.0.0.2']);
    const before = rx.requests.length;
    await credit(600);
    const delivery = await eventually(async () => {
      const page = await call('GET', `/v1/webhook-endpoints/${id}/deliveries`, { token: finance });
      const items = page.body.items as Array<{ id: string; attempts: number }>;
      return items[0]?.attempts === 1 ? items[0] : null;
    });
    const detail = await call('GET', `/v1/webhook-endpoints/${id}/deliveries/${delivery.id}`, {
      token: finance,
    });
    expect(detail.body).toMatchObject({
      status: 'pending',
      attemptLog: [{ outcome: 'address_not_allowed', statusCode: null }],
    });
    expect(rx.requests.length).toBe(before);
    const metrics = await (await fetch(`${s.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /ledger_webhook_deliveries_total\{outcome="address_not_allowed",trigger="automatic"\} 1/,
    );
    expect(metrics).toMatch(/ledger_webhook_deliveries_total\{outcome="succeeded",trigger="manual"\} 1/);
    expect(metrics).toContain('ledger_webhook_delivery_duration_seconds_bucket');
    await call('DELETE', `/v1/webhook-endpoints/${id}`, { token: admin });
  });

  it('documents every route in OpenAPI with an operationId and named component schemas', async () => {
    const doc = (await (await fetch(`${s.baseUrl}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { operationId?: string }>>;
      components: { schemas: Record<string, unknown> };
    };
    const ours = Object.entries(doc.paths).filter(([p]) =>
      /^\/v1\/(webhook-endpoints|balance-monitors)/.test(p),
    );
    const operations = ours.flatMap(([, ops]) => Object.values(ops).map((o) => o.operationId));
    expect(operations.sort()).toEqual(
      [
        'createBalanceMonitor',
        'createWebhookEndpoint',
        'deleteBalanceMonitor',
        'deleteWebhookEndpoint',
        'disableWebhookEndpoint',
        'enableWebhookEndpoint',
        'getBalanceMonitor',
        'getWebhookDelivery',
        'getWebhookEndpoint',
        'listBalanceMonitors',
        'listWebhookDeliveries',
        'listWebhookEndpoints',
        'retryWebhookDelivery',
        'rotateWebhookEndpointSecret',
      ].sort(),
    );
    for (const name of [
      'WebhookEndpoint',
      'WebhookDelivery',
      'WebhookAttempt',
      'BalanceMonitor',
      'BalanceCondition',
    ]) {
      expect(doc.components.schemas, name).toHaveProperty(name);
    }
  });
});
