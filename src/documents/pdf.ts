import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import PDFDocument from 'pdfkit';
import type { DocumentKind, IssuedDocument, Party } from '../domain/documentSeries.js';
import { InvariantViolation } from '../domain/errors.js';
import { currencyExponent } from '../domain/money.js';

/**
 * Documents as PDF (pdfkit, DejaVu Sans from the dejavu-fonts-ttf package so every script a name or an
 * address may hold prints). Everything on the page, and the PDF's own dates, come from the issued
 * document (its event), never from the clock: rendering the same document again gives the same bytes
 * (with the same pdfkit, fonts and ICU; the stored bytes are what was issued).
 */
const require = createRequire(import.meta.url);
const FONT_REGULAR = readFileSync(require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf'));
const FONT_BOLD = readFileSync(require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf'));

/** A document's PDF is at most this big (50 lines fit well below it); bigger is a bug, loudly. */
export const MAX_DOCUMENT_PDF_BYTES = 512 * 1024;

export const DOCUMENT_TITLES: Readonly<Record<DocumentKind, string>> = Object.freeze({
  receipt: 'Receipt',
  refund_receipt: 'Refund receipt',
  invoice: 'Invoice',
  credit_note: 'Credit note',
});

const SETTLEMENT: Readonly<Record<string, string>> = {
  wallet: 'Paid from the WeMaster wallet',
  card: 'Paid by card',
  earnings: 'Settled against the tutor’s earnings',
};

/** Minor units formatted for the locale with Intl (the currency's own number of decimals). */
export function formatMinor(amount: number, currency: string, locale: string): string {
  const exponent = currencyExponent(currency);
  const major = amount / 10 ** exponent;
  return new Intl.NumberFormat(locale, {
    style: 'currency',
    currency: currency.toUpperCase(),
    minimumFractionDigits: exponent,
    maximumFractionDigits: exponent,
  }).format(major);
}

export function formatDate(iso: string, locale: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeZone: 'UTC' }).format(new Date(iso));
}

/** Renders a PDF from a pdfkit drawing function, with the document's date as the PDF's dates. */
export function renderPdf(
  meta: { title: string; date: Date; subject: string; maxBytes?: number },
  draw: (doc: PDFKit.PDFDocument) => void,
): Promise<Buffer> {
  const maxBytes = meta.maxBytes ?? MAX_DOCUMENT_PDF_BYTES;
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({
      size: 'A4',
      margin: 50,
      info: {
        Title: meta.title,
        Subject: meta.subject,
        Author: 'WeMaster Ledger',
        Producer: 'WeMaster Ledger',
        Creator: 'WeMaster Ledger',
        CreationDate: meta.date,
        ModDate: meta.date,
      },
    });
    const chunks: Buffer[] = [];
    let size = 0;
    doc.on('data', (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
    });
    doc.on('error', reject);
    doc.on('end', () => {
      if (size > maxBytes) {
        reject(new InvariantViolation(`${meta.title}: PDF of ${size} bytes is over ${maxBytes}`));
        return;
      }
      resolve(Buffer.concat(chunks));
    });
    doc.registerFont('Regular', FONT_REGULAR);
    doc.registerFont('Bold', FONT_BOLD);
    doc.font('Regular');
    try {
      draw(doc);
    } catch (error) {
      reject(error);
      return;
    }
    doc.end();
  });
}

function partyBlock(doc: PDFKit.PDFDocument, heading: string, party: Party, x: number, y: number): void {
  doc.font('Bold').fontSize(9).text(heading, x, y, { width: 230 });
  doc.font('Regular').fontSize(10).text(party.name, { width: 230 });
  for (const line of party.address) doc.text(line, { width: 230 });
  if (party.taxId) doc.text(`Tax id: ${party.taxId}`, { width: 230 });
  doc.fontSize(8).fillColor('#555555').text(`${party.kind} ${party.id}`, { width: 230 }).fillColor('black');
}

/** A receipt, invoice or credit note as a one-page business document. */
export function renderDocumentPdf(document: IssuedDocument): Promise<Buffer> {
  const title = DOCUMENT_TITLES[document.kind];
  const money = (amount: number) => formatMinor(amount, document.currency, document.locale);
  return renderPdf(
    { title: `${title} ${document.number}`, date: new Date(document.issuedAt), subject: document.documentId },
    (doc) => {
      const left = 50;
      const right = 545;
      doc.font('Bold').fontSize(20).text(title, left, 50);
      doc.font('Regular').fontSize(10);
      doc.text(`Number: ${document.number}`, 330, 55, { width: 215, align: 'right' });
      doc.text(`Date: ${formatDate(document.issuedAt, document.locale)}`, 330, 70, {
        width: 215,
        align: 'right',
      });
      if (document.references) {
        doc.text(`Corrects invoice: ${document.references.number}`, 330, 85, { width: 215, align: 'right' });
      }
      partyBlock(doc, 'From', document.issuer, left, 120);
      partyBlock(
        doc,
        document.kind === 'invoice' || document.kind === 'credit_note' ? 'Bill to' : 'To',
        document.recipient,
        315,
        120,
      );

      let y = 240;
      const cols = { description: left, net: 330, tax: 400, amount: 470 };
      doc.font('Bold').fontSize(9);
      doc.text('Description', cols.description, y, { width: 270 });
      doc.text('Net', cols.net, y, { width: 65, align: 'right' });
      doc.text('Tax', cols.tax, y, { width: 65, align: 'right' });
      doc.text('Amount', cols.amount, y, { width: 75, align: 'right' });
      y += 15;
      doc.moveTo(left, y).lineTo(right, y).stroke();
      y += 6;
      doc.font('Regular').fontSize(9);
      for (const line of document.lines) {
        const height = doc.heightOfString(line.description, { width: 270 });
        doc.text(line.description, cols.description, y, { width: 270 });
        doc.text(money(line.amount), cols.net, y, { width: 65, align: 'right' });
        doc.text(money(line.taxAmount), cols.tax, y, { width: 65, align: 'right' });
        doc.text(money(line.amount + line.taxAmount), cols.amount, y, { width: 75, align: 'right' });
        y += Math.max(height, 12) + 4;
      }
      doc.moveTo(left, y).lineTo(right, y).stroke();
      y += 8;
      const rate = document.taxRate
        ? ` (${(document.taxRate.rateBps / 100).toLocaleString(document.locale)}%${document.taxRate.inclusive ? ', included' : ''})`
        : '';
      const totals: Array<[string, string]> = [
        ['Subtotal', money(document.subtotal)],
        [`Tax${rate}`, money(document.tax)],
        [`Total (${document.currency.toUpperCase()})`, money(document.total)],
      ];
      for (const [label, value] of totals) {
        doc.font(label.startsWith('Total') ? 'Bold' : 'Regular').fontSize(10);
        doc.text(label, 300, y, { width: 160, align: 'right' });
        doc.text(value, 465, y, { width: 80, align: 'right' });
        y += 16;
      }
      y += 14;
      doc.font('Regular').fontSize(9);
      doc.text(SETTLEMENT[document.settlement] ?? document.settlement, left, y, { width: right - left });
      if (!document.taxRate) doc.text('No tax charged.', { width: right - left });
      doc
        .fontSize(7)
        .fillColor('#555555')
        .text(
          `Document ${document.documentId} · ${document.subject.kind} ${document.subject.id} · event ${document.source.eventId}`,
          left,
          780,
          {
            width: right - left,
            align: 'center',
          },
        )
        .fillColor('black');
    },
  );
}
