import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeEventOf } from '../../src/domain/events.js';
import { token } from '../api/support/harness.js';
import {
  allEvents,
  type LedgerHarness,
  ONBOARDING_URLS,
  startLedgerHarness,
  TENANT,
} from './ledgerHarness.js';

/**
 * Tutor payout onboarding over HTTP with the fake Stripe behaving as Stripe does (accounts start
 * restricted; docs/ledger-flows.md "Tutor payout onboarding"): a payout before onboarding is refused
 * with what is missing and appends nothing; the tutor's Express account is created once and reused
 * after Stripe forgot the creation's idempotency key; the onboarding link completes the account, and
 * account.updated at the Connect endpoint records it; then the payout is paid.
 */
describe('tutor payout onboarding (HTTP, fake Stripe with restricted accounts)', () => {
  let h: LedgerHarness;
  let base: string;
  beforeEach(async () => {
    h = await startLedgerHarness({ realistic: true });
    base = h.webhookUrl.replace('/v1/webhooks/stripe', '');
  });
  afterEach(async () => {
    await h.close();
  });

  async function call(
    method: 'GET' | 'POST',
    path: string,
    who: { sub: string; role: 'tutor' | 'finance_admin' | 'service' | 'student' },
    body?: unknown,
    idempotencyKey?: string,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${base}/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await token(TENANT, who.sub, who.role)}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  const tutor = { sub: 'u1', role: 'tutor' } as const;
  const payout = (key: string) =>
    call('POST', '/tutors/u1/payouts', tutor, { amount: 3_000, currency: 'usd' }, key);

  it('refuses payouts until onboarding is done, creates the account once, then pays out', async () => {
    await h.service.adjust(h.ctx('earn', 'finance_admin'), {
      account: 'tutor:u1:earnings:available',
      direction: 'credit',
      amount: { amount: 5_000, currency: 'usd' },
      reason: 'test earnings',
    });
    expect((await call('GET', '/tutors/u1/payout-account', tutor)).status).toBe(404);

    // No account yet: refused, naming what is missing, nothing appended.
    let head = await h.store.headPosition();
    expect(await payout('p-before')).toMatchObject({
      status: 422,
      json: { code: 'payout_account_not_ready', details: { missing: ['payout_account'] } },
    });
    expect(await h.store.headPosition()).toBe(head);

    // The account is created (restricted, as on Stripe) with an onboarding link.
    const opened = await call('POST', '/tutors/u1/payout-account', tutor);
    expect(opened.status).toBe(200);
    const account = opened.json.account as Record<string, unknown>;
    const accountId = account.stripeAccountId as string;
    expect(accountId).toMatch(/^acct_/);
    expect(account).toMatchObject({ tutorId: 'u1', chargesEnabled: false, payoutsEnabled: false });
    expect((account.requirements as { currentlyDue: string[] }).currentlyDue).toContain('external_account');
    expect(account.missing).toEqual(expect.arrayContaining(['external_account']));
    const onboarding = opened.json.onboarding as { url: string; expiresAt: string };
    expect(onboarding.url).toMatch(/\/_fake\/onboarding\//);
    expect(Date.parse(onboarding.expiresAt)).toBeGreaterThan(Date.now());
    expect(await call('GET', '/tutors/u1/payout-account', tutor)).toMatchObject({
      status: 200,
      json: { stripeAccountId: accountId, payoutsEnabled: false },
    });

    // Still restricted: refused with Stripe's requirements, nothing appended.
    head = await h.store.headPosition();
    const refused = await payout('p-restricted');
    expect(refused).toMatchObject({ status: 422, json: { code: 'payout_account_not_ready' } });
    expect((refused.json.details as { missing: string[] }).missing).toContain('external_account');
    expect(await h.store.headPosition()).toBe(head);

    // Asked again a day later (Stripe has forgotten the creation's idempotency key): the same account,
    // and a fresh link (the first may have expired).
    h.fake.state.advanceTime(25 * 3600);
    const again = await call('POST', '/tutors/u1/payout-account', tutor);
    expect((again.json.account as { stripeAccountId: string }).stripeAccountId).toBe(accountId);
    expect((again.json.onboarding as { url: string }).url).not.toBe(onboarding.url);
    expect(h.fake.state.accounts.size).toBe(1);

    // The tutor's browser completes Stripe's hosted onboarding and is sent back to the tenant's URL.
    const visit = await fetch((again.json.onboarding as { url: string }).url, { redirect: 'manual' });
    expect(visit.status).toBe(302);
    expect(visit.headers.get('location')).toBe(ONBOARDING_URLS.returnUrl);
    await h.fake.flushWebhooks();
    const updates = h.fake.webhooks.deliveries.filter((d) => d.type === 'account.updated');
    expect(updates.length).toBeGreaterThan(0);
    // Sent to the Connect endpoint (the only one connected accounts' events go to) and acknowledged.
    expect(updates.every((d) => d.status === 200)).toBe(true);
    expect(await call('GET', '/tutors/u1/payout-account', tutor)).toMatchObject({
      status: 200,
      json: {
        stripeAccountId: accountId,
        chargesEnabled: true,
        payoutsEnabled: true,
        detailsSubmitted: true,
        requirements: { currentlyDue: [], pastDue: [], disabledReason: null },
        missing: [],
      },
    });
    // Onboarded: no link to follow any more.
    expect((await call('POST', '/tutors/u1/payout-account', tutor)).json.onboarding).toBeNull();

    // A redelivery of the same account.updated changes nothing.
    head = await h.store.headPosition();
    const firstUpdate = updates[0]!;
    h.fake.webhooks.enqueue(h.fake.state.retrieveEvent(firstUpdate.eventId));
    await h.fake.flushWebhooks();
    expect(await h.store.headPosition()).toBe(head);

    // Now the payout goes through: transfer and payout at Stripe, paid by the webhook. The platform's
    // funds come from a top-up paid with Stripe's test card whose funds are available at once (pending
    // funds are their own flow).
    await h.service.initiateTopUp(h.ctx('fund', 'student'), {
      topUpId: 'fund',
      studentId: 's1',
      amount: { amount: 5_000, currency: 'usd' },
      paymentMethod: 'pm_card_bypassPending',
    });
    const created = await payout('p-ok');
    expect(created).toMatchObject({ status: 201, json: { status: 'requested' } });
    const requested = (await allEvents(h.store)).filter((e) => e.type === 'PayoutRequested');
    for (const e of requested) await h.service.submitPayout(decodeEventOf(e, ['PayoutRequested']));
    const submitted = (await allEvents(h.store)).find((e) => e.type === 'PayoutSubmitted');
    expect(submitted?.data.stripePayoutId).toMatch(/^po_/);
    const transfer = await h.gateway.stripe.transfers.retrieve(submitted?.data.stripeTransferId as string);
    expect(transfer.destination).toBe(accountId);
    h.fake.state.settlePayout(submitted?.data.stripePayoutId as string, 'paid');
    await h.fake.flushWebhooks();
    const payoutId = created.json.payoutId as string;
    expect(
      (await allEvents(h.store)).some((e) => e.type === 'PayoutPaid' && e.data.payoutId === payoutId),
    ).toBe(true);
    expect(h.fake.state.accounts.size).toBe(1);
  });

  it('account.updated keeps the state current: payouts disabled by Stripe are refused again', async () => {
    await h.service.adjust(h.ctx('earn', 'finance_admin'), {
      account: 'tutor:u1:earnings:available',
      direction: 'credit',
      amount: { amount: 5_000, currency: 'usd' },
      reason: 'test earnings',
    });
    const opened = await call('POST', '/tutors/u1/payout-account', tutor);
    const accountId = (opened.json.account as { stripeAccountId: string }).stripeAccountId;
    h.fake.state.setAccountEnabled(accountId, true);
    await h.fake.flushWebhooks();
    expect((await call('GET', '/tutors/u1/payout-account', tutor)).json.payoutsEnabled).toBe(true);
    // Stripe asks for more (a requirement past due) and disables payouts.
    h.fake.state.setAccountEnabled(accountId, false);
    await h.fake.flushWebhooks();
    const disabled = await call('GET', '/tutors/u1/payout-account', { sub: 'fa', role: 'finance_admin' });
    expect(disabled.json).toMatchObject({
      payoutsEnabled: false,
      requirements: { disabledReason: 'requirements.past_due' },
    });
    const head = await h.store.headPosition();
    const refused = await payout('p-disabled');
    expect(refused).toMatchObject({ status: 422, json: { code: 'payout_account_not_ready' } });
    expect((refused.json.details as { missing: string[] }).missing).toContain('external_account');
    expect(await h.store.headPosition()).toBe(head);
  });

  it("a payout right after onboarding, before account.updated arrived, asks Stripe for the account's state", async () => {
    await h.service.adjust(h.ctx('earn', 'finance_admin'), {
      account: 'tutor:u1:earnings:available',
      direction: 'credit',
      amount: { amount: 5_000, currency: 'usd' },
      reason: 'test earnings',
    });
    const opened = await call('POST', '/tutors/u1/payout-account', tutor);
    const accountId = (opened.json.account as { stripeAccountId: string }).stripeAccountId;
    // The Connect endpoint is down: account.updated does not arrive.
    h.fake.webhooks.setConnectTarget(undefined);
    h.fake.state.setAccountEnabled(accountId, true);
    expect(await payout('p-early')).toMatchObject({ status: 201, json: { status: 'requested' } });
  });

  it('account.updated of an account no tutor recorded is not booked', async () => {
    const foreign = await h.gateway.stripe.accounts.create({
      type: 'express',
      capabilities: { transfers: { requested: true } },
    });
    h.fake.state.setAccountEnabled(foreign.id, true);
    await h.fake.flushWebhooks();
    // Acknowledged (Stripe stops sending it) and nothing recorded.
    const delivery = h.fake.webhooks.deliveries.find((d) => d.type === 'account.updated');
    expect(delivery?.status).toBe(200);
    expect((await allEvents(h.store)).filter((e) => e.type.startsWith('TutorPayoutAccount'))).toEqual([]);
  });

  it('only the tutor (or a service) opens the account; other roles and tutors are refused', async () => {
    expect((await call('POST', '/tutors/u1/payout-account', { sub: 'u2', role: 'tutor' })).status).toBe(403);
    expect((await call('POST', '/tutors/u1/payout-account', { sub: 's1', role: 'student' })).status).toBe(
      403,
    );
    expect((await call('GET', '/tutors/u1/payout-account', { sub: 'u2', role: 'tutor' })).status).toBe(403);
    expect(h.fake.state.accounts.size).toBe(0);
  });
});
