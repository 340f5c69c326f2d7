import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import type { ProcessManagerHandle } from '../../src/commands/processManagerRunner.js';
import { bookingInvoiceId, documentId } from '../../src/documents/rules.js';
import { createDocumentsFeature } from '../../src/documentsFeature.js';
import { token } from '../api/support/harness.js';
import { client, type RealStack, startRealStack } from '../api/support/realStack.js';
import { pdfText } from './support.js';

/**
 * Documents over real HTTP: the issuer runs in the background of a real stack (Postgres/PGlite event
 * store, the real command layer); students and tutors list and download their own documents, finance
 * admins anyone's, nobody else any.
 */
const T = 'acme';
const NOW = new Date();
const NEXT_YEAR = new Date(Date.UTC(NOW.getUTCFullYear() + 1, 0, 2));
const MONTH = NOW.toISOString().slice(0, 7);
const YEAR = NOW.toISOString().slice(0, 4);

describe('documents API', () => {
  let s: RealStack;
  let issuer: () => ProcessManagerHandle | undefined;
  let call: ReturnType<typeof client>;
  const tokens = {
    student: '',
    otherStudent: '',
    tutor: '',
    finance: '',
    tenantAdmin: '',
    otherTenant: '',
  };

  beforeAll(async () => {
    s = await startRealStack({
      features: ({ db, store, service }) => {
        const feature = createDocumentsFeature({
          db: db.db,
          store,
          handler: service.handler,
          checkpoints: new MemoryCheckpointStore(),
          // Statements are issued for ended periods: this stack lives in the first days of next year.
          clock: () => NEXT_YEAR,
        });
        feature.start();
        issuer = feature.issuer;
        return { routes: feature.routes, close: () => feature.stop() };
      },
    });
    call = client(s.baseUrl);
    tokens.student = await token(T, 'stu_d', 'student');
    tokens.otherStudent = await token(T, 'stu_x', 'student');
    tokens.tutor = await token(T, 'tut_d', 'tutor');
    tokens.finance = await token(T, 'fin_d', 'finance_admin');
    tokens.tenantAdmin = await token(T, 'adm_d', 'tenant_admin');
    tokens.otherTenant = await token('other', 'fin_d', 'finance_admin');
    await s.service.initiateTopUp(s.ctx(T, 'tu'), {
      topUpId: 'tu_d',
      studentId: 'stu_d',
      amount: { amount: 5_000, currency: 'eur' },
    });
    await s.service.succeedTopUp(s.ctx(T, 'tu-ok'), {
      topUpId: 'tu_d',
      paymentIntentId: 'pi_d',
      amountReceived: 5_000,
      currency: 'eur',
    });
    await s.service.placeBooking(s.ctx(T, 'bk'), {
      bookingId: 'bk_d',
      studentId: 'stu_d',
      tutorId: 'tut_d',
      price: { amount: 3_000, currency: 'eur' },
      scheduledAt: new Date(Date.now() + 5 * 86_400_000).toISOString(),
    });
    const completed = await s.service.completeBooking(s.ctx(T, 'bk-done'), { bookingId: 'bk_d' });
    await s.service.refundBooking(s.ctx(T, 'bk-refund', 'finance_admin'), {
      bookingId: 'bk_d',
      reason: 'no show',
    });
    for (let i = 0; i < 20; i++) {
      const head = await s.store.headPosition();
      await issuer()!.waitForPosition(head, 20_000);
      if ((await s.store.headPosition()) === head) break;
    }
    expect(completed.position).toBeGreaterThan(0n);
    expect(await s.queries.waitForPosition(await s.store.headPosition(), 20_000)).toBe(true);
  }, 120_000);
  afterAll(async () => {
    await s?.close();
  });

  it('a student lists and downloads their receipts; the PDF holds the number and the amounts', async () => {
    const list = await call('GET', '/v1/documents', { token: tokens.student });
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    const items = list.body.items as Array<{
      kind: string;
      number: string;
      total: number;
      documentId: string;
    }>;
    expect(items.map((d) => [d.kind, d.number, d.total])).toEqual([
      ['refund_receipt', expect.stringMatching(/^RFD-\d{4}-000001$/), 3_000],
      ['receipt', expect.stringMatching(/^RCT-\d{4}-000002$/), 3_000],
      ['receipt', expect.stringMatching(/^RCT-\d{4}-000001$/), 5_000],
    ]);
    const receipt = items[1]!;
    const one = await call('GET', `/v1/documents/${receipt.documentId}`, { token: tokens.student });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      kind: 'receipt',
      currency: 'eur',
      subtotal: 3_000,
      tax: 0,
      total: 3_000,
    });
    const pdf = await fetch(`${s.baseUrl}/v1/documents/${receipt.documentId}.pdf`, {
      headers: { authorization: `Bearer ${tokens.student}` },
    });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    const bytes = Buffer.from(await pdf.arrayBuffer());
    expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
    const text = pdfText(bytes);
    expect(text).toContain('Receipt');
    expect(text).toContain(receipt.number);
    expect(text).toContain('€30.00');
    expect(text).toContain('Paid from the WeMaster wallet');
  });

  it('a tutor sees the commission invoice and the credit note that corrects it', async () => {
    const list = await call('GET', '/v1/documents?owner=tutor:tut_d', { token: tokens.tutor });
    expect(list.status).toBe(200);
    const items = list.body.items as Array<{ kind: string; total: number; references: unknown }>;
    expect(items.map((d) => [d.kind, d.total])).toEqual([
      ['credit_note', 600],
      ['invoice', 600],
    ]);
    expect(items[0]!.references).toMatchObject({ documentId: bookingInvoiceId(T, 'bk_d') });
    const invoices = await call('GET', '/v1/documents?kind=invoice', { token: tokens.tutor });
    expect((invoices.body.items as unknown[]).length).toBe(1);
  });

  it('nobody else sees them: other students get 404, listing another owner is 403, tenant admins 403, other tenants 404', async () => {
    const invoice = bookingInvoiceId(T, 'bk_d');
    expect((await call('GET', `/v1/documents/${invoice}`, { token: tokens.student })).status).toBe(404);
    expect((await call('GET', `/v1/documents/${invoice}.pdf`, { token: tokens.otherStudent })).status).toBe(
      404,
    );
    expect(
      (await call('GET', '/v1/documents?owner=student:stu_d', { token: tokens.otherStudent })).status,
    ).toBe(403);
    expect((await call('GET', '/v1/documents', { token: tokens.tenantAdmin })).status).toBe(403);
    expect((await call('GET', `/v1/documents/${invoice}`, { token: tokens.otherTenant })).status).toBe(404);
    expect((await call('GET', `/v1/documents/${invoice}`, { token: tokens.finance })).status).toBe(200);
    const all = await call('GET', '/v1/documents?limit=2', { token: tokens.finance });
    expect((all.body.items as unknown[]).length).toBe(2);
    const next = await call('GET', `/v1/documents?limit=2&cursor=${all.body.nextCursor}`, {
      token: tokens.finance,
    });
    expect((next.body.items as unknown[]).length).toBe(2);
    expect(
      (await call('GET', `/v1/documents/${documentId(T, 'receipt', 'nothing')}`, { token: tokens.finance }))
        .status,
    ).toBe(404);
  });

  it('bad input is a 400 problem', async () => {
    for (const path of [
      '/v1/documents?owner=nobody',
      '/v1/documents?kind=poem',
      '/v1/documents?from=yesterday',
      '/v1/documents?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z',
      '/v1/documents?limit=0',
      '/v1/documents/not-a-uuid',
      '/v1/documents/not-a-uuid.pdf',
    ]) {
      const res = await call('GET', path, { token: tokens.finance });
      expect(res.status, path).toBe(400);
    }
  });

  // Found by the schema fuzz (test/api/schemaFuzz.e2e.test.ts): both passed the date-time schema, and
  // new Date() took year 0, which Postgres refused (a 500); leap seconds were read as the next minute.
  it('instants outside years 1-9999 and leap seconds are a 400 on the document list and the closing balances', async () => {
    for (const instant of ['0000-01-01T00:00:00Z', '2030-06-30T23:59:60Z']) {
      for (const path of [
        `/v1/documents?from=${encodeURIComponent(instant)}`,
        `/v1/documents?to=${encodeURIComponent(instant)}`,
        `/v1/ledger/balances.csv?asOf=${encodeURIComponent(instant)}`,
      ]) {
        const res = await fetch(`${s.baseUrl}${path}`, {
          headers: { authorization: `Bearer ${tokens.finance}` },
        });
        expect(res.status, path).toBe(400);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
        expect(await res.json()).toMatchObject({ code: 'validation_failed' });
      }
    }
  });

  it('a tutor reads their monthly statement and yearly summary as CSV and PDF; they add up to the ledger', async () => {
    const csv = await fetch(`${s.baseUrl}/v1/tutors/tut_d/statements/${MONTH}.csv`, {
      headers: { authorization: `Bearer ${tokens.tutor}` },
    });
    const body = await csv.text();
    expect(csv.status, body).toBe(200);
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const rows = body
      .trim()
      .split('\n')
      .map((l) => l.split(','));
    const col = (name: string) => rows[0]!.indexOf(name);
    const byCategory = (c: string) => rows.filter((r) => r[col('category')] === c);
    // 3,000 at 20%: the tutor earned 2,400, the platform 600; the full refund reversed the 2,400.
    expect(
      byCategory('earnings').map((r) => [r[col('charged')], r[col('commission')], r[col('net_change')]]),
    ).toEqual([['3000', '600', '2400']]);
    expect(byCategory('refund').map((r) => r[col('net_change')])).toEqual(['-2400']);
    expect(byCategory('opening').map((r) => r[col('net_change')])).toEqual(['0']);
    expect(byCategory('closing').map((r) => r[col('net_change')])).toEqual(['0']);

    const pdf = await fetch(`${s.baseUrl}/v1/tutors/tut_d/statements/${MONTH}.pdf`, {
      headers: { authorization: `Bearer ${tokens.tutor}` },
    });
    expect(pdf.status).toBe(200);
    const bytes = Buffer.from(await pdf.arrayBuffer());
    const text = pdfText(bytes);
    expect(text).toContain('Earnings statement');
    expect(text).toContain('€24.00');
    expect(text).toContain('Tutor tut_d');
    // Reproducible: the same period renders to the same bytes.
    const again = await fetch(`${s.baseUrl}/v1/tutors/tut_d/statements/${MONTH}.pdf`, {
      headers: { authorization: `Bearer ${tokens.finance}` },
    });
    expect(Buffer.from(await again.arrayBuffer()).equals(bytes)).toBe(true);

    const annual = await fetch(`${s.baseUrl}/v1/tutors/tut_d/statements/annual/${YEAR}.csv`, {
      headers: { authorization: `Bearer ${tokens.tutor}` },
    });
    const annualRows = (await annual.text())
      .trim()
      .split('\n')
      .map((l) => l.split(','));
    expect(annual.status).toBe(200);
    const a = Object.fromEntries(annualRows[0]!.map((k, i) => [k, annualRows[1]![i]]));
    expect(a).toMatchObject({
      currency: 'eur',
      gross: '3000',
      commission: '600',
      tax: '0',
      earnings: '2400',
      refunds: '2400',
      net_paid_out: '0',
    });
    const annualPdf = await fetch(`${s.baseUrl}/v1/tutors/tut_d/statements/annual/${YEAR}.pdf`, {
      headers: { authorization: `Bearer ${tokens.tutor}` },
    });
    expect(pdfText(Buffer.from(await annualPdf.arrayBuffer()))).toContain(`Earnings summary ${YEAR}`);
  });

  it('statements: only the tutor and finance admins; periods must have ended and exist', async () => {
    const get = (path: string, token: string) =>
      fetch(`${s.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await get(`/v1/tutors/tut_x/statements/${MONTH}.csv`, tokens.tutor)).toBe(403);
    expect(await get(`/v1/tutors/tut_d/statements/${MONTH}.csv`, tokens.student)).toBe(403);
    expect(await get(`/v1/tutors/tut_d/statements/${MONTH}.csv`, tokens.tenantAdmin)).toBe(403);
    expect(await get('/v1/tutors/tut_d/statements/2026-13.csv', tokens.finance)).toBe(400);
    expect(await get('/v1/tutors/tut_d/statements/annual/1999.pdf', tokens.finance)).toBe(400);
    expect(await get(`/v1/tutors/tut_d/statements/annual/${Number(YEAR) + 1}.csv`, tokens.finance)).toBe(422);
  });

  it("the accountant's closing balances: every account's posted totals at an instant, and they balance", async () => {
    const res = await fetch(`${s.baseUrl}/v1/ledger/balances.csv?asOf=${NEXT_YEAR.toISOString()}`, {
      headers: { authorization: `Bearer ${tokens.finance}` },
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const [head, ...rows] = text
      .trim()
      .split('\n')
      .map((l) => l.split(','));
    const col = (name: string) => head!.indexOf(name);
    const get = (account: string) => rows.find((r) => r[col('account')] === account);
    expect(get('platform:revenue:commission')?.[col('balance')]).toBe('0');
    expect(get('stripe:balance')?.[col('balance')]).toBe('5000');
    expect(get('student:stu_d:wallet')?.[col('balance')]).toBe('5000');
    const debits = rows.reduce((sum, r) => sum + Number(r[col('debits_posted')]), 0);
    const credits = rows.reduce((sum, r) => sum + Number(r[col('credits_posted')]), 0);
    expect(debits).toBe(credits);
    const before = await fetch(`${s.baseUrl}/v1/ledger/balances.csv?asOf=2000-01-01T00:00:00Z`, {
      headers: { authorization: `Bearer ${tokens.finance}` },
    });
    expect((await before.text()).trim().split('\n')).toHaveLength(1);
  });
});
