import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { token } from '../api/support/harness.js';
import { client, type RealStack, startRealStack } from '../api/support/realStack.js';
import { launchBrowser, openSession, pageOverflowPx, screenshots, signInUrl } from './support/browser.js';
import { type Seeded, seedFlows } from './support/seed.js';

/** A four-eyes adjustment in the browser: one finance admin proposes, a second approves in another session. */
const T = 'eyesui';

describe('finance console: four-eyes adjustment with two admins', () => {
  let stack: RealStack;
  let browser: Browser;
  let seed: Seeded;
  beforeAll(async () => {
    [stack, browser] = await Promise.all([startRealStack(), launchBrowser()]);
    seed = await seedFlows(stack, T);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('proposed by one, refused to its proposer, approved by the other; the balance moves once', async () => {
    const call = client(stack.baseUrl);
    const account = `student:${seed.studentId}:wallet`;
    const balance = async () => {
      const head = await stack.store.headPosition();
      return Number(
        (await call('GET', `/v1/accounts/${account}/balance?consistentWith=${head}`, { token: seed.finance }))
          .body.available,
      );
    };
    const before = await balance();

    const a = await openSession(browser);
    await a.page.goto(signInUrl(stack.baseUrl, seed.finance, '/adjustments'));
    await a.page.getByRole('heading', { name: 'Adjustments' }).waitFor();
    await a.page.getByLabel('Account').fill(account);
    await a.page.getByLabel('Side').selectOption('credit');
    await a.page.getByLabel('Amount').fill('15,000.00');
    await a.page.getByLabel('Currency').fill('usd');
    await a.page.getByLabel('Reason (kept in the audit trail)').fill('goodwill after outage, ticket 4711');
    await a.page.getByRole('button', { name: 'Propose' }).click();
    await a.page.getByText('Proposed: it waits for a second finance admin.').waitFor();
    const rows = a.page.getByRole('region', { name: 'Adjustment proposals' }).locator('tbody tr');
    await rows.first().getByText('proposed', { exact: true }).waitFor();
    // The proposer sees no Approve button for their own proposal.
    expect(await rows.first().getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await rows.first().getByText('Another finance admin must approve').waitFor();
    await screenshots(a.page, 'adjustments-proposed');
    expect(await pageOverflowPx(a.page)).toBe(0);
    expect(await balance()).toBe(before);

    const finB = await token(T, 'fin_b', 'finance_admin');
    const b = await openSession(browser);
    await b.page.goto(signInUrl(stack.baseUrl, finB, '/adjustments'));
    const rowB = b.page.getByRole('region', { name: 'Adjustment proposals' }).locator('tbody tr').first();
    await rowB.getByRole('button', { name: 'Approve' }).click();
    await b.page.getByText('Approved: credit').waitFor();
    await rowB.getByText('approved by fin_b').waitFor();
    await screenshots(b.page, 'adjustments-approved');
    expect(await balance()).toBe(before + 1_500_000);

    // The audit trail from the console: proposal, approval, and the adjustment it caused.
    await b.page.getByRole('link', { name: 'audit trail' }).first().click();
    const timeline = b.page.getByRole('list', { name: 'Events in order' });
    for (const type of ['AdjustmentProposed', 'AdjustmentApproved', 'WalletAdjusted']) {
      await timeline.getByText(type, { exact: true }).waitFor();
    }
    await screenshots(b.page, 'adjustment-story');
    expect([...a.problems, ...b.problems]).toEqual([]);
    await a.context.close();
    await b.context.close();
  });
});
