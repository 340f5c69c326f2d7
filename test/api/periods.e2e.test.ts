import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextPeriod, periodOf, periodStartMs } from '../../src/domain/effectiveTime.js';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack } from './support/realStack.js';

/**
 * Backdated entries and closed periods over HTTP against the real stack (docs/ledger-flows.md,
 * "Backdated entries and closed periods"): an adjustment effective two months ago moves the balance as
 * of then from the moment it is recorded (knownAt before that still answers the old balance), the
 * statement lists it in effective order; once its month is closed, entries effective in it are refused
 * with 422 period_closed naming the month, and a correction goes into the open period with a reference.
 */
const T = 'periods';
const ACCOUNT = 'platform:revenue:commission';

describe(`backdated entries and closed periods over HTTP (${process.env.DATABASE_URL ? 'Postgres' : 'PGlite'})`, () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  let finance = '';
  let admin = '';
  let last = '0';
  const thisMonth = periodOf(Date.now());
  const twoAgo = periodOf(periodStartMs(thisMonth) - 40 * 86_400_000);
  const oneAgo = nextPeriod(twoAgo);
  const inTwoAgo = new Date(periodStartMs(twoAgo) + 10 * 86_400_000).toISOString();
  const endOfTwoAgo = new Date(periodStartMs(oneAgo) - 1).toISOString();

  beforeAll(async () => {
    s = await startRealStack();
    call = client(s.baseUrl);
    finance = await token(T, 'fin_p', 'finance_admin');
    admin = await token(T, 'adm_p', 'tenant_admin');
  }, 180_000);
  afterAll(() => s?.close());

  const adjust = (key: string, body: Record<string, unknown>) =>
    call('POST', '/v1/adjustments', {
      token: finance,
      key,
      body: { account: ACCOUNT, direction: 'credit', currency: 'usd', reason: 'month end', ...body },
    });
  const balance = async (query: string) => {
    const res = await call('GET', `/v1/accounts/${ACCOUNT}/balance?consistentWith=${last}&${query}`, {
      token: admin,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return Number(res.body.creditsPosted);
  };

  it('books an adjustment effective two months ago; balances answer as of T and as known at K', async () => {
    const now = await adjust('now-1', { amount: 100 });
    expect(now.status, JSON.stringify(now.body)).toBe(201);
    last = String(now.body.position);
    const beforeBackdating = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));

    const backdated = await adjust('back-1', { amount: 300, effectiveAt: inTwoAgo });
    expect(backdated.status, JSON.stringify(backdated.body)).toBe(201);
    last = String(backdated.body.position);

    expect(await balance('')).toBe(400);
    expect(await balance(`asOf=${endOfTwoAgo}`)).toBe(300);
    // As the ledger knew it before the backdated entry was recorded: nothing then.
    expect(await balance(`asOf=${endOfTwoAgo}&knownAt=${beforeBackdating}`)).toBe(0);
    expect(await balance(`knownAt=${beforeBackdating}`)).toBe(100);

    const statement = await call(
      'GET',
      `/v1/accounts/${ACCOUNT}/statement?order=asc&consistentWith=${last}`,
      { token: admin },
    );
    expect(statement.status, JSON.stringify(statement.body)).toBe(200);
    const items = statement.body.items as Array<{ entryId: string; effectiveAt: string; occurredAt: string }>;
    // Effective order: the backdated entry comes first although it was recorded second.
    expect(items.map((i) => i.entryId)).toEqual([backdated.body.entryId, now.body.entryId]);
    expect(items[0]!.effectiveAt).toBe(inTwoAgo);
    expect(items[0]!.occurredAt > items[0]!.effectiveAt).toBe(true);
    const known = await call(
      'GET',
      `/v1/accounts/${ACCOUNT}/statement?order=asc&knownAt=${beforeBackdating}&consistentWith=${last}`,
      { token: admin },
    );
    expect((known.body.items as Array<{ entryId: string }>).map((i) => i.entryId)).toEqual([
      now.body.entryId,
    ]);

    // A wallet is backdated only within the current month.
    const wallet = await call('POST', '/v1/adjustments', {
      token: finance,
      key: 'wallet-back',
      body: {
        account: 'student:stu_p:wallet',
        direction: 'credit',
        amount: 5,
        currency: 'usd',
        reason: 'x',
        effectiveAt: inTwoAgo,
      },
    });
    expect(wallet.status, JSON.stringify(wallet.body)).toBe(400);
    expect(wallet.body).toMatchObject({ code: 'validation_failed' });
    // Never in the future.
    const future = await adjust('future', { amount: 1, effectiveAt: '2999-01-01T00:00:00Z' });
    expect(future.status).toBe(400);
  });

  it('closes periods in order; entries effective in a closed one are refused with 422 naming it', async () => {
    const early = await call('POST', `/v1/periods/${thisMonth}/close`, { token: finance, key: 'close-now' });
    expect(early.status, JSON.stringify(early.body)).toBe(422);
    expect(early.body).toMatchObject({ code: 'invalid_state' });

    const tenantAdmin = await call('POST', `/v1/periods/${twoAgo}/close`, { token: admin, key: 'close-adm' });
    expect(tenantAdmin.status).toBe(403);

    const closed = await call('POST', `/v1/periods/${twoAgo}/close`, { token: finance, key: 'close-1' });
    expect(closed.status, JSON.stringify(closed.body)).toBe(201);
    expect(closed.body).toMatchObject({
      closedThrough: twoAgo,
      period: { period: twoAgo, closedBy: 'fin_p' },
    });
    // The same key again: the same answer, nothing new.
    const replay = await call('POST', `/v1/periods/${twoAgo}/close`, { token: finance, key: 'close-1' });
    expect(replay.status).toBe(201);
    expect(replay.body.position).toBe(closed.body.position);
    last = String(closed.body.position);

    const refused = await adjust('back-2', { amount: 7, effectiveAt: inTwoAgo });
    expect(refused.status, JSON.stringify(refused.body)).toBe(422);
    expect(refused.body).toMatchObject({
      code: 'period_closed',
      details: { period: twoAgo, closedThrough: twoAgo },
    });
    expect(String(refused.body.detail ?? refused.body.message ?? '')).toContain(twoAgo);
    expect(await balance(`asOf=${endOfTwoAgo}`)).toBe(300);

    // The correction goes into the open period, naming the entry it corrects.
    const statement = await call(
      'GET',
      `/v1/accounts/${ACCOUNT}/statement?order=asc&consistentWith=${last}`,
      {
        token: admin,
      },
    );
    const corrected = (statement.body.items as Array<{ entryId: string }>)[0]!.entryId;
    const correction = await call('POST', '/v1/adjustments', {
      token: finance,
      key: 'fix-1',
      body: {
        account: ACCOUNT,
        direction: 'debit',
        amount: 7,
        currency: 'usd',
        reason: 'correction of a closed month',
        corrects: corrected,
      },
    });
    expect(correction.status, JSON.stringify(correction.body)).toBe(201);
    last = String(correction.body.position);
    const events = await call('GET', `/v1/entries/${correction.body.entryId}?consistentWith=${last}`, {
      token: admin,
    });
    expect(events.status, JSON.stringify(events.body)).toBe(200);

    const outOfOrder = await call('POST', `/v1/periods/${nextPeriod(oneAgo)}/close`, {
      token: finance,
      key: 'c3',
    });
    expect(outOfOrder.status).toBe(422);
    const again = await call('POST', `/v1/periods/${twoAgo}/close`, { token: finance, key: 'close-2' });
    expect(again.status).toBe(422);
    expect(again.body).toMatchObject({ code: 'invalid_state' });

    const list = await call('GET', '/v1/periods', { token: admin });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({
      closedThrough: twoAgo,
      items: [{ period: twoAgo, closedBy: 'fin_p' }],
    });
    const bad = await call('POST', '/v1/periods/2026-13/close', { token: finance, key: 'bad' });
    expect(bad.status).toBe(400);
  });
});
