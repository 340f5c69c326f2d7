import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import type { ProcessManagerHandle } from '../../src/commands/processManagerRunner.js';
import { DEFAULT_RETRY_WINDOW_MS } from '../../src/webhooks/dispatcher.js';
import { startWebhookFanout } from '../../src/webhooks/fanout.js';
import { token } from '../api/support/harness.js';
import { client } from '../api/support/realStack.js';
import { type Receiver, startReceiver, startWebhookStack, type WebhookStack } from './support.js';

/**
 * The retry schedule on a fake clock: the dispatcher is driven by hand (drain) at the instants the
 * schedule names, against real receivers: one that always fails, one that always answers.
 */
const T = 'acme';
const T0 = Date.parse('2026-12-01T00:00:00.000Z');

describe('webhook retries on a fake clock', () => {
  let now = T0;
  const clock = () => new Date(now);
  let s: WebhookStack;
  let dead: Receiver;
  let healthy: Receiver;
  let fanout: ProcessManagerHandle;
  let call: ReturnType<typeof client>;
  let admin: string;
  let finance: string;
  let n = 0;
  let exhaustedCount = 0;

  const credit = async (studentId: string, amount: number) => {
    const res = await call('POST', '/v1/adjustments', {
      token: finance,
      key: `adj-${n++}`,
      body: {
        account: `student:${studentId}:wallet`,
        direction: 'credit',
        amount,
        currency: 'usd',
        reason: 'retry test',
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  };
  const register = async (url: string, eventTypes = ['wallet.adjusted']) => {
    const res = await call('POST', '/v1/webhook-endpoints', { token: admin, body: { url, eventTypes } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body.endpoint as { id: string }).id;
  };
  const amounts = (r: Receiver) =>
    r.requests.map((q) => {
      const body = JSON.parse(q.body) as {
        data: { object: { studentId: string; amount: { amount: number } } };
      };
      return `${body.data.object.studentId}:${body.data.object.amount.amount}`;
    });

  beforeAll(async () => {
    s = await startWebhookStack({ clock, start: false, dispatcher: { random: () => 0.5 } });
    dead = await startReceiver();
    dead.respond(() => 503);
    healthy = await startReceiver();
    call = client(s.baseUrl);
    admin = await token(T, 'adm_1', 'tenant_admin');
    finance = await token(T, 'fin_1', 'finance_admin');
    fanout = startWebhookFanout({
      store: s.store,
      checkpoints: new MemoryCheckpointStore(),
      deliveries: s.features.deliveries,
      clock,
    });
  });
  afterAll(async () => {
    await fanout?.stop();
    await s?.close();
    await dead?.close();
    await healthy?.close();
  });

  it('backs off exponentially for 3 days, then gives up and disables the dead endpoint only', async () => {
    const deadId = await register(dead.url);
    const healthyId = await register(healthy.url, ['wallet.adjusted', 'webhook_endpoint.disabled']);
    await credit('stu_1', 101);
    await credit('stu_1', 102);
    await credit('stu_2', 201);
    await credit('stu_1', 103);
    await fanout.waitForPosition(await s.store.headPosition(), 10_000);
    const dispatcher = s.features.dispatcher!;

    await dispatcher.drain();
    // The healthy endpoint got everything at once, each wallet's events in order, whatever the dead one does.
    expect(amounts(healthy).filter((a) => a.startsWith('stu_1'))).toEqual([
      'stu_1:101',
      'stu_1:102',
      'stu_1:103',
    ]);
    expect(amounts(healthy)).toHaveLength(4);
    const healthyBefore = healthy.requests.length;
    // The dead one saw only the head of each wallet's line.
    expect(amounts(dead).sort()).toEqual(['stu_1:101', 'stu_2:201']);

    // Follow the schedule: jump to each next due time and drain.
    const attemptTimes: number[] = [T0];
    for (let guard = 0; guard < 100; guard++) {
      const next = await s.features.deliveries.nextDueAt();
      if (!next) break;
      now = next.getTime();
      const before = dead.requests.length;
      await dispatcher.drain();
      if (dead.requests.length > before) attemptTimes.push(now);
    }
    const gaps = attemptTimes.slice(1).map((t, i) => (t - attemptTimes[i]!) / 1000);
    // Equal jitter at random() = 0.5: 3/4 of 10 s, 20 s, 40 s ... doubling up to 3/4 of 6 h.
    expect(gaps.slice(0, 5)).toEqual([7.5, 15, 30, 60, 120]);
    for (let i = 1; i < gaps.length - 1; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(6 * 3600 * 0.75);
    // The last attempt falls exactly on the end of the 3-day window.
    expect(attemptTimes.at(-1)).toBe(T0 + DEFAULT_RETRY_WINDOW_MS);
    expect(attemptTimes.length).toBeGreaterThan(15);
    expect(attemptTimes.length).toBeLessThan(40);

    const deadEndpoint = await call('GET', `/v1/webhook-endpoints/${deadId}`, { token: admin });
    expect(deadEndpoint.body).toMatchObject({
      status: 'disabled',
      disabled: {
        reason: 'failing',
        failure: { failingSince: new Date(T0).toISOString(), lastError: 'HTTP 503' },
      },
    });
    const healthyEndpoint = await call('GET', `/v1/webhook-endpoints/${healthyId}`, { token: admin });
    expect(healthyEndpoint.body).toMatchObject({ status: 'enabled' });
    // The head that failed for the whole window is given up; what waits behind it (and a head whose last
    // attempt came after the endpoint was disabled) is paused until the endpoint is enabled.
    const failed = await call('GET', `/v1/webhook-endpoints/${deadId}/deliveries?status=failed`, {
      token: admin,
    });
    const paused = await call('GET', `/v1/webhook-endpoints/${deadId}/deliveries?status=paused`, {
      token: admin,
    });
    const failedCount = (failed.body.items as unknown[]).length;
    expect(failedCount).toBeGreaterThanOrEqual(1);
    expect(failedCount + (paused.body.items as unknown[]).length).toBe(4);
    exhaustedCount = failedCount;

    // The tenant's other endpoint is told, by a webhook.
    await fanout.waitForPosition(await s.store.headPosition(), 10_000);
    await dispatcher.drain();
    expect(healthy.requests.length).toBe(healthyBefore + 1);
    const notice = healthy.requests.map(
      (r) => JSON.parse(r.body) as { type: string; data: { object: { id: string } } },
    );
    expect(notice.at(-1)).toMatchObject({
      type: 'webhook_endpoint.disabled',
      data: { object: { id: deadId } },
    });
    const metrics = await (await fetch(`${s.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/ledger_webhook_endpoints_disabled_total\{reason="failing"\} 1/);
    expect(metrics).toContain(`ledger_webhook_deliveries_exhausted_total ${exhaustedCount}`);
    expect(metrics).toMatch(/ledger_webhook_deliveries_pending 0/);
  });

  it('enabling it again delivers what waited, with a fresh window', async () => {
    const list = await call('GET', '/v1/webhook-endpoints', { token: admin });
    const deadId = (list.body.items as Array<{ id: string; status: string }>).find(
      (e) => e.status === 'disabled',
    )!.id;
    dead.respond(() => 200);
    const before = dead.requests.length;
    await call('POST', `/v1/webhook-endpoints/${deadId}/enable`, { token: admin });
    await fanout.waitForPosition(await s.store.headPosition(), 10_000);
    await s.features.dispatcher!.drain();
    const resent = amounts(dead).slice(before);
    expect(resent.filter((a) => a.startsWith('stu_1'))).toEqual(['stu_1:102', 'stu_1:103']);
    expect(resent).toHaveLength(4 - exhaustedCount);
  });
});
