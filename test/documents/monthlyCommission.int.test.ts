import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillingSettingsService } from '../../src/commands/billingSettings.js';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { silentLogger } from '../../src/commands/logger.js';
import { startDocumentIssuer } from '../../src/documents/issuer.js';
import { MonthlyCommissionInvoicing, monthlyInvoiceId } from '../../src/documents/monthlyCommission.js';
import { rebuildDocuments } from '../../src/documents/rebuild.js';
import { bookingInvoiceId } from '../../src/documents/rules.js';
import { DocumentStore } from '../../src/documents/store.js';
import { PLATFORM_REVENUE_COMMISSION, PLATFORM_TAX_PAYABLE } from '../../src/domain/accounts.js';
import { calendarPeriods } from '../../src/domain/calendar.js';
import { decodeEvent, entryOf } from '../../src/domain/events.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore } from '../../src/eventstore/port.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { pdfText } from './support.js';

/**
 * Monthly commission invoices (docs/documents.md): two months of bookings for two tutors in a tenant
 * on Europe/Berlin time, the month-end step run by two processes at once and again after a restart.
 */
const T = 'monthly';
const ZONE = 'Europe/Berlin';
let nowMs = Date.parse('2026-02-20T10:00:00.000Z');
const clock = () => new Date(nowMs);
let seq = 0;
const ctx = (role = 'student', id = `${role}-1`): CommandContext => {
  const key = `k${++seq}`;
  return { tenantId: T, actor: { id, role }, idempotencyKey: key, correlationId: key, causationId: key };
};

async function book(service: LedgerService, bookingId: string, tutorId: string, amount: number) {
  await service.placeBooking(ctx('student', 's1'), {
    bookingId,
    studentId: 's1',
    tutorId,
    price: { amount, currency: 'eur' },
    scheduledAt: new Date(nowMs + 3 * 86_400_000).toISOString(),
  });
  await service.completeBooking(ctx('tutor', tutorId), { bookingId });
}

async function drain(runner: { waitForPosition(p: bigint, t: number): Promise<void> }, store: EventStore) {
  for (let i = 0; i < 20; i++) {
    const head = await store.headPosition();
    await runner.waitForPosition(head, 10_000);
    if ((await store.headPosition()) === head) return;
  }
  throw new Error('the issuer kept appending');
}

/** The ledger's commission and commission-tax postings per tutor and month (Berlin), captures and refunds apart. */
async function ledgerCommission(store: EventStore) {
  const out = new Map<string, { commission: number; tax: number; reversed: number; taxReversed: number }>();
  for (const recorded of await store.readAll({ maxCount: 10_000 })) {
    const event = decodeEvent(recorded);
    const entry = entryOf(event);
    const tutorId = (event.data as { tutorId?: string }).tutorId;
    if (!entry || !tutorId) continue;
    const month = calendarPeriods(Date.parse(event.metadata.occurredAt), ZONE).month;
    const key = `${tutorId}/${month}`;
    const sums = out.get(key) ?? { commission: 0, tax: 0, reversed: 0, taxReversed: 0 };
    for (const p of entry.postings) {
      if (p.effect !== 'post') continue;
      if (p.account === PLATFORM_REVENUE_COMMISSION) {
        if (p.side === 'credit') sums.commission += p.amount;
        else sums.reversed += p.amount;
      } else if (p.account === PLATFORM_TAX_PAYABLE) {
        if (p.side === 'credit') sums.tax += p.amount;
        else sums.taxReversed += p.amount;
      }
    }
    out.set(key, sums);
  }
  return out;
}

