import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillingSettingsService } from '../../src/commands/billingSettings.js';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { documentIssuing, startDocumentIssuer } from '../../src/documents/issuer.js';
import { renderDocumentPdf } from '../../src/documents/pdf.js';
import { bookingInvoiceId } from '../../src/documents/rules.js';
import { DocumentStore, sha256 } from '../../src/documents/store.js';
import { decodeEvent, entryOf } from '../../src/domain/events.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore } from '../../src/eventstore/port.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { pdfText } from './support.js';

const T = 'docs';
const nowMs = Date.parse('2026-03-10T09:30:00.000Z');
const clock = () => new Date(nowMs);
let seq = 0;
const ctx = (role = 'student'): CommandContext => {
  const key = `k${++seq}`;
  return {
    tenantId: T,
    actor: { id: `${role}-1`, role },
    idempotencyKey: key,
    correlationId: key,
    causationId: key,
  };
};

async function flows(service: LedgerService): Promise<void> {
  await service.initiateTopUp(ctx(), {
    topUpId: 'tu1',
    studentId: 's1',
    amount: { amount: 10_000, currency: 'usd' },
  });
  await service.succeedTopUp(ctx('service'), {
    topUpId: 'tu1',
    paymentIntentId: 'pi_1',
    amountReceived: 10_000,
    currency: 'usd',
  });
  await service.placeBooking(ctx(), {
    bookingId: 'b1',
    studentId: 's1',
    tutorId: 'u1',
    price: { amount: 2_500, currency: 'usd' },
    scheduledAt: new Date(nowMs + 3 * 86_400_000).toISOString(),
  });
  await service.completeBooking(ctx('tutor'), { bookingId: 'b1' });
  await service.refundBooking(ctx('finance_admin'), { bookingId: 'b1', amount: 1_000, reason: 'late start' });
}

async function drain(runner: { waitForPosition(p: bigint, t: number): Promise<void> }, store: EventStore) {
  for (let i = 0; i < 20; i++) {
    const head = await store.headPosition();
    await runner.waitForPosition(head, 10_000);
    if ((await store.headPosition()) === head) return;
  }
  throw new Error('the issuer kept appending');
}

