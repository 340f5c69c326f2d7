import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerLock } from '../../src/projections/runnerLock.js';
import { token } from '../api/support/harness.js';
import { client } from '../api/support/realStack.js';
import { type Receiver, startReceiver, startWebhookStack, type WebhookStack } from './support.js';

/**
 * The flake of webhooks.e2e and balanceMonitors.e2e on a loaded Postgres ("timeout expired", 0 requests
 * received): the dispatcher takes its runner lock on a connection of its own, that connect timed out,
 * and the error left the dispatcher's loop, so nothing was ever delivered. A lock whose first acquire
 * fails as that connect did must cost one poll interval, not the dispatcher.
 */
const T = 'acme';

describe('the webhook dispatcher survives a failure to take its lock', () => {
  let s: WebhookStack;
  let rx: Receiver;
  let failures = 0;
  const lock: RunnerLock = {
    async acquire() {
      if (failures++ === 0) throw new Error('timeout expired');
      return true;
    },
    isHeld: () => true,
    async release() {},
  };

  beforeAll(async () => {
    s = await startWebhookStack({ dispatcher: { lock, pollIntervalMs: 100 } });
    rx = await startReceiver();
  });
  afterAll(async () => {
    await s?.close();
    await rx?.close();
  });

  it('delivers after the failed attempt', async () => {
    const call = client(s.baseUrl);
    const admin = await token(T, 'adm_1', 'tenant_admin');
    const finance = await token(T, 'fin_1', 'finance_admin');
    const registered = await call('POST', '/v1/webhook-endpoints', {
      token: admin,
      body: { url: rx.url, eventTypes: ['wallet.adjusted'] },
    });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    const credited = await call('POST', '/v1/adjustments', {
      token: finance,
      key: 'lock-1',
      body: {
        account: 'student:stu_1:wallet',
        direction: 'credit',
        amount: 100,
        currency: 'usd',
        reason: 'x',
      },
    });
    expect(credited.status, JSON.stringify(credited.body)).toBe(201);
    await rx.waitFor(1, 20_000);
    expect(failures).toBeGreaterThan(1);
    expect(JSON.parse(rx.requests[0]!.body)).toMatchObject({ type: 'wallet.adjusted' });
  });
});