describe('monthly commission invoices', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it('issue exactly one invoice per tutor per month at month end in the tenant zone, equal to the ledger, and credit notes naming them', async () => {
    const store = new MemoryEventStore();
    const service = createLedgerService({ store, clock });
    const billing = new BillingSettingsService(service.handler, clock);
    const documents = new DocumentStore(database.db);
    await service.updateSettings(ctx('tenant_admin'), { timeZone: ZONE });
    // One booking invoiced on its own before the switch: it stays out of February's invoice.
    await service.initiateTopUp(ctx('student', 's1'), {
      topUpId: 'tu1',
      studentId: 's1',
      amount: { amount: 100_000, currency: 'eur' },
    });
    await service.succeedTopUp(ctx('service'), {
      topUpId: 'tu1',
      paymentIntentId: 'pi_1',
      amountReceived: 100_000,
      currency: 'eur',
    });
    await book(service, 'b0', 'u1', 1_000);
    await billing.update(ctx('tenant_admin'), {
      legalName: 'Monthly Tutoring GmbH',
      locale: 'de-DE',
      taxRatesBps: { invoice: 1_900, receipt: 0 },
      commissionInvoicing: 'monthly',
    });

    // March (Berlin): u1 two bookings, one refunded in part in March; u2 one booking.
    nowMs = Date.parse('2026-03-05T09:00:00.000Z');
    await book(service, 'b1', 'u1', 2_500);
    await book(service, 'b2', 'u1', 4_000);
    await book(service, 'b3', 'u2', 3_000);
    nowMs = Date.parse('2026-03-20T09:00:00.000Z');
    await service.refundBooking(ctx('finance_admin'), { bookingId: 'b1', amount: 1_000, reason: 'late' });
    // 23:30 UTC on March 31 is April 1 in Berlin: an April capture.
    nowMs = Date.parse('2026-03-31T23:30:00.000Z');
    await book(service, 'b4', 'u2', 2_000);
    // April: u1 one booking, and a refund of March's b2 (its credit note names March's invoice).
    nowMs = Date.parse('2026-04-10T09:00:00.000Z');
    await book(service, 'b5', 'u1', 5_000);
    await service.refundBooking(ctx('finance_admin'), { bookingId: 'b2', amount: 4_000, reason: 'no show' });

    const issuer = startDocumentIssuer({
      store,
      checkpoints: new MemoryCheckpointStore(),
      handler: service.handler,
      documents,
    });
    await drain(issuer, store);
    await issuer.stop();
    // Per capture only b0 has an invoice; the others wait for their month.
    expect((await documents.list(T, { kind: 'invoice', limit: 100 })).map((d) => d.documentId)).toEqual([
      bookingInvoiceId(T, 'b0'),
    ]);
    expect(await documents.list(T, { kind: 'credit_note', limit: 100 })).toEqual([]);

    const processes = () =>
      new MonthlyCommissionInvoicing({
        store,
        // Each process its own command handler (no shared cache).
        handler: createLedgerService({ store, clock }).handler,
        documents,
        clock,
        logger: silentLogger,
      });
    const [a, b] = [processes(), processes()];

    // March ends at 2026-03-31T22:00Z (Berlin summer time); within the grace nothing is due.
    nowMs = Date.parse('2026-03-31T22:04:00.000Z');
    expect((await a.tick()).issued).toEqual([]);
    // February held only b0's per-capture commission: no February invoice. March is due.
    nowMs = Date.parse('2026-04-01T06:00:00.000Z');
    const [first, second] = await Promise.all([a.tick(), b.tick()]);
    // Racing processes may both report a document they appended byte for byte alike; it is one document.
    const unique = <D extends { documentId: string }>(docs: D[]) => [
      ...new Map(docs.map((x) => [x.documentId, x])).values(),
    ];
    const march = unique([...first.issued, ...second.issued]);
    const refundOf = async (bookingId: string) => {
      for (const recorded of await store.readAll({ maxCount: 10_000 })) {
        const e = decodeEvent(recorded);
        if (e.type === 'WalletRefunded' && e.data.bookingId === bookingId) return e.data.refundId;
      }
      throw new Error(`no refund of ${bookingId}`);
    };
    const [refundB1, refundB2] = [await refundOf('b1'), await refundOf('b2')];
    expect(first.failed).toEqual([]);
    expect(second.failed).toEqual([]);
    expect(march.map((d) => `${d.kind} ${d.owner.id} ${d.subject.id}`).sort()).toEqual([
      `credit_note u1 ${refundB1}`,
      'invoice u1 2026-03-eur',
      'invoice u2 2026-03-eur',
    ]);

    // April after a restart of both: a fresh process issues April once and March not again.
    nowMs = Date.parse('2026-05-01T03:00:00.000Z');
    const [c, d] = [processes(), processes()];
    const [third, fourth] = await Promise.all([c.tick(), d.tick()]);
    expect(
      unique([...third.issued, ...fourth.issued])
        .map((x) => `${x.kind} ${x.owner.id} ${x.subject.id}`)
        .sort(),
    ).toEqual([`credit_note u1 ${refundB2}`, 'invoice u1 2026-04-eur', 'invoice u2 2026-04-eur']);
    const head = await store.headPosition();
    expect((await processes().tick()).issued).toEqual([]);
    expect((await a.tick()).issued).toEqual([]);
    expect(await store.headPosition()).toBe(head);

    // Exactly one invoice per tutor per month, numbered without gaps after b0's.
    const invoices = await documents.list(T, { kind: 'invoice', limit: 100 });
    expect(invoices.map((i) => i.number).sort()).toEqual([
      'INV-2026-000001',
      'INV-2026-000002',
      'INV-2026-000003',
      'INV-2026-000004',
      'INV-2026-000005',
    ]);
    expect(await documents.sequences(T, 'invoice-2026')).toEqual([1, 2, 3, 4, 5]);
    expect(await documents.sequences(T, 'credit_note-2026')).toEqual([1, 2]);

    // Totals are the ledger's commission and tax postings of the tutor's month.
    const ledger = await ledgerCommission(store);
    const rate = { rateBps: 1_900, inclusive: false };
    for (const [tutor, month] of [
      ['u1', '2026-03'],
      ['u2', '2026-03'],
      ['u1', '2026-04'],
      ['u2', '2026-04'],
    ] as const) {
      const stored = await documents.get(T, monthlyInvoiceId(T, tutor, month, 'eur', rate));
      const booked = ledger.get(`${tutor}/${month}`)!;
      expect(stored!.document).toMatchObject({
        subtotal: booked.commission,
        tax: booked.tax,
        total: booked.commission + booked.tax,
        taxRate: rate,
        issuer: { name: 'Monthly Tutoring GmbH' },
      });
    }
    const marchU1 = monthlyInvoiceId(T, 'u1', '2026-03', 'eur', rate);
    const credits = await documents.list(T, { kind: 'credit_note', limit: 10 });
    for (const credit of credits) {
      const stored = (await documents.get(T, credit.documentId))!.document;
      const month = credit.subject.id === refundB1 ? '2026-03' : '2026-04';
      const booked = ledger.get(`u1/${month}`)!;
      expect(stored).toMatchObject({ subtotal: booked.reversed, tax: booked.taxReversed });
      expect(stored.references?.documentId).toBe(marchU1);
    }
    // 20% of 2,500 + 4,000 = 1,300 commission, 19% tax 247; March's invoice date is its last day.
    const marchInvoice = (await documents.get(T, marchU1))!;
    expect(marchInvoice.document).toMatchObject({
      subtotal: 1_300,
      tax: 247,
      issuedAt: '2026-03-31T21:59:59.999Z',
    });
    expect(marchInvoice.document.lines.map((l) => l.description)).toEqual([
      '2026-03-05: platform commission on booking b1 (tutoring session)',
      '2026-03-05: platform commission on booking b2 (tutoring session)',
    ]);
    // b4 captured at 23:30 UTC on March 31 is in u2's April invoice.
    const aprilU2 = (await documents.get(T, monthlyInvoiceId(T, 'u2', '2026-04', 'eur', rate)))!;
    expect(aprilU2.document.lines.map((l) => l.description)).toEqual([
      '2026-03-31: platform commission on booking b4 (tutoring session)',
    ]);

    const text = pdfText((await documents.pdf(T, marchU1))!.pdf);
    expect(text).toContain(marchInvoice.summary.number);
    expect(text).toContain('Monthly Tutoring GmbH');
    expect(text).toContain('Tutor u1');
    expect(text).toContain('31. März 2026');
    expect(text).toContain('platform commission on booking b2');
    expect(text).toMatch(/Tax \(19%\)\s+2,47\s€/);
    expect(text).toMatch(/Total \(EUR\)\s+15,47\s€/);
    const cnText = pdfText(
      (await documents.pdf(T, credits.find((x) => x.subject.id === refundB2)!.documentId))!.pdf,
    );
    expect(cnText).toContain(`Corrects invoice: ${marchInvoice.summary.number}`);

    // documents rebuild --check finds the table as the series streams say.
    const report = await rebuildDocuments({ db: database.db, store, documents, repair: false });
    expect(report).toMatchObject({ missing: 0, differing: 0, orphans: 0 });
    expect(report.issued).toBe(report.unchanged);
  });
});
