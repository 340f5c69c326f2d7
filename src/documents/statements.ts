import { stringify } from 'csv-stringify/sync';
import { InvariantViolation } from '../domain/errors.js';
import type { TutorStatement } from '../projections/tutorStatements.js';
import { formatDate, formatMinor, renderPdf } from './pdf.js';
import type { DocumentSettings } from './rules.js';

/**
 * Tutor statements as CSV and PDF: the monthly statement (every entry that moved the tutor's
 * earnings, with opening and closing balances) and the yearly earnings summary (totals per currency).
 * Both are functions of the statement data and the tenant's document settings only: the dates printed
 * are the period's, never the clock's, so a past period renders to the same bytes whenever asked.
 */
export const MAX_STATEMENT_PDF_BYTES = 8 * 1024 * 1024;

const CATEGORY_LABEL: Readonly<Record<string, string>> = {
  earnings: 'Earnings',
  cancellation_fee: 'Cancellation fee',
  cleared: 'Cleared to available',
  refund: 'Refund',
  clawback: 'Clawback',
  payout: 'Payout',
  adjustment: 'Adjustment',
  other: 'Other',
};

/** `2026-03` -> [2026-03-01, 2026-04-01) in UTC; null when not a month. */
export function monthPeriod(month: string): { from: Date; to: Date } | null {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m) return null;
  const year = Number(m[1]);
  const index = Number(m[2]) - 1;
  if (year < 2000 || year > 9998) return null;
  return { from: new Date(Date.UTC(year, index, 1)), to: new Date(Date.UTC(year, index + 1, 1)) };
}

export function yearPeriod(year: string): { from: Date; to: Date } | null {
  if (!/^\d{4}$/.test(year)) return null;
  const y = Number(year);
  if (y < 2000 || y > 9998) return null;
  return { from: new Date(Date.UTC(y, 0, 1)), to: new Date(Date.UTC(y + 1, 0, 1)) };
}

/** The monthly statement as CSV: one row per entry, signed changes in minor units. */
export function statementCsv(statements: readonly TutorStatement[]): string {
  const rows: Array<Array<string | number>> = [
    [
      'currency',
      'occurred_at',
      'category',
      'event_type',
      'entry_id',
      'description',
      'charged',
      'commission',
      'tax',
      'pending_change',
      'available_change',
      'receivable_change',
      'net_change',
    ],
  ];
  for (const s of statements) {
    rows.push([
      s.currency,
      s.from,
      'opening',
      '',
      '',
      'Opening balance',
      '',
      '',
      '',
      s.opening.pending,
      s.opening.available,
      s.opening.receivable,
      s.opening.net,
    ]);
    for (const l of s.lines) {
      rows.push([
        s.currency,
        l.occurredAt,
        l.category,
        l.eventType,
        l.entryId,
        l.description,
        l.charged,
        l.commission,
        l.tax,
        l.change.pending,
        l.change.available,
        l.change.receivable,
        l.change.net,
      ]);
    }
    rows.push([
      s.currency,
      s.to,
      'closing',
      '',
      '',
      'Closing balance',
      '',
      '',
      '',
      s.closing.pending,
      s.closing.available,
      s.closing.receivable,
      s.closing.net,
    ]);
  }
  // Cells a spreadsheet would run as a formula are escaped (descriptions hold user text).
  return stringify(rows, { escape_formulas: true });
}

/** The yearly summary as CSV: one row per currency. */
export function annualCsv(statements: readonly TutorStatement[]): string {
  const rows: Array<Array<string | number>> = [
    [
      'currency',
      'from',
      'to',
      'gross',
      'commission',
      'tax',
      'earnings',
      'refunds',
      'clawbacks',
      'adjustments',
      'net_paid_out',
      'opening_net',
      'closing_net',
    ],
  ];
  for (const s of statements) {
    const t = s.totals;
    rows.push([
      s.currency,
      s.from,
      s.to,
      t.gross,
      t.commission,
      t.tax,
      t.earnings,
      t.refunds,
      t.clawbacks,
      t.adjustments,
      t.payouts,
      s.opening.net,
      s.closing.net,
    ]);
  }
  return stringify(rows, { escape_formulas: true });
}

interface Header {
  title: string;
  period: string;
  tutorId: string;
  settings: DocumentSettings;
  /** The last instant of the period: the PDF's date. */
  asOf: Date;
}

function header(doc: PDFKit.PDFDocument, h: Header): number {
  doc.font('Bold').fontSize(18).text(h.title, 50, 50);
  doc.font('Regular').fontSize(10).text(h.period, 50, 75);
  doc.font('Bold').fontSize(9).text('From', 50, 100);
  doc.font('Regular').fontSize(10).text(h.settings.legalName, { width: 230 });
  for (const line of h.settings.address) doc.text(line, { width: 230 });
  if (h.settings.taxId) doc.text(`Tax id: ${h.settings.taxId}`, { width: 230 });
  doc.font('Bold').fontSize(9).text('For', 315, 100);
  doc.font('Regular').fontSize(10).text(`Tutor ${h.tutorId}`, 315, 112, { width: 230 });
  return 180;
}

