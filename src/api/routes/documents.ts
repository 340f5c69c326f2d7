import { Type } from 'typebox';
import type { DocumentListQuery, DocumentStore, DocumentSummary } from '../../documents/store.js';
import { DOCUMENT_KINDS, type DocumentKind } from '../../domain/documentSeries.js';
import type { Principal } from '../auth.js';
import { ApiError } from '../problem.js';
import { instantParam } from '../requestValues.js';
import { errorResponses } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * Receipts, invoices and credit notes (src/documents): listed, read and downloaded as PDF. A document is
 * visible to its owner (the student of a receipt, the tutor of an invoice or credit note) and to finance
 * admins, nobody else: a student or tutor asking for someone else's document gets 404 (ids cannot be
 * probed), and may list only their own.
 */
const strict = { additionalProperties: false } as const;
const Instant = Type.String({ format: 'date-time', maxLength: 40 });
const Position = Type.String({ pattern: '^(0|[1-9][0-9]{0,18})$', maxLength: 19 });
const Limit = Type.String({ pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', maxLength: 3 });
const OWNER_PATTERN = '^(student|tutor):[A-Za-z0-9_-]{1,64}$';
const Kind = Type.Union(DOCUMENT_KINDS.map((k) => Type.Literal(k)));
const DocumentIdParam = Type.String({
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
  description: 'document id (UUID)',
});

const ListQuery = Type.Object(
  {
    owner: Type.Optional(
      Type.String({ pattern: OWNER_PATTERN, maxLength: 72, description: 'student:{id} or tutor:{id}' }),
    ),
    kind: Type.Optional(Kind),
    series: Type.Optional(
      Type.String({
        pattern: `^(${DOCUMENT_KINDS.join('|')})-[0-9]{4}$`,
        maxLength: 20,
        description: 'one series: {kind}-{year}, e.g. invoice-2026',
      }),
    ),
    number: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9-]{1,40}$',
        maxLength: 40,
        description: 'numbers starting with this, e.g. INV-2026-000001 or INV-2026',
      }),
    ),
    subject: Type.Optional(
      Type.String({
        pattern: '^[a-z][a-z-]{0,39}:[A-Za-z0-9_-]{1,64}$',
        maxLength: 105,
        description: 'what the documents are about, e.g. booking:b1, topup:t1, commission-month:2026-03-eur',
      }),
    ),
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    cursor: Type.Optional(Position),
    limit: Type.Optional(Limit),
  },
  strict,
);

const Party = Type.Object(
  {
    kind: Type.String(),
    id: Type.String(),
    name: Type.String(),
    address: Type.Array(Type.String()),
    taxId: Type.Union([Type.String(), Type.Null()]),
  },
  strict,
);
const Reference = Type.Union([
  Type.Object({ documentId: Type.String(), number: Type.String() }, strict),
  Type.Null(),
]);
const summaryFields = {
  documentId: Type.String(),
  kind: Kind,
  number: Type.String({ description: 'as printed, e.g. INV-2026-000001' }),
  seriesId: Type.String(),
  sequence: Type.Integer({ description: '1, 2, 3, ... in its series, without gaps' }),
  owner: Type.Object({ kind: Type.String(), id: Type.String() }, strict),
  issuedAt: Type.String(),
  currency: Type.String(),
  total: Type.Integer({ description: 'minor units' }),
  subject: Type.Object({ kind: Type.String(), id: Type.String() }, strict),
  references: Reference,
  position: Type.String({ description: 'global position of the DocumentIssued event' }),
};
const DocumentSummarySchema = Type.Object(summaryFields, { ...strict, $id: 'DocumentSummary' });
const DocumentListSchema = Type.Object(
  {
    items: Type.Array(Type.Ref('DocumentSummary')),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
  },
  { ...strict, $id: 'DocumentList' },
);
const DocumentSchema = Type.Object(
  {
    ...summaryFields,
    issuer: Party,
    recipient: Party,
    locale: Type.String(),
    lines: Type.Array(
      Type.Object({ description: Type.String(), amount: Type.Integer(), taxAmount: Type.Integer() }, strict),
    ),
    subtotal: Type.Integer(),
    tax: Type.Integer(),
    taxRate: Type.Union([
      Type.Object({ rateBps: Type.Integer(), inclusive: Type.Boolean() }, strict),
      Type.Null(),
    ]),
    settlement: Type.String(),
    source: Type.Object({ eventId: Type.String(), eventType: Type.String() }, strict),
    pdfSha256: Type.String({ description: 'SHA-256 of the stored PDF' }),
  },
  { ...strict, $id: 'Document' },
);

const READERS = [{ role: 'finance_admin' }, { role: 'student' }, { role: 'tutor' }] as const;
const DEFAULT_LIMIT = 50;

/** The owners a caller may read documents of; null: every owner (finance admins). */
function readableOwners(principal: Principal): Array<{ kind: 'student' | 'tutor'; id: string }> | null {
  if (principal.roles.includes('finance_admin')) return null;
  const owners: Array<{ kind: 'student' | 'tutor'; id: string }> = [];
  if (principal.roles.includes('student')) owners.push({ kind: 'student', id: principal.sub });
  if (principal.roles.includes('tutor')) owners.push({ kind: 'tutor', id: principal.sub });
  return owners;
}