describe('document issuer', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it('issues a receipt per top-up, capture and refund, a commission invoice per capture and a credit note per refund of it, numbered without gaps', async () => {
    const store = new MemoryEventStore();
    const service = createLedgerService({ store, clock });
    const documents = new DocumentStore(database.db);
    await flows(service);
    const issuer = startDocumentIssuer({
      store,
      checkpoints: new MemoryCheckpointStore(),
      handler: service.handler,
      documents,
    });
    await drain(issuer, store);
    await issuer.stop();

    const all = await documents.list(T, { limit: 100 });
    const byKind = (k: string) => all.filter((d) => d.kind === k);
    expect(byKind('receipt').map((d) => [d.number, d.total, d.owner])).toEqual([
      ['RCT-2026-000002', 2_500, { kind: 'student', id: 's1' }],
      ['RCT-2026-000001', 10_000, { kind: 'student', id: 's1' }],
    ]);
    // Commission 20% of 2,500; the refund of 1,000 takes 200 of it back.
    expect(byKind('invoice').map((d) => [d.number, d.total, d.owner])).toEqual([
      ['INV-2026-000001', 500, { kind: 'tutor', id: 'u1' }],
    ]);
    expect(byKind('refund_receipt').map((d) => [d.number, d.total])).toEqual([['RFD-2026-000001', 1_000]]);
    const [creditNote] = byKind('credit_note');
    expect(creditNote).toMatchObject({
      number: 'CN-2026-000001',
      total: 200,
      owner: { kind: 'tutor', id: 'u1' },
      references: { documentId: bookingInvoiceId(T, 'b1'), number: 'INV-2026-000001' },
    });
    expect(await documents.sequences(T, 'receipt-2026')).toEqual([1, 2]);

    // The PDF says what the document says.
    const invoice = await documents.pdf(T, bookingInvoiceId(T, 'b1'));
    const text = pdfText(invoice!.pdf);
    expect(text).toContain('Invoice');
    expect(text).toContain('INV-2026-000001');
    expect(text).toContain('March 10, 2026');
    expect(text).toContain('Platform commission on booking b1');
    expect(text).toMatch(/Total \(USD\)\s+\$5\.00/);
    expect(text).toContain('Tutor u1');
    const cn = pdfText((await documents.pdf(T, creditNote!.documentId))!.pdf);
    expect(cn).toContain('Credit note');
    expect(cn).toContain('Corrects invoice: INV-2026-000001');
    expect(cn).toMatch(/\$2\.00/);

    // Regenerating from the event gives the stored bytes.
    const stored = await documents.get(T, bookingInvoiceId(T, 'b1'));
    const again = await renderDocumentPdf(stored!.document);
    expect(sha256(again)).toBe(stored!.pdfSha256);
    expect(again.equals(invoice!.pdf)).toBe(true);
  });

  it('handling an event again (a crash before the checkpoint) issues nothing new', async () => {
    const store = new MemoryEventStore();
    const service = createLedgerService({ store, clock });
    const other = await createTestDatabase();
    try {
      const documents = new DocumentStore(other.db);
      await flows(service);
      const issuing = documentIssuing({ store, handler: service.handler, documents });
      const events = await store.readAll({ maxCount: 1_000 });
      for (const e of events) await issuing.handle(e);
      const head = await store.headPosition();
      const before = await documents.list(T, { limit: 100 });
      // A fresh process (its own command handler, no cache) handles every event again.
      const restarted = documentIssuing({
        store,
        handler: createLedgerService({ store, clock }).handler,
        documents,
      });
      for (const e of events) await restarted.handle(e);
      expect(await store.headPosition()).toBe(head);
      expect(await documents.list(T, { limit: 100 })).toEqual(before);
    } finally {
      await other.dispose();
    }
  });

  for (const inclusive of [false, true]) {
    it(`with a ${inclusive ? 'tax-inclusive' : 'tax-exclusive'} rate, captures book the commission tax to platform:tax:payable, refunds reverse it, and invoices and credit notes print what the ledger booked`, async () => {
      const store = new MemoryEventStore();
      const service = createLedgerService({ store, clock });
      const billing = new BillingSettingsService(service.handler, clock);
      const other = await createTestDatabase();
      try {
        const documents = new DocumentStore(other.db);
        await billing.update(ctx('tenant_admin'), {
          legalName: 'Docs Tutoring GmbH',
          address: ['Hauptstraße 1', '10115 Berlin'],
          taxId: 'DE123456789',
          locale: 'de-DE',
          pricesIncludeTax: inclusive,
          taxRatesBps: { invoice: 1_900, receipt: 0 },
        });
        await flows(service);
        const issuing = documentIssuing({
          store,
          handler: service.handler,
          documents,
          settings: async (t) => {
            const b = await billing.get(t);
            return { legalName: b.legalName, address: b.address, taxId: b.taxId, locale: b.locale };
          },
        });
        const events = (await store.readAll({ maxCount: 1_000 })).map((e) => ({
          recorded: e,
          decoded: decodeEvent(e),
        }));
        for (const e of events) await issuing.handle(e.recorded);

        // What the ledger booked on platform:tax:payable, and the trial balance.
        let taxPayable = 0;
        const totals = new Map<string, number>();
        for (const { decoded } of events) {
          const entry = entryOf(decoded);
          for (const p of entry?.postings ?? []) {
            if (p.effect !== 'post') continue;
            const signed = p.side === 'credit' ? p.amount : -p.amount;
            totals.set(p.account, (totals.get(p.account) ?? 0) + signed);
            if (p.account === 'platform:tax:payable') taxPayable += signed;
          }
        }
        expect([...totals.values()].reduce((a, b) => a + b, 0)).toBe(0);
        // 2,500 at 20% commission = 500; 19% exclusive: 95 on top; inclusive: 500 holds 80 of tax.
        const captureTax = inclusive ? 80 : 95;
        const invoice = await documents.get(T, bookingInvoiceId(T, 'b1'));
        expect(invoice!.document).toMatchObject({
          subtotal: inclusive ? 420 : 500,
          tax: captureTax,
          total: inclusive ? 500 : 595,
          taxRate: { rateBps: 1_900, inclusive },
          issuer: { name: 'Docs Tutoring GmbH', taxId: 'DE123456789' },
          locale: 'de-DE',
        });
        const [creditNote] = await documents.list(T, { kind: 'credit_note', limit: 10 });
        const cn = await documents.get(T, creditNote!.documentId);
        // The refund of 1,000 of 2,500 takes back 40% of the platform's part, split like the capture.
        expect(cn!.document.total).toBe(Math.floor((1_000 * (inclusive ? 500 : 595)) / 2_500));
        expect(taxPayable).toBe(captureTax - cn!.document.tax);
        const text = pdfText((await documents.pdf(T, bookingInvoiceId(T, 'b1')))!.pdf);
        expect(text).toContain(inclusive ? 'Tax (19%, included)' : 'Tax (19%)');
        // de-DE formatting of USD amounts.
        expect(text).toContain(inclusive ? '5,00 $' : '5,95 $');
        expect(text).toContain('DE123456789');
      } finally {
        await other.dispose();
      }
    });
  }
});
