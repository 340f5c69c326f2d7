import { describe, expect, it } from 'vitest';
import {
  type DocumentDraft,
  type DocumentIssued,
  documentSeriesDecider,
  formatDocumentNumber,
  seriesIdOf,
} from '../../src/domain/documentSeries.js';
import { InvariantViolation } from '../../src/domain/errors.js';
import { spec } from './spec.js';

const draft = (n: number, overrides: Partial<DocumentDraft> = {}): DocumentDraft => ({
  documentId: `00000000-0000-5000-8000-${String(n).padStart(12, '0')}`,
  kind: 'invoice',
  issuedAt: '2026-12-31T23:59:59.000Z',
  owner: { kind: 'tutor', id: 'u1' },
  issuer: { kind: 'platform', id: 't', name: 'WeMaster Ltd', address: ['1 Main St'], taxId: 'GB123' },
  recipient: { kind: 'tutor', id: 'u1', name: 'Tutor u1', address: [], taxId: null },
  currency: 'usd',
  locale: 'en-US',
  lines: [{ description: 'Commission', amount: 500, taxAmount: 100 }],
  subtotal: 500,
  tax: 100,
  total: 600,
  taxRate: { rateBps: 2000, inclusive: false },
  settlement: 'earnings',
  subject: { kind: 'booking', id: 'b1' },
  source: { eventId: '00000000-0000-5000-8000-00000000aaaa', eventType: 'WalletHoldCaptured' },
  references: null,
  ...overrides,
});

const issued = (n: number, sequence: number): DocumentIssued => ({
  type: 'DocumentIssued',
  data: {
    ...draft(n),
    seriesId: 'invoice-2026',
    sequence,
    number: formatDocumentNumber('invoice', draft(n).issuedAt, sequence),
  },
});

describe('document series', () => {
  it('numbers the first document 1 and each next one the one after', () => {
    spec(documentSeriesDecider)
      .given([])
      .when({ type: 'IssueDocument', draft: draft(1) })
      .thenEmits([issued(1, 1)]);
    spec(documentSeriesDecider)
      .given([issued(1, 1), issued(2, 2)])
      .when({ type: 'IssueDocument', draft: draft(3) })
      .thenEmits([issued(3, 3)]);
    expect(issued(3, 3).data.number).toBe('INV-2026-000003');
  });

  it('a series is a kind and the UTC year of issue', () => {
    expect(seriesIdOf('credit_note', '2027-01-01T00:30:00+01:00')).toBe('credit_note-2026');
    expect(formatDocumentNumber('receipt', '2027-01-01T00:00:00Z', 1_234_567)).toBe('RCT-2027-1234567');
  });

  it('refuses totals that do not add up and documents of another series', () => {
    spec(documentSeriesDecider)
      .given([])
      .when({ type: 'IssueDocument', draft: draft(1, { total: 599 }) })
      .thenFails('validation_failed', /total/);
    spec(documentSeriesDecider)
      .given([])
      .when({ type: 'IssueDocument', draft: draft(1, { tax: 0 }) })
      .thenFails('validation_failed', /tax/);
    spec(documentSeriesDecider)
      .given([issued(1, 1)])
      .when({ type: 'IssueDocument', draft: draft(2, { issuedAt: '2027-01-01T00:00:00Z' }) })
      .thenFails('validation_failed', /series/);
  });

  it('evolve refuses a gap or a repeated number loudly', () => {
    const state = documentSeriesDecider.evolve(documentSeriesDecider.initialState(), issued(1, 1));
    expect(() => documentSeriesDecider.evolve(state, issued(2, 3))).toThrow(InvariantViolation);
    expect(() => documentSeriesDecider.evolve(state, issued(2, 1))).toThrow(InvariantViolation);
  });
});