function mayRead(principal: Principal, summary: DocumentSummary): boolean {
  const owners = readableOwners(principal);
  return owners === null || owners.some((o) => o.kind === summary.owner.kind && o.id === summary.owner.id);
}

function subjectOf(value: string): { kind: string; id: string } {
  const at = value.indexOf(':');
  return { kind: value.slice(0, at), id: value.slice(at + 1) };
}

export function documentRoutes(options: { documents: DocumentStore }): RouteModule {
  const { documents } = options;
  return async (app, { kit }) => {
    app.addSchema(DocumentSummarySchema);
    app.addSchema(DocumentListSchema);
    app.addSchema(DocumentSchema);

    app.get(
      '/documents',
      {
        config: { policy: READERS },
        schema: {
          operationId: 'listDocuments',
          tags: ['documents'],
          summary:
            'Receipts, invoices and credit notes, newest first; students and tutors see their own, finance admins any (owner=student:{id}|tutor:{id}); filters: kind, series, number prefix, subject, issue time',
          querystring: ListQuery,
          response: { 200: Type.Ref('DocumentList'), ...errorResponses() },
        },
      },
      async (request) => {
        const principal = kit.principal(request);
        const q = request.query;
        const owners = readableOwners(principal);
        let owner: DocumentListQuery['owner'];
        if (q.owner !== undefined) {
          const [kind, id] = q.owner.split(':') as ['student' | 'tutor', string];
          owner = { kind, id };
          if (owners !== null && !owners.some((o) => o.kind === kind && o.id === id)) {
            throw new ApiError('forbidden', 'you may only list your own documents');
          }
        } else if (owners !== null) {
          if (owners.length !== 1) {
            throw new ApiError(
              'validation_failed',
              'name the owner: owner=student:{you} or owner=tutor:{you}',
            );
          }
          owner = owners[0];
        }
        // The domain's parser, within years 1-9999: new Date() took year 0 (Postgres refused it: a 500)
        // and leap seconds.
        const from = q.from === undefined ? undefined : instantParam(q.from, 'querystring/from');
        const to = q.to === undefined ? undefined : instantParam(q.to, 'querystring/to');
        if (from && to && to < from) throw new ApiError('validation_failed', 'to must not be before from');
        const limit = q.limit === undefined ? DEFAULT_LIMIT : Number(q.limit);
        const items = await documents.list(principal.tenantId, {
          ...(owner ? { owner } : {}),
          ...(q.kind ? { kind: q.kind as DocumentKind } : {}),
          ...(q.series ? { seriesId: q.series } : {}),
          ...(q.number ? { numberPrefix: q.number } : {}),
          ...(q.subject ? { subject: subjectOf(q.subject) } : {}),
          ...(from ? { from } : {}),
          ...(to ? { to } : {}),
          ...(q.cursor !== undefined ? { before: BigInt(q.cursor) } : {}),
          limit,
        });
        return { items, nextCursor: items.length === limit ? items.at(-1)!.position : null };
      },
    );

    app.get(
      '/documents/:documentId.pdf',
      {
        config: { policy: READERS },
        schema: {
          operationId: 'getDocumentPdf',
          tags: ['documents'],
          summary: 'A document as PDF (the bytes stored when it was issued)',
          params: Type.Object({ documentId: DocumentIdParam }, strict),
          produces: ['application/pdf'],
          response: {
            200: {
              description: 'application/pdf',
              content: { 'application/pdf': { schema: Type.String({ format: 'binary' }) } },
            },
            ...errorResponses(),
          },
        },
      },
      async (request, reply) => {
        const principal = kit.principal(request);
        const found = await documents.pdf(principal.tenantId, request.params.documentId);
        if (!found || !mayRead(principal, found.summary)) throw new ApiError('not_found', 'no such document');
        return (
          reply
            .header('content-type', 'application/pdf')
            .header('content-disposition', `inline; filename="${found.summary.number}.pdf"`)
            // The 200 schema describes the bytes for OpenAPI; fastify sends a Buffer as is.
            .send(found.pdf as unknown as string)
        );
      },
    );

    app.get(
      '/documents/:documentId',
      {
        config: { policy: READERS },
        schema: {
          operationId: 'getDocument',
          tags: ['documents'],
          summary: 'One document: parties, lines, tax, totals, what it corrects and what caused it',
          params: Type.Object({ documentId: DocumentIdParam }, strict),
          response: { 200: Type.Ref('Document'), ...errorResponses() },
        },
      },
      async (request) => {
        const principal = kit.principal(request);
        const found = await documents.get(principal.tenantId, request.params.documentId);
        if (!found || !mayRead(principal, found.summary)) throw new ApiError('not_found', 'no such document');
        const { summary, document, pdfSha256 } = found;
        return {
          ...summary,
          issuer: document.issuer,
          recipient: document.recipient,
          locale: document.locale,
          lines: document.lines,
          subtotal: document.subtotal,
          tax: document.tax,
          taxRate: document.taxRate,
          settlement: document.settlement,
          source: document.source,
          pdfSha256,
        };
      },
    );
  };
}
