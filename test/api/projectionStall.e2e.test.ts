import { Writable } from 'node:stream';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resume, stalled, verify } from '../../src/cli/projectionsCommands.js';
import { eventId } from '../../src/domain/ids.js';
import type { JsonObject, RecordedEvent } from '../../src/eventstore/port.js';
import { LIVE_SCHEMA } from '../../src/projections/schema.js';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack, WEBHOOK_SECRET } from './support/realStack.js';

/**
 * Issue 20, item 2: one tenant's event that the projection cannot apply used to freeze every tenant's
 * read models (retried forever; /readyz ready; verify green). Now only that tenant stops, loudly, and
 * an operator resumes it after a fix.
 *
 * The poison: tenant C's wallet row in the read model was damaged by hand (credits_posted set near
 * Number.MAX_SAFE_INTEGER), and then an ordinary, well-formed credit of C's wallet is appended
 * directly to the store: applying it would overflow the damaged totals. The fix is repairing the row.
 * A second tenant, D, gets an event of a type no version of the ledger knows: it stays stalled.
 */
const A = 'stla';
const C = 'stlc';
const D = 'stld';

function sink(): { out: Writable; text: () => string } {
  let text = '';
  return {
    out: new Writable({
      write(chunk, _enc, done) {
        text += String(chunk);
        done();
      },
    }),
    text: () => text,
  };
}

