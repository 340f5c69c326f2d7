import { describe, expect, it } from 'vitest';
import { type DocumentRow, missingDocuments, numberingProblems } from '../../soak/documents.js';

const doc = (seriesId: string, sequence: number, kind: string, subject: string): DocumentRow => ({
  documentId: `${seriesId}-${sequence}-${subject}`,
  kind,
  seriesId,
  sequence,
  subject,
});

describe("the soak's document checks", () => {
  it('accepts series numbered 1..n in any listing order', () => {
    const docs = [
      doc('invoice-2026', 2, 'invoice', 'booking:b2'),
      doc('invoice-2026', 1, 'invoice', 'booking:b1'),
      doc('receipt-2026', 1, 'receipt', 'topup:t1'),
    ];
    expect(numberingProblems(docs)).toEqual([]);
  });

  it('names a gap, a repeated number, a document listed twice and two documents for one subject', () => {
    expect(
      numberingProblems([
        doc('invoice-2026', 1, 'invoice', 'booking:b1'),
        doc('invoice-2026', 3, 'invoice', 'booking:b3'),
      ]),
    ).toEqual([
      { category: 'invariant_broken', detail: 'series invoice-2026 is not 1..2: number 3 in place 2' },
    ]);
    const one = doc('receipt-2026', 1, 'receipt', 'topup:t1');
    expect(numberingProblems([one, one]).map((p) => p.detail)).toEqual([
      `document ${one.documentId} listed twice`,
      'two documents for receipt topup:t1',
      'series receipt-2026 is not 1..2: number 1 in place 2',
    ]);
  });

  it('lists what the model expects and the issuer has not issued', () => {
    const docs = [
      doc('receipt-2026', 1, 'receipt', 'topup:t1'),
      doc('refund_receipt-2026', 1, 'refund_receipt', 'refund:r1'),
    ];
    expect(missingDocuments(docs, new Set(['receipt topup:t1', 'invoice booking:b1']), 2)).toEqual([
      'invoice booking:b1',
      '1 of 2 refund receipts',
    ]);
    expect(missingDocuments(docs, new Set(['receipt topup:t1']), 1)).toEqual([]);
  });
});
