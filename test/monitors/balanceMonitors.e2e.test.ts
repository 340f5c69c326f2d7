import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import { balancesFromQueries, startBalanceMonitorEvaluator } from '../../src/monitors/evaluator.js';
import { MonitorStore } from '../../src/monitors/monitorStore.js';
import { token } from '../api/support/harness.js';
import { client } from '../api/support/realStack.js';
import {
  eventually,
  type Receiver,
  startReceiver,
  startWebhookStack,
  type WebhookStack,
} from '../webhooks/support.js';

const T = 'acme';

describe('balance monitors over HTTP', () => {
  let s: WebhookStack;
  let rx: Receiver;
  let finance: string;
  let admin: string;
  let call: ReturnType<typeof client>;
  let n = 0;
  const adjust = async (direction: 'credit' | 'debit', amount: number) => {
    const res = await call('POST', '/v1/adjustments', {
      token: finance,
      key: `adj-${n++}`,
      body: { account: 'student:stu_m:wallet', direction, amount, currency: 'usd', reason: 'monitor test' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return BigInt(res.body.position as string);
  };
  const monitorEvents = async (id: string) => {
    const res = await call('GET', `/v1/streams/balancemonitor-${T}.${id}/events`, { token: finance });
    return (res.body.events as Array<{ type: string; data: Record<string, unknown> }>) ?? [];
  };

  beforeAll(async () => {
    s = await startWebhookStack();
    rx = await startReceiver();
    finance = await token(T, 'fin_1', 'finance_admin');
    admin = await token(T, 'adm_1', 'tenant_admin');
    call = client(s.baseUrl);
  });
  afterAll(async () => {
    await s?.close();
    await rx?.close();
  });

  let monitorId = '';

  it('fires when the condition becomes true, and again only after it was false', async () => {
    const hook = await call('POST', '/v1/webhook-endpoints', {
      token: admin,
      body: { url: rx.url, eventTypes: ['balance_monitor.triggered', 'balance_monitor.recovered'] },
    });
    expect(hook.status).toBe(201);
    const created = await call('POST', '/v1/balance-monitors', {
      token: finance,
      key: 'mon-1',
      body: {
        account: 'student:stu_m:wallet',
        currency: 'usd',
        condition: { field: 'available', op: 'lt', amount: 500 },
        description: 'wallet low',
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    monitorId = (created.body.monitor as { id: string }).id;
    const listed = await call('GET', '/v1/balance-monitors?account=student:stu_m:wallet', { token: finance });
    expect((listed.body.items as Array<{ id: string }>).map((m) => m.id)).toEqual([monitorId]);

    await adjust('credit', 1_000); // 1000: false
    await adjust('debit', 700); // 300: true -> fires
    await adjust('debit', 100); // 200: still true, nothing
    await adjust('credit', 50); // 250: still true
    await adjust('credit', 1_000); // 1250: false -> recovered
    const last = await adjust('debit', 1_000); // 250: true -> fires again
    await s.features.evaluator()!.waitForPosition(last, 10_000);
    const events = await monitorEvents(monitorId);
    expect(events.map((e) => e.type)).toEqual([
      'BalanceMonitorCreated',
      'BalanceMonitorTriggered',
      'BalanceMonitorRecovered',
      'BalanceMonitorTriggered',
    ]);
    expect(events[1]!.data).toMatchObject({ currency: 'usd', value: 300, balance: { available: 300 } });
    const read = await call('GET', `/v1/balance-monitors/${monitorId}`, { token: finance });
    expect(read.body).toMatchObject({ triggeredCount: 2, states: [{ currency: 'usd', triggered: true }] });

    await rx.waitFor(3);
    const bodies = rx.requests.map(
      (r) => JSON.parse(r.body) as { type: string; data: { object: Record<string, unknown> } },
    );
    expect(bodies.map((b) => b.type)).toEqual([
      'balance_monitor.triggered',
      'balance_monitor.recovered',
      'balance_monitor.triggered',
    ]);
    expect(bodies[0]!.data.object).toMatchObject({
      monitorId,
      account: 'student:stu_m:wallet',
      value: 300,
      state: 'triggered',
    });
  });

  it('the list filter takes only an account path (a NUL byte was a 500 from Postgres)', async () => {
    for (const account of ['%00', 'student:%00:wallet', 'a'.repeat(301)]) {
      const r = await call('GET', `/v1/balance-monitors?account=${account}`, { token: finance });
      expect(r.status, account).toBe(400);
    }
    const ok = await call('GET', '/v1/balance-monitors?account=student:nobody:wallet', { token: finance });
    expect(ok.status).toBe(200);
  });

  it('a monitor created while its condition holds fires once, at its creation', async () => {
    const created = await call('POST', '/v1/balance-monitors', {
      token: finance,
      body: { account: 'student:stu_m:wallet', condition: { field: 'posted', op: 'lte', amount: 1_000 } },
    });
    expect(created.status).toBe(201);
    const id = (created.body.monitor as { id: string }).id;
    const position = BigInt(created.body.position as string);
    await s.features.evaluator()!.waitForPosition(position, 10_000);
    const events = await eventually(async () => {
      const e = await monitorEvents(id);
      return e.length === 2 ? e : null;
    });
    expect(events.map((e) => e.type)).toEqual(['BalanceMonitorCreated', 'BalanceMonitorTriggered']);
    expect(events[1]!.data).toMatchObject({ position: String(position), currency: 'usd', value: 250 });
  });

  it('evaluating the whole log again (a rebuild, a restart from zero) fires nothing more', async () => {
    const before = (await monitorEvents(monitorId)).length;
    const head = await s.store.headPosition();
    const again = startBalanceMonitorEvaluator({
      name: 'balance-monitors-replay',
      store: s.store,
      checkpoints: new MemoryCheckpointStore(),
      handler: s.service.handler,
      monitors: new MonitorStore(s.db.db),
      balances: balancesFromQueries(s.queries),
    });
    try {
      await again.waitForPosition(head, 20_000);
    } finally {
      await again.stop();
    }
    expect((await monitorEvents(monitorId)).length).toBe(before);
    expect(await s.store.headPosition()).toBe(head);
  });

  // Found by the schema fuzz (test/api/schemaFuzz.e2e.test.ts): the limit had an integer schema, and
  // query strings are not coerced, so every ?limit=N was a 400.
  it('GET /v1/balance-monitors?limit=N pages by N', async () => {
    const page = await call('GET', '/v1/balance-monitors?limit=1', { token: finance });
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    expect((page.body.items as unknown[]).length).toBe(1);
    expect(page.body.nextCursor).toEqual(expect.any(String));
    for (const limit of ['0', '201', '1.5', '-1']) {
      const refused = await call('GET', `/v1/balance-monitors?limit=${limit}`, { token: finance });
      expect(refused.status, limit).toBe(400);
      expect(refused.body).toMatchObject({ code: 'validation_failed' });
    }
  });

  it('refuses bad monitors and deletes', async () => {
    for (const body of [
      { account: 'nope', condition: { field: 'available', op: 'lt', amount: 1 } },
      { account: 'student:stu_m:wallet', condition: { field: 'balance', op: 'lt', amount: 1 } },
      { account: 'student:stu_m:wallet', condition: { field: 'available', op: 'eq', amount: 1 } },
      { account: 'student:stu_m:wallet', condition: { field: 'available', op: 'lt', amount: 1.5 } },
      {
        account: 'student:stu_m:wallet',
        currency: 'USD',
        condition: { field: 'available', op: 'lt', amount: 1 },
      },
    ]) {
      const res = await call('POST', '/v1/balance-monitors', { token: finance, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const deleted = await call('DELETE', `/v1/balance-monitors/${monitorId}`, { token: finance });
    expect(deleted.body).toMatchObject({ deleted: true });
    expect((await call('GET', `/v1/balance-monitors/${monitorId}`, { token: finance })).status).toBe(404);
    expect((await call('DELETE', `/v1/balance-monitors/${monitorId}`, { token: finance })).status).toBe(404);
    const student = await token(T, 'stu_m', 'student');
    expect((await call('GET', '/v1/balance-monitors', { token: student })).status).toBe(403);
  });
});
