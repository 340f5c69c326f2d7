import { isDeepStrictEqual } from 'node:util';
import type { Database } from '../db/database.js';
import { decodeEventOf } from '../domain/events.js';
import type { EventStore } from '../eventstore/port.js';
import { renderDocumentPdf } from './pdf.js';
import { type DocumentStore, sha256 } from './store.js';

const PAGE = 500;

export interface DocumentsRebuildReport {
  /** DocumentIssued events read: every document ever numbered. */
  issued: number;
  /** Stored as the events say, with the PDF they render to. */
  unchanged: number;
  /** Issued but not stored (the issuer has not reached it, or the row was lost). */
  missing: number;
  /** Stored with other content or another PDF than the event renders to. */
  differing: number;
  /** Stored with no DocumentIssued event behind them. */
  orphans: number;
  /** True when missing, differing and orphaned rows were written, replaced and deleted. */
  repaired: boolean;
}

/**
 * The documents table checked against (and, with `repair`, rebuilt from) the docseries streams
 * (docs/documents.md): each DocumentIssued event carries the whole document as numbered, and its PDF
 * renders byte for byte from it, so the table is a read model of the streams. Safe beside a running
 * issuer: rows are written idempotently by document id and replaced one at a time in a transaction.
 * Memory: the ids of the documents seen (about 100 bytes each).
 */
export async function rebuildDocuments(options: {
  db: Database;
  store: EventStore;
  documents: DocumentStore;
  repair: boolean;
  onProgress?: (report: DocumentsRebuildReport) => void;
}): Promise<DocumentsRebuildReport> {
  const { db, store, documents, repair } = options;
  const report: DocumentsRebuildReport = {
    issued: 0,
    unchanged: 0,
    missing: 0,
    differing: 0,
    orphans: 0,
    repaired: repair,
  };
  const seen = new Set<string>();
  let after: bigint | undefined;
  for (;;) {
    const page = await store.readAll({
      ...(after === undefined ? {} : { after }),
      maxCount: PAGE,
      filter: { eventTypes: ['DocumentIssued'] },
    });
    for (const recorded of page) {
      const event = decodeEventOf(recorded, ['DocumentIssued']);
      const document = event.data;
      report.issued++;
      seen.add(`${event.tenantId}\u0000${document.documentId}`);
      const pdf = await renderDocumentPdf(document);
      const stored = await documents.get(event.tenantId, document.documentId);
      if (stored === null) {
        report.missing++;
        if (repair) await documents.put(event.tenantId, document, recorded.position, pdf);
      } else if (
        stored.pdfSha256 !== sha256(pdf) ||
        !isDeepStrictEqual(stored.document, document) ||
        stored.summary.position !== recorded.position.toString()
      ) {
        report.differing++;
        if (repair) {
          await db.knex.transaction(async (trx) => {
            await trx('documents')
              .where({ tenant_id: event.tenantId, document_id: document.documentId })
              .delete();
            await documents.put(event.tenantId, document, recorded.position, pdf, trx);
          });
        }
      } else {
        report.unchanged++;
      }
      after = recorded.position;
    }
    options.onProgress?.(report);
    if (page.length < PAGE) break;
  }
  let lastId: string | null = null;
  for (;;) {
    const q = db.knex('documents').orderBy(['document_id']).limit(PAGE).select('tenant_id', 'document_id');
    if (lastId !== null) q.where('document_id', '>', lastId);
    const rows = (await q) as Array<{ tenant_id: string; document_id: string }>;
    for (const row of rows) {
      if (seen.has(`${row.tenant_id}\u0000${row.document_id}`)) continue;
      report.orphans++;
      if (repair) {
        await db.knex('documents').where({ tenant_id: row.tenant_id, document_id: row.document_id }).delete();
      }
    }
    if (rows.length < PAGE) break;
    lastId = rows.at(-1)!.document_id;
  }
  return report;
}
