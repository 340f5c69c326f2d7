import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/api/auth.js';
import { client } from '../api/support/realStack.js';
import { type AppProcess, dataDirTemplate, killTree, startApp } from '../support/appProcess.js';
import { eventually, type Receiver, startReceiver } from './support.js';

/**
 * The process that delivers webhooks is killed (SIGKILL) while a delivery is in flight, then started
 * again on the same data: every event still arrives, and an event that arrives twice carries the same
 * event id and the same body (at least once, dedupe on the id).
 */
const JWT_SECRET = 'crash-test-jwt-secret-0123456789abcdef';
const ENV = {
  JWT_SECRET,
  WEBHOOK_SECRET_KEY: 'crash-test-webhook-secret-key-0123456789',
  WEBHOOK_ALLOWED_NETWORKS: '127.0.0.1/32',
  LOG_LEVEL: 'warn',
};
const T = 'acme';
const CREDITS = [101, 102, 103, 104, 105];

describe('webhook deliveries through a crash of the delivering process', () => {
  let template: Awaited<ReturnType<typeof dataDirTemplate>>;
  let rx: Receiver;
  const apps: AppProcess[] = [];
  beforeAll(async () => {
    template = await dataDirTemplate();
    rx = await startReceiver();
  }, 180_000);
  afterAll(async () => {
    for (const app of apps) killTree(app);
    await rx?.close();
    template?.dispose();
  });

  it('loses nothing, and duplicates only with the same event id', { timeout: 300_000 }, async () => {
    const dataDir = template.copy();
    const first = await startApp({ dataDir, via: 'node', env: ENV });
    apps.push(first);
    const sign = (sub: string, role: 'tenant_admin' | 'finance_admin') =>
      signToken({ tenant: T, sub, roles: [role], secret: JWT_SECRET, ttlSeconds: 600 });
    const admin = await sign('adm_1', 'tenant_admin');
    const finance = await sign('fin_1', 'finance_admin');

    let written!: () => void;
    const allWritten = new Promise<void>((resolve) => {
      written = resolve;
    });
    let killed = false;
    // The first delivery is held until every event is written, then the app dies under it.
    rx.respond(async () => {
      if (!killed) {
        await allWritten;
        killed = true;
        process.kill(first.appPid, 'SIGKILL');
        throw new Error('the app died mid-delivery');
      }
      return 200;
    });

    const call = client(first.url);
    const hook = await call('POST', '/v1/webhook-endpoints', {
      token: admin,
      key: 'hook',
      body: { url: rx.url, eventTypes: ['wallet.adjusted'] },
    });
    expect(hook.status, JSON.stringify(hook.body)).toBe(201);
    for (const [i, amount] of CREDITS.entries()) {
      const res = await call('POST', '/v1/adjustments', {
        token: finance,
        key: `credit-${i}`,
        body: {
          account: `student:stu_${i % 2}:wallet`,
          direction: 'credit',
          amount,
          currency: 'usd',
          reason: 'crash',
        },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    written();
    await first.exited;
    expect(killed).toBe(true);

    const second = await startApp({ dataDir, via: 'node', env: ENV });
    apps.push(second);
    const seen = await eventually(async () => {
      const byId = new Map<string, Set<string>>();
      for (const r of rx.requests) {
        const id = r.headers['wemaster-event-id'] as string;
        byId.set(id, (byId.get(id) ?? new Set()).add(r.body));
      }
      return byId.size === CREDITS.length ? byId : null;
    }, 60_000);
    // Every event once or more; a repeat is byte-identical (same id, same body).
    for (const bodies of seen.values()) expect(bodies.size).toBe(1);
    const amounts = [...seen.values()].map((b) => JSON.parse([...b][0]!).data.object.amount.amount as number);
    expect(amounts.sort()).toEqual(CREDITS);
    // The one held when the app died was delivered again after the restart.
    expect(rx.requests.length).toBeGreaterThan(CREDITS.length);
    const endpointId = (hook.body.endpoint as { id: string }).id;
    const log = await eventually(async () => {
      const page = await client(second.url)('GET', `/v1/webhook-endpoints/${endpointId}/deliveries`, {
        token: admin,
      });
      const items = page.body.items as Array<{ status: string }>;
      return items.length === CREDITS.length && items.every((d) => d.status === 'succeeded') ? items : null;
    }, 30_000);
    expect(log).toHaveLength(CREDITS.length);
  });
});
