import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Database } from '../db/database.js';
import type { DocumentKind, IssuedDocument } from '../domain/documentSeries.js';
import { InvariantViolation } from '../domain/errors.js';

/** One document as listed: what it is, whose, its number and total, without its lines. */
export interface DocumentSummary {
  documentId: string;
  kind: DocumentKind;
  number: string;
  seriesId: string;
  sequence: number;
  owner: { kind: 'student' | 'tutor'; id: string };
  issuedAt: string;
  currency: string;
  total: number;
  subject: { kind: string; id: string };
  references: { documentId: string; number: string } | null;
  position: string;
}

export interface StoredDocument {
  summary: DocumentSummary;
  document: IssuedDocument;
  pdfSha256: string;
}

export interface DocumentListQuery {
  owner?: { kind: 'student' | 'tutor'; id: string };
  kind?: DocumentKind;
  /** One series (`invoice-2026`). */
  seriesId?: string;
  /** Numbers starting with this (`INV-2026-00001`); letters, digits and dashes only. */
  numberPrefix?: string;
  /** What the documents are about (`booking` `b1`: its receipt, invoice, refund receipts...). */
  subject?: { kind: string; id: string };
  /** issuedAt >= from, < to. */
  from?: Date;
  to?: Date;
  /** Documents issued before this position (the previous page's cursor). */
  before?: bigint;
  limit: number;
}

interface Row {
  document_id: string;
  kind: DocumentKind;
  series_id: string;
  sequence: number;
  number: string;
  owner_kind: 'student' | 'tutor';
  owner_id: string;
  issued_at: Date;
  currency: string;
  total: number;
  subject_kind: string;
  subject_id: string;
  position: number | string;
  data: IssuedDocument | string;
  pdf_sha256: string;
}

const SUMMARY_COLUMNS = [
  'document_id',
  'kind',
  'series_id',
  'sequence',
  'number',
  'owner_kind',
  'owner_id',
  'issued_at',
  'currency',
  'total',
  'subject_kind',
  'subject_id',
  'position',
  'data',
  'pdf_sha256',
];

const dataOf = (row: Row): IssuedDocument =>
  typeof row.data === 'string' ? (JSON.parse(row.data) as IssuedDocument) : row.data;

function summaryOf(row: Row): DocumentSummary {
  const data = dataOf(row);
  return {
    documentId: row.document_id,
    kind: row.kind,
    number: row.number,
    seriesId: row.series_id,
    sequence: Number(row.sequence),
    owner: { kind: row.owner_kind, id: row.owner_id },
    issuedAt: data.issuedAt,
    currency: row.currency,
    total: Number(row.total),
    subject: { kind: row.subject_kind, id: row.subject_id },
    references: data.references,
    position: String(row.position),
  };
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The documents table (migrations/20261204050000_documents.ts). */
export class DocumentStore {
  constructor(private readonly db: Database) {}

  /**
   * Records an issued document with its PDF. Idempotent by document id; a different document already
   * holding its number in its series is an InvariantViolation (numbering is broken: stop loudly).
   */
  async put(
    tenantId: string,
    document: IssuedDocument,
    position: bigint,
    pdf: Buffer,
    /** A transaction to write in (rebuild.ts replaces a row in one). */
    knex: Knex = this.db.knex,
  ): Promise<void> {
    const inserted = (await knex('documents')
      .insert({
        document_id: document.documentId,
        tenant_id: tenantId,
        kind: document.kind,
        series_id: document.seriesId,
        sequence: document.sequence,
        number: document.number,
        owner_kind: document.owner.kind,
        owner_id: document.owner.id,
        issued_at: new Date(document.issuedAt),
        currency: document.currency,
        total: document.total,
        subject_kind: document.subject.kind,
        subject_id: document.subject.id,
        source_event_id: document.source.eventId,
        references_document_id: document.references?.documentId ?? null,
        position: position.toString(),
        data: JSON.stringify(document),
        pdf,
        pdf_sha256: sha256(pdf),
      })
      .onConflict('document_id')
      .ignore()
      .returning('document_id')) as unknown[];
    if (inserted.length > 0) return;
    const existing = (await knex('documents')
      .where({ document_id: document.documentId })
      .first('tenant_id', 'series_id', 'sequence')) as
      | { tenant_id: string; series_id: string; sequence: number }
      | undefined;
    if (
      !existing ||
      existing.tenant_id !== tenantId ||
      existing.series_id !== document.seriesId ||
      Number(existing.sequence) !== document.sequence
    ) {
      throw new InvariantViolation(
        `document ${document.documentId} is stored as ${JSON.stringify(existing)}, issued as ${document.seriesId} #${document.sequence}`,
      );
    }
  }

  async get(tenantId: string, documentId: string): Promise<StoredDocument | null> {
    const row = (await this.db
      .knex('documents')
      .where({ tenant_id: tenantId, document_id: documentId })
      .first(SUMMARY_COLUMNS)) as Row | undefined;
    return row ? { summary: summaryOf(row), document: dataOf(row), pdfSha256: row.pdf_sha256 } : null;
  }

  async pdf(tenantId: string, documentId: string): Promise<{ summary: DocumentSummary; pdf: Buffer } | null> {
    const row = (await this.db
      .knex('documents')
      .where({ tenant_id: tenantId, document_id: documentId })
      .first([...SUMMARY_COLUMNS, 'pdf'])) as (Row & { pdf: Buffer | Uint8Array }) | undefined;
    return row ? { summary: summaryOf(row), pdf: Buffer.from(row.pdf) } : null;
  }

  async list(tenantId: string, query: DocumentListQuery): Promise<DocumentSummary[]> {
    const q = this.db.knex('documents').where({ tenant_id: tenantId });
    if (query.owner) q.andWhere({ owner_kind: query.owner.kind, owner_id: query.owner.id });
    if (query.kind) q.andWhere({ kind: query.kind });
    if (query.seriesId) q.andWhere({ series_id: query.seriesId });
    if (query.subject) q.andWhere({ subject_kind: query.subject.kind, subject_id: query.subject.id });
    if (query.numberPrefix) {
      // The route allows letters, digits and dashes only, so the prefix has no LIKE wildcard in it.
      if (!/^[A-Za-z0-9-]{1,40}$/.test(query.numberPrefix)) {
        throw new InvariantViolation(`unsafe number prefix ${JSON.stringify(query.numberPrefix)}`);
      }
      q.andWhere('number', 'like', `${query.numberPrefix.toUpperCase()}%`);
    }
    if (query.from) q.andWhere('issued_at', '>=', query.from);
    if (query.to) q.andWhere('issued_at', '<', query.to);
    if (query.before !== undefined) q.andWhere('position', '<', query.before.toString());
    const rows = (await q.orderBy('position', 'desc').limit(query.limit).select(SUMMARY_COLUMNS)) as Row[];
    return rows.map(summaryOf);
  }

  /** Every number of a series, in order (tests and the numbering check). */
  async sequences(tenantId: string, seriesId: string): Promise<number[]> {
    const rows = (await this.db
      .knex('documents')
      .where({ tenant_id: tenantId, series_id: seriesId })
      .orderBy('sequence')
      .select('sequence')) as Array<{ sequence: number }>;
    return rows.map((r) => Number(r.sequence));
  }
}