/** The monthly statement: balances and every entry, per currency, paged as needed. */
export function renderStatementPdf(
  statements: readonly TutorStatement[],
  meta: { month: string; tutorId: string; settings: DocumentSettings },
): Promise<Buffer> {
  const first = statements[0];
  const period = first
    ? `${formatDate(first.from, meta.settings.locale)} – ${formatDate(new Date(Date.parse(first.to) - 1).toISOString(), meta.settings.locale)}`
    : meta.month;
  const asOf = first ? new Date(Date.parse(first.to) - 1000) : new Date(`${meta.month}-01T00:00:00Z`);
  return renderPdf(
    {
      title: `Statement ${meta.month} tutor ${meta.tutorId}`,
      date: asOf,
      subject: `statement:${meta.tutorId}:${meta.month}`,
      maxBytes: MAX_STATEMENT_PDF_BYTES,
    },
    (doc) => {
      let y = header(doc, {
        title: 'Earnings statement',
        period,
        tutorId: meta.tutorId,
        settings: meta.settings,
        asOf,
      });
      if (statements.length === 0) {
        doc.fontSize(10).text('No earnings, refunds or payouts in this period.', 50, y);
        return;
      }
      const newPageIfNeeded = (needed: number) => {
        if (y + needed > 770) {
          doc.addPage();
          y = 50;
        }
      };
      for (const s of statements) {
        const money = (n: number) => formatMinor(n, s.currency, meta.settings.locale);
        newPageIfNeeded(120);
        doc.font('Bold').fontSize(11).text(s.currency.toUpperCase(), 50, y);
        y += 18;
        doc.font('Regular').fontSize(9);
        const balanceRow = (label: string, b: TutorStatement['opening']) => {
          doc.text(label, 50, y, { width: 120 });
          doc.text(`pending ${money(b.pending)}`, 170, y, { width: 120 });
          doc.text(`available ${money(b.available)}`, 290, y, { width: 130 });
          doc.text(`owed ${money(b.receivable)}`, 420, y, { width: 125 });
          y += 14;
        };
        balanceRow('Opening balance', s.opening);
        y += 6;
        doc.font('Bold');
        doc.text('Date', 50, y, { width: 70 });
        doc.text('What', 120, y, { width: 255 });
        doc.text('Commission', 375, y, { width: 80, align: 'right' });
        doc.text('Amount', 460, y, { width: 85, align: 'right' });
        y += 14;
        doc.moveTo(50, y).lineTo(545, y).stroke();
        y += 4;
        doc.font('Regular');
        for (const l of s.lines) {
          const what = `${CATEGORY_LABEL[l.category] ?? l.category}: ${l.description}`;
          const height = Math.max(doc.heightOfString(what, { width: 255 }), 11);
          newPageIfNeeded(height + 4);
          doc.text(formatDate(l.occurredAt, meta.settings.locale), 50, y, { width: 70 });
          doc.text(what, 120, y, { width: 255 });
          doc.text(l.commission + l.tax > 0 ? money(l.commission + l.tax) : '', 375, y, {
            width: 80,
            align: 'right',
          });
          doc.text(money(l.change.net), 460, y, { width: 85, align: 'right' });
          y += height + 3;
        }
        doc.moveTo(50, y).lineTo(545, y).stroke();
        y += 6;
        balanceRow('Closing balance', s.closing);
        const t = s.totals;
        newPageIfNeeded(60);
        doc.text(
          `Earnings ${money(t.earnings)} (students paid ${money(t.gross)}, commission ${money(t.commission)}, tax ${money(t.tax)}) · refunds ${money(t.refunds)} · clawbacks ${money(t.clawbacks)} · payouts ${money(t.payouts)}`,
          50,
          y,
          { width: 495 },
        );
        y += 30;
      }
    },
  );
}

/** The yearly earnings summary, for the tutor's taxes: totals per currency. */
export function renderAnnualPdf(
  statements: readonly TutorStatement[],
  meta: { year: string; tutorId: string; settings: DocumentSettings },
): Promise<Buffer> {
  const asOf = new Date(Date.UTC(Number(meta.year), 11, 31, 23, 59, 59));
  return renderPdf(
    {
      title: `Earnings summary ${meta.year} tutor ${meta.tutorId}`,
      date: asOf,
      subject: `annual:${meta.tutorId}:${meta.year}`,
    },
    (doc) => {
      let y = header(doc, {
        title: `Earnings summary ${meta.year}`,
        period: `1 January – 31 December ${meta.year} (UTC)`,
        tutorId: meta.tutorId,
        settings: meta.settings,
        asOf,
      });
      if (statements.length === 0) {
        doc.fontSize(10).text('No earnings in this year.', 50, y);
        return;
      }
      for (const s of statements) {
        const money = (n: number) => formatMinor(n, s.currency, meta.settings.locale);
        const t = s.totals;
        if (
          t.earnings - t.refunds - t.clawbacks + t.adjustments + t.other - t.payouts !==
          s.closing.net - s.opening.net
        ) {
          throw new InvariantViolation(`annual summary of ${meta.tutorId} (${s.currency}) does not add up`);
        }
        doc.font('Bold').fontSize(11).text(s.currency.toUpperCase(), 50, y);
        y += 18;
        const rows: Array<[string, number]> = [
          ['Gross paid by students', t.gross],
          ['Platform commission', t.commission],
          ['Tax on the commission', t.tax],
          ['Earnings (gross less commission and tax)', t.earnings],
          ['Refunds', t.refunds],
          ['Clawbacks', t.clawbacks],
          ['Adjustments', t.adjustments],
          ['Net paid out', t.payouts],
          ['Balance owed to you at the start of the year', s.opening.net],
          ['Balance owed to you at the end of the year', s.closing.net],
        ];
        doc.font('Regular').fontSize(10);
        for (const [label, value] of rows) {
          doc.text(label, 50, y, { width: 330 });
          doc.text(money(value), 380, y, { width: 165, align: 'right' });
          y += 16;
        }
        y += 14;
      }
    },
  );
}
