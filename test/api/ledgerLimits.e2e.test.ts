import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_VOLUME_LIMIT, MAX_POSTING_AMOUNT } from '../../src/domain/ledgerLimits.js';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack } from './support/realStack.js';

/**
 * Issue 20, item 1: a finance admin's adjustment of 9007199254740991 was 201, the same request again a
 * 500 whose event stood, and the projection then retried that event forever, freezing every tenant's
 * read models. Now both are refused before anything is appended, with a code naming the account and
 * the limit, and the read models keep moving.
 */
const C = 'limc';
const A = 'lima';

describe('ledger limits over HTTP (issue 20)', () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok = {} as Record<'finance' | 'admin' | 'student' | 'financeA' | 'studentA', string>;

  beforeAll(async () => {
    s = await startRealStack();
    call = client(s.baseUrl);
    tok.finance = await token(C, 'fin_c', 'finance_admin');
    tok.admin = await token(C, 'adm_c', 'tenant_admin');
    tok.student = await token(C, 'ov1', 'student');
    tok.financeA = await token(A, 'fin_a', 'finance_admin');
    tok.studentA = await token(A, 'stu_a', 'student');
    // The tenant let one finance admin adjust any amount (no four-eyes threshold).
    const settings = await call('PUT', '/v1/tenant/settings', {
      token: tok.admin,
      key: 'no-threshold',
      body: { adjustmentApprovalThreshold: Number.MAX_SAFE_INTEGER },
    });
    expect(settings.status, JSON.stringify(settings.body)).toBe(200);
  }, 180_000);
  afterAll(() => s.close());

  async function refusedTwice(account: string): Promise<void> {
    for (const key of [`${account}-1`, `${account}-2`]) {
      const head = await s.store.headPosition();
      const res = await call('POST', '/v1/adjustments', {
        token: tok.finance,
        key,
        body: { account, direction: 'credit', amount: 9007199254740991, currency: 'usd', reason: 'x' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body).toMatchObject({
        code: 'account_limit_exceeded',
        details: { account, limit: MAX_POSTING_AMOUNT, amount: 9007199254740991 },
      });
      expect(await s.store.headPosition()).toBe(head);
    }
  }

  it("the issue's exact wallet adjustment, twice: 422 account_limit_exceeded both times, nothing appended", async () => {
    await refusedTwice('student:ov1:wallet');
  });

  it('the same amount credited to platform:revenue:subscriptions, twice: refused the same way', async () => {
    await refusedTwice('platform:revenue:subscriptions');
  });

  it("within the posting limit, an account's volume stops at the account limit, and the read models keep moving", async () => {
    const account = 'platform:revenue:subscriptions';
    const fits = Math.floor(ACCOUNT_VOLUME_LIMIT / MAX_POSTING_AMOUNT);
    let position = '';
    for (let i = 0; i < fits; i++) {
      const res = await call('POST', '/v1/adjustments', {
        token: tok.finance,
        key: `fill-${i}`,
        body: { account, direction: 'credit', amount: MAX_POSTING_AMOUNT, currency: 'usd', reason: 'fill' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      position = String(res.body.position);
      // Read our own write, so the guard's view of the read model is current at every step.
      const read = await call('GET', `/v1/accounts/${account}/balance?consistentWith=${position}`, {
        token: tok.finance,
      });
      expect(read.status, JSON.stringify(read.body)).toBe(200);
    }
    const head = await s.store.headPosition();
    const over = await call('POST', '/v1/adjustments', {
      token: tok.finance,
      key: 'fill-over',
      body: { account, direction: 'credit', amount: MAX_POSTING_AMOUNT, currency: 'usd', reason: 'fill' },
    });
    expect(over.status, JSON.stringify(over.body)).toBe(422);
    expect(over.body).toMatchObject({
      code: 'account_limit_exceeded',
      details: { account, currency: 'usd', limit: ACCOUNT_VOLUME_LIMIT },
    });
    expect(await s.store.headPosition()).toBe(head);

    // Another tenant's write is readable at once: nothing stalls the projection.
    const credited = await call('POST', '/v1/adjustments', {
      token: tok.financeA,
      key: 'a-credit',
      body: {
        account: 'student:stu_a:wallet',
        direction: 'credit',
        amount: 5_000,
        currency: 'usd',
        reason: 'x',
      },
    });
    expect(credited.status, JSON.stringify(credited.body)).toBe(201);
    const wallet = await call('GET', `/v1/wallets/stu_a?consistentWith=${String(credited.body.position)}`, {
      token: tok.studentA,
    });
    expect(wallet.status, JSON.stringify(wallet.body)).toBe(200);
  }, 300_000);
});