describe('a projection that cannot apply an event stops only that tenant (issue 20)', () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok = {} as Record<'studentA' | 'financeC' | 'studentC', string>;

  beforeAll(async () => {
    s = await startRealStack();
    call = client(s.baseUrl);
    tok.studentA = await token(A, 'stu_a', 'student');
    tok.financeC = await token(C, 'fin_c', 'finance_admin');
    tok.studentC = await token(C, 'ov1', 'student');
  }, 180_000);
  afterAll(() => s.close());

  async function topUpA(key: string, amount: number): Promise<bigint> {
    const topUp = await call('POST', '/v1/wallets/stu_a/top-ups', {
      token: tok.studentA,
      key,
      body: { amount, currency: 'usd' },
    });
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(201);
    const payload = JSON.stringify({
      id: `evt_${key}`,
      object: 'event',
      type: 'payment_intent.succeeded',
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id: `pi_${key}`,
          object: 'payment_intent',
          amount,
          amount_received: amount,
          currency: 'usd',
          status: 'succeeded',
          metadata: { tenantId: A, topUpId: topUp.body.topUpId as string, studentId: 'stu_a' },
        },
      },
    });
    const webhook = await fetch(`${s.baseUrl}/v1/webhooks/stripe`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }),
      },
      body: payload,
    });
    expect(webhook.status, await webhook.clone().text()).toBeLessThan(300);
    return s.store.headPosition();
  }

  async function readyz(): Promise<Record<string, unknown>> {
    const res = await fetch(`${s.baseUrl}/readyz`);
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  async function stalledGauge(tenant: string): Promise<string | undefined> {
    const text = await (await fetch(`${s.baseUrl}/metrics`)).text();
    return text
      .split('\n')
      .find((l) => l.startsWith(`ledger_projection_stalled{projection="ledger",tenant="${tenant}"}`));
  }

  /** Appends a copy of `template` (a WalletAdjusted of C) under fresh ids, straight to the store. */
  async function appendDirectly(template: RecordedEvent, type: string, amount: number): Promise<bigint> {
    const key = `direct-${type}-${amount}`;
    const id = eventId(C, 'AdjustWallet', key, 0);
    const data = structuredClone(template.data) as Record<string, unknown> & {
      amount: number;
      adjustmentId: string;
      entry: { entryId: string; postings: Array<{ amount: number }> };
    };
    data.amount = amount;
    data.adjustmentId = `adj_${key}`;
    data.entry.entryId = eventId(C, 'entry', key, 0);
    for (const p of data.entry.postings) p.amount = amount;
    const result = await s.store.append(
      template.streamName,
      [
        {
          id,
          type,
          data: data as unknown as JsonObject,
          metadata: { ...template.metadata, idempotencyKey: key },
        },
      ],
      { expectedRevision: 'any' },
    );
    return result.position;
  }

  it('stalls C alone: A is read at once, readyz is degraded, the metric and verify say so, and resume applies C after a fix', async () => {
    // Tenant C, healthy at first.
    const credited = await call('POST', '/v1/adjustments', {
      token: tok.financeC,
      key: 'c-credit',
      body: {
        account: 'student:ov1:wallet',
        direction: 'credit',
        amount: 5_000,
        currency: 'usd',
        reason: 'seed',
      },
    });
    expect(credited.status, JSON.stringify(credited.body)).toBe(201);
    const seeded = await call('GET', `/v1/wallets/ov1?consistentWith=${String(credited.body.position)}`, {
      token: tok.studentC,
    });
    expect(seeded.status).toBe(200);
    const template = (await s.events()).find(
      (e) => e.type === 'WalletAdjusted' && e.metadata.tenantId === C,
    )!;

    // The damage, then the event that cannot be applied on it.
    await s.db.db.knex.raw(
      `UPDATE ${LIVE_SCHEMA}.balances SET credits_posted = ?, available = ? WHERE tenant_id = ? AND account = ?`,
      [Number.MAX_SAFE_INTEGER - 10, Number.MAX_SAFE_INTEGER - 10, C, 'student:ov1:wallet'],
    );
    const poison = await appendDirectly(template, 'WalletAdjusted', 100);
    // A later event of C is held back behind it.
    const heldBack = await appendDirectly(template, 'WalletAdjusted', 200);

    // Tenant A's top-up after the poison is readable at once.
    const afterPoison = await topUpA('a-1', 10_000);
    const walletA = await call('GET', `/v1/wallets/stu_a?consistentWith=${afterPoison}`, {
      token: tok.studentA,
    });
    expect(walletA.status, JSON.stringify(walletA.body)).toBe(200);
    expect(walletA.body).toMatchObject({ available: 10_000 });

    // C: a read of its own write answers 503 projection_stalled at once, naming the stall.
    const started = Date.now();
    const readC = await call('GET', `/v1/wallets/ov1?consistentWith=${heldBack}`, { token: tok.studentC });
    expect(readC.status, JSON.stringify(readC.body)).toBe(503);
    expect(readC.body).toMatchObject({
      code: 'projection_stalled',
      details: { projection: 'ledger', position: String(poison), eventType: 'WalletAdjusted' },
    });
    expect(Date.now() - started).toBeLessThan(4_000);
    // A read of C before the stall is still answered.
    expect(
      (
        await call('GET', `/v1/wallets/ov1?consistentWith=${String(credited.body.position)}`, {
          token: tok.studentC,
        })
      ).status,
    ).toBe(200);

    const degraded = await readyz();
    expect(degraded).toMatchObject({
      status: 'degraded',
      degraded: [
        { projection: 'ledger', tenantId: C, position: String(poison), eventType: 'WalletAdjusted' },
      ],
    });
    expect(String((degraded.degraded as Array<{ reason: string }>)[0]!.reason)).toMatch(/overflow/);
    expect(await stalledGauge(C)).toMatch(/ 1$/);

    const listed = sink();
    expect(await stalled({ db: s.db.db, store: s.store, out: listed.out })).toBe(0);
    expect(listed.text()).toContain(`ledger tenant=${C} position=${poison}`);
    const verified = sink();
    expect(await verify({ db: s.db.db, store: s.store, out: verified.out })).toBe(1);
    expect(verified.text()).toContain(`projection_stalled ${C}`);

    // Resume before the fix: still stalled, loudly, exit 1.
    const early = sink();
    expect(await resume({ db: s.db.db, store: s.store, out: early.out }, { tenantId: C })).toBe(1);
    expect(early.text()).toContain(`tenant ${C}: still stalled at position ${poison}`);

    // The fix: the row repaired to what the events say. Then resume applies both held-back events.
    await s.db.db.knex.raw(
      `UPDATE ${LIVE_SCHEMA}.balances SET credits_posted = 5000, available = 5000 WHERE tenant_id = ? AND account = ?`,
      [C, 'student:ov1:wallet'],
    );
    const resumed = sink();
    expect(await resume({ db: s.db.db, store: s.store, out: resumed.out }, { tenantId: C })).toBe(0);
    expect(resumed.text()).toContain(`tenant ${C}: resumed, 2 held-back event(s) applied`);
    const readAfter = await call('GET', `/v1/wallets/ov1?consistentWith=${heldBack}`, {
      token: tok.studentC,
    });
    expect(readAfter.status, JSON.stringify(readAfter.body)).toBe(200);
    expect(readAfter.body).toMatchObject({ available: 5_300 });
    // C's events after the resume are applied by the runner as usual.
    const next = await call('POST', '/v1/adjustments', {
      token: tok.financeC,
      key: 'c-after',
      body: {
        account: 'student:ov1:wallet',
        direction: 'credit',
        amount: 700,
        currency: 'usd',
        reason: 'after',
      },
    });
    expect(next.status).toBe(201);
    const readNext = await call('GET', `/v1/wallets/ov1?consistentWith=${String(next.body.position)}`, {
      token: tok.studentC,
    });
    expect(readNext.body).toMatchObject({ available: 6_000 });

    await expect.poll(async () => (await readyz()).status, { timeout: 5_000 }).toBe('ready');
    await expect.poll(() => stalledGauge(C), { timeout: 5_000 }).toBeUndefined();
    const clean = sink();
    expect(await verify({ db: s.db.db, store: s.store, out: clean.out }), clean.text()).toBe(0);
  }, 120_000);

  it('an event no version knows stalls its tenant for good: resume says why and keeps it stalled', async () => {
    const template = (await s.events()).find(
      (e) => e.type === 'WalletAdjusted' && e.metadata.tenantId === C,
    )!;
    const key = 'unknown-type';
    const position = (
      await s.store.append(
        `wallet-${D}.ov9`,
        [
          {
            id: eventId(D, 'Bogus', key, 0),
            type: 'WalletSomethingHappened',
            data: { studentId: 'ov9' },
            metadata: { ...template.metadata, tenantId: D, idempotencyKey: key },
          },
        ],
        { expectedRevision: 'any' },
      )
    ).position;
    const afterIt = await topUpA('a-2', 1_000);
    expect(
      (await call('GET', `/v1/wallets/stu_a?consistentWith=${afterIt}`, { token: tok.studentA })).status,
    ).toBe(200);
    await expect
      .poll(async () => (await readyz()).degraded, { timeout: 5_000 })
      .toMatchObject([{ tenantId: D, position: String(position), eventType: 'WalletSomethingHappened' }]);
    const out = sink();
    expect(await resume({ db: s.db.db, store: s.store, out: out.out }, { all: true })).toBe(1);
    expect(out.text()).toMatch(
      new RegExp(`tenant ${D}: still stalled at position ${position} .*unknown event type`),
    );
  }, 60_000);
});
