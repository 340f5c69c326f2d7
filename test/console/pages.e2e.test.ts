import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, type RealStack, startRealStack } from '../api/support/realStack.js';
import {
  inPage,
  launchBrowser,
  openSession,
  pageOverflowPx,
  screenshots,
  signInUrl,
} from './support/browser.js';
import { type Seeded, seedFlows } from './support/seed.js';

/**
 * The console's money pages in a real browser over flows seeded through the API: search a booking and
 * read its story, open an account (balance, chart, as-of, statement), the causes of an entry, the
 * finance views and analytics, and a CSV export compared with the API.
 */
const T = 'pages';

describe('finance console pages', () => {
  let stack: RealStack;
  let browser: Browser;
  let seed: Seeded;
  let page: Page;
  let problems: string[];
  let closeSession: () => Promise<void>;
  let api: (path: string) => Promise<Record<string, unknown>>;

  beforeAll(async () => {
    [stack, browser] = await Promise.all([startRealStack(), launchBrowser()]);
    seed = await seedFlows(stack, T);
    const call = client(stack.baseUrl);
    api = async (path) => (await call('GET', path, { token: seed.finance })).body;
    const session = await openSession(browser);
    page = session.page;
    problems = session.problems;
    closeSession = () => session.context.close();
    await page.goto(signInUrl(stack.baseUrl, seed.finance, '/search'));
    await page.getByRole('heading', { name: 'Search' }).waitFor();
  }, 180_000);
  afterAll(async () => {
    await closeSession?.();
    await browser?.close();
    await stack?.close();
  });

  const shoot = async (name: string) => {
    await screenshots(page, name);
    expect(await pageOverflowPx(page), `${name} scrolls sideways`).toBe(0);
  };

  it('search key=value finds the entries whose metadata has the pair', async () => {
    const box = page.getByRole('searchbox');
    await box.fill('ticket=T-1');
    await box.press('Enter');
    const results = page.getByRole('list', { name: 'Search results' });
    await results.getByText(seed.adjustmentEntryId, { exact: true }).waitFor();
    expect(await results.locator('> li').count()).toBe(1);
  });

  it('search a booking and read its story across streams', async () => {
    const box = page.getByRole('searchbox');
    await box.fill(seed.bookingId);
    await box.press('Enter');
    const results = page.getByRole('list', { name: 'Search results' });
    await results.getByText(seed.bookingId, { exact: true }).first().waitFor();
    await shoot('search');
    await results.getByRole('link', { name: 'money story' }).first().click();
    await page.getByRole('heading', { name: `Booking ${seed.bookingId}` }).waitFor();
    const timeline = page.getByRole('list', { name: 'Events in order' });
    for (const type of [
      'WalletHoldPlaced',
      'BookingPlaced',
      'WalletHoldCaptured',
      'TutorEarningsRecorded',
      'WalletRefunded',
    ]) {
      await timeline.getByText(type, { exact: true }).first().waitFor();
    }
    const shown = await timeline.locator('> li').count();
    const story = await api(`/v1/stories/booking/${seed.bookingId}`);
    expect(shown).toBe((story.events as unknown[]).length);
    await page.getByText('completed', { exact: true }).first().waitFor();
    await shoot('story');
  });

  it('an account: balance now, the chart drawn, the as-of balance as the API gives it, the statement', async () => {
    const account = `student:${seed.studentId}:wallet`;
    await page.goto(`${stack.baseUrl}/console#/accounts/${encodeURIComponent(account)}`);
    await page.getByRole('heading', { name: account }).waitFor();
    const now = (await api(`/v1/accounts/${account}/balance`)) as { available: number };
    await page.locator(`.card .money[data-minor="${now.available}"]`).first().waitFor();
    // The chart: uPlot drew on a canvas with the series' points.
    const chart = page.getByRole('img', { name: /Balance of student/ });
    await chart.locator('canvas').waitFor();
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThan(1);
    const drawn = await inPage<number>(
      page,
      `(() => { const c = document.querySelector('.chart canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
         let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()`,
    );
    expect(drawn).toBeGreaterThan(500);
    // The statement: a capture is one line.
    const rows = page.getByRole('region', { name: 'Statement lines' }).locator('tbody tr');
    await rows.first().waitFor();
    expect(await rows.filter({ hasText: 'WalletHoldCaptured' }).count()).toBe(1);
    await shoot('account');

    // As of the moment just after the capture.
    const statement = (await api(`/v1/accounts/${account}/statement?order=asc`)) as {
      items: Array<{ eventType: string; occurredAt: string }>;
    };
    const capture = statement.items.find((i) => i.eventType === 'WalletHoldCaptured')!;
    const at = new Date(Math.ceil(Date.parse(capture.occurredAt) / 1000) * 1000).toISOString();
    await page.getByLabel('Date and time (UTC)').fill(at.slice(0, 19));
    await page.getByRole('button', { name: 'Show balance' }).click();
    const asOf = page.getByTestId('as-of-balance');
    await asOf.waitFor();
    const expected = (await api(`/v1/accounts/${account}/balance?asOf=${encodeURIComponent(at)}`)) as {
      available: number;
    };
    await asOf.locator(`.money[data-minor="${expected.available}"]`).first().waitFor();
    await shoot('account-as-of');

    // From a statement line to its entry and its causes.
    await rows.filter({ hasText: 'WalletHoldCaptured' }).getByRole('link').click();
    await page.getByRole('heading', { name: /Journal entry/ }).waitFor();
    await page.getByText('Chain of causes').waitFor();
    await page.getByText('BookingCompleted', { exact: true }).first().waitFor();
    await page.getByText('Started by an API request').waitFor();
    await shoot('entry');
  });

  it('exports the statement as CSV with the lines the API returns', async () => {
    const account = `student:${seed.studentId}:wallet`;
    await page.goto(`${stack.baseUrl}/console#/accounts/${encodeURIComponent(account)}`);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export statement (CSV)' }).click(),
    ]);
    const file = await download.path();
    const text = readFileSync(file!, 'utf8');
    // The export ends with the tenant's chain head as a comment line (docs/architecture.md).
    expect(text).toMatch(/\n# ledger chain head/);
    const rows = parse(text, { columns: true, comment: '#' }) as Array<Record<string, string>>;
    const fromApi = (await api(`/v1/accounts/${account}/statement?order=asc&limit=200`)) as {
      items: Array<{ entryId: string; balanceAfter: { available: number } }>;
    };
    expect(rows.map((r) => [r.entry_id, Number(r.available_after_minor)])).toEqual(
      fromApi.items.map((i) => [i.entryId, i.balanceAfter.available]),
    );
    await page.getByText(`${rows.length} rows exported.`).waitFor();
  });

  it('finance views: trial balance with drill-down, accounts, analytics, exports', async () => {
    await page.goto(`${stack.baseUrl}/console#/finance`);
    await page.getByText('balanced', { exact: true }).waitFor();
    await page.getByText('all clear').waitFor();
    await shoot('finance');
    await page.getByRole('link', { name: 'student:*:wallet' }).click();
    await page.getByRole('heading', { name: 'Accounts' }).waitFor();
    await page.getByRole('link', { name: `student:${seed.studentId}:wallet` }).waitFor();
    await shoot('accounts');

    await page.goto(`${stack.baseUrl}/console#/analytics`);
    const table = page.getByRole('region', { name: 'Metrics per period' });
    await table.waitFor();
    const report = (await api(
      `/v1/analytics?from=${new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10)}&to=${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}&currency=usd`,
    )) as { periods: Array<{ metrics: Record<string, { amount: number }> }> };
    const gbv = report.periods.reduce((s, p) => s + (p.metrics.gross_booking_value?.amount ?? 0), 0);
    expect(gbv).toBe(3_000);
    await table.locator(`.money[data-minor="${gbv}"]`).first().waitFor();
    await page.locator('.chart canvas').waitFor();
    await shoot('analytics');

    await page.goto(`${stack.baseUrl}/console#/exports`);
    await page.getByRole('button', { name: 'Export journal (CSV)' }).waitFor();
    await shoot('exports');
    expect(problems).toEqual([]);
  });
});
