import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import type { ProcessManagerHandle } from '../../src/commands/processManagerRunner.js';
import { bookingInvoiceId } from '../../src/documents/rules.js';
import { createDocumentsFeature } from '../../src/documentsFeature.js';
import { token } from '../api/support/harness.js';
import { client, type RealStack, startRealStack } from '../api/support/realStack.js';
import { pdfText } from '../documents/support.js';
import { launchBrowser, openSession, pageOverflowPx, screenshots, signInUrl } from './support/browser.js';

/**
 * The console's documents page in a real browser, over documents the issuer made on a real stack:
 * filter by type, series, owner, number and issue day, open a document, follow a credit note to its
 * invoice, and download the PDF (its text checked with pdftotext).
 */
const T = 'docpage';
const YEAR = new Date().getUTCFullYear();

interface Listed {
  documentId: string;
  kind: string;
  number: string;
  owner: { kind: string; id: string };
  total: number;
}

describe('console documents page', () => {
  let s: RealStack;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let closeSession: () => Promise<void>;
  let issuer: () => ProcessManagerHandle | undefined;
  let all: Listed[];

  beforeAll(async () => {
    [s, browser] = await Promise.all([
      startRealStack({
        features: ({ db, store, service }) => {
          const feature = createDocumentsFeature({
            db: db.db,
            store,
            handler: service.handler,
            checkpoints: new MemoryCheckpointStore(),
          });
          feature.start();
          issuer = feature.issuer;
          return { routes: feature.routes, close: () => feature.stop() };
        },
      }),
      launchBrowser(),
    ]);
    await s.service.initiateTopUp(s.ctx(T, 'tu'), {
      topUpId: 'tu_p',
      studentId: 'stu_p',
      amount: { amount: 20_000, currency: 'usd' },
    });
    await s.service.succeedTopUp(s.ctx(T, 'tu-ok'), {
      topUpId: 'tu_p',
      paymentIntentId: 'pi_p',
      amountReceived: 20_000,
      currency: 'usd',
    });
    for (const [bookingId, tutorId, amount] of [
      ['bk_p1', 'tut_a', 3_000],
      ['bk_p2', 'tut_b', 4_500],
    ] as const) {
      await s.service.placeBooking(s.ctx(T, `place-${bookingId}`), {
        bookingId,
        studentId: 'stu_p',
        tutorId,
        price: { amount, currency: 'usd' },
        scheduledAt: new Date(Date.now() + 5 * 86_400_000).toISOString(),
      });
      await s.service.completeBooking(s.ctx(T, `done-${bookingId}`), { bookingId });
    }
    await s.service.refundBooking(s.ctx(T, 'refund', 'finance_admin'), {
      bookingId: 'bk_p1',
      amount: 1_000,
      reason: 'late start',
    });
    for (let i = 0; i < 20; i++) {
      const head = await s.store.headPosition();
      await issuer()!.waitForPosition(head, 20_000);
      if ((await s.store.headPosition()) === head) break;
    }
    const finance = await token(T, 'fin_p', 'finance_admin');
    const listed = await client(s.baseUrl)('GET', '/v1/documents?limit=100', { token: finance });
    all = listed.body.items as Listed[];
    // Receipts: top-up and two sessions; refund receipt; two invoices; one credit note.
    expect(all).toHaveLength(7);
    const session = await openSession(browser);
    page = session.page;
    problems = session.problems;
    closeSession = () => session.context.close();
    await page.goto(signInUrl(s.baseUrl, finance, '/documents'));
    await page.getByRole('heading', { name: 'Documents' }).waitFor();
  }, 180_000);
  afterAll(async () => {
    await closeSession?.();
    await browser?.close();
    await s?.close();
  });

  const table = () => page.getByRole('table', { name: /Documents/ });
  const numbersShown = async () => {
    await table().locator('tbody tr').first().waitFor();
    return (await table().locator('tbody tr td:first-child').allInnerTexts()).map((t) => t.trim());
  };
  const find = async (fill: Record<string, string>, select: Record<string, string> = {}) => {
    for (const [label, value] of Object.entries(fill))
      await page.getByLabel(label, { exact: true }).fill(value);
    for (const [label, value] of Object.entries(select)) {
      await page.getByLabel(label, { exact: true }).selectOption(value);
    }
    await page.getByRole('button', { name: 'Find' }).click();
    // The list answers asynchronously: the assertions poll until it shows the filtered rows.
  };

  it('lists every document newest first, with totals, and filters by type, series, owner and number', async () => {
    await expect.poll(numbersShown, { timeout: 10_000 }).toEqual(all.map((d) => d.number));
    await screenshots(page, 'documents');
    expect(await pageOverflowPx(page)).toBe(0);

    await find({}, { Type: 'invoice' });
    await expect
      .poll(numbersShown, { timeout: 10_000 })
      .toEqual([`INV-${YEAR}-000002`, `INV-${YEAR}-000001`]);
    expect(page.url()).toContain('kind=invoice');

    await find({ 'Owner id': 'tut_a' }, { Type: '', 'Owner is a': 'tutor' });
    const tutorA = all.filter((d) => d.owner.id === 'tut_a').map((d) => d.number);
    await expect.poll(numbersShown, { timeout: 10_000 }).toEqual(tutorA);
    expect(tutorA.some((n) => n.startsWith('CN-'))).toBe(true);

    await find({ 'Owner id': '', Series: `receipt-${YEAR}` });
    await expect
      .poll(numbersShown, { timeout: 10_000 })
      .toEqual([`RCT-${YEAR}-000003`, `RCT-${YEAR}-000002`, `RCT-${YEAR}-000001`]);

    // Stripe-like: type the start of a number.
    await find({ Series: '', Number: `cn-${YEAR}` });
    await expect.poll(numbersShown, { timeout: 10_000 }).toEqual([`CN-${YEAR}-000001`]);

    // A filtered list is a link: reloading keeps it.
    await page.reload();
    await expect.poll(numbersShown, { timeout: 10_000 }).toEqual([`CN-${YEAR}-000001`]);

    // What they are about: a booking's receipt and invoice.
    await find({ Number: '', About: 'booking:bk_p2' });
    await expect
      .poll(numbersShown, { timeout: 10_000 })
      .toEqual([`INV-${YEAR}-000002`, `RCT-${YEAR}-000003`]);
    await find({ About: '' });
  });

  it('filters by issue day (UTC, the end day included): a day without documents shows none', async () => {
    const today = new Date().toISOString().slice(0, 10);
    await find({ Number: '', 'Issued from (UTC)': today, 'Issued until (UTC, included)': today });
    // The same rows as unfiltered: make sure the filter was applied, not the previous list read.
    await page.waitForURL(new RegExp(`from=${today}&to=${today}`));
    await page.getByRole('status').filter({ hasText: 'Loading' }).waitFor({ state: 'detached' });
    await expect.poll(numbersShown, { timeout: 10_000 }).toHaveLength(7);
    await find({ 'Issued from (UTC)': '2020-01-01', 'Issued until (UTC, included)': '2020-01-31' });
    await table().getByText('No documents match.').waitFor();
  });

  it('opens a credit note, follows it to its invoice, and downloads the invoice PDF', async () => {
    await find({ 'Issued from (UTC)': '', 'Issued until (UTC, included)': '' }, { Type: 'credit_note' });
    await table()
      .getByRole('link', { name: `CN-${YEAR}-000001` })
      .click();
    await page.getByRole('heading', { name: `Credit note CN-${YEAR}-000001` }).waitFor();
    await screenshots(page, 'document');
    expect(await pageOverflowPx(page)).toBe(0);
    const invoiceA = all.find((d) => d.documentId === bookingInvoiceId(T, 'bk_p1'))!;
    await page.getByRole('link', { name: invoiceA.number }).click();
    await page.getByRole('heading', { name: `Invoice ${invoiceA.number}` }).waitFor();
    // 20% of 30.00.
    expect((await page.getByTestId('document-total').innerText()).replace(/\s/g, ' ')).toBe('USD 6.00');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: `Download PDF of ${invoiceA.number}` }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`${invoiceA.number}.pdf`);
    const pdf = readFileSync((await download.path())!);
    const text = pdfText(pdf);
    expect(text).toContain(invoiceA.number);
    expect(text).toContain('Tutor tut_a');
    expect(text).toContain('Platform commission on booking bk_p1');
    expect(text).toMatch(/Total \(USD\)\s+\$6\.00/);

    // "Open PDF" fetches the same bytes with the token and opens them in a new tab.
    const [popup] = await Promise.all([
      page.context().waitForEvent('page'),
      page.getByRole('button', { name: `Open PDF of ${invoiceA.number}` }).click(),
    ]);
    expect(popup.url()).toMatch(/^blob:/);
    await popup.close();
    expect(problems).toEqual([]);
  });
});
