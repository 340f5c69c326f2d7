import { type Static, Type } from '@sinclair/typebox';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { isKnownCurrency } from './money.js';
import {
  AmountSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  strictObject,
  TextSchema,
  UuidSchema,
} from './schema.js';
import { parseInstant, toIso, validationFailed } from './validate.js';

/**
 * Document numbering: one stream per tenant and series, `docseries-{t}.{seriesId}`, whose events are
 * the documents issued in that series (receipts, invoices, credit notes), each with the next number.
 * A series is a document kind and a calendar year (UTC) of issue, `invoice-2026`, printed
 * `INV-2026-000001`.
 *
 * Why numbers are events and not a read-side counter: an invoice number is a legal fact once issued;
 * it must survive a read-model rebuild, an export/import into another store and a change of the
 * document rules (a counter in a projection would renumber every later invoice on a rebuild that
 * includes a new kind of document). Why the stream makes them gapless: the number is the stream's
 * next revision (checked in evolve), appended with the exact expected revision, so two concurrent
 * issuers cannot both take a number and a crash between deciding and appending leaves no number taken.
 * No duplicates: each document's event id derives from its document id (the command layer's
 * idempotency), so issuing the same document again appends nothing.
 *
 * The event holds the whole document as issued (parties, lines, tax, totals): the PDF and the read
 * model are functions of this event alone, so a document regenerates byte for byte whatever the code
 * or the tenant's settings became since.
 */
export const DOCUMENT_KINDS = ['receipt', 'refund_receipt', 'invoice', 'credit_note'] as const;
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];

/** The printed prefix of each kind's numbers. */
export const DOCUMENT_PREFIX: Readonly<Record<DocumentKind, string>> = Object.freeze({
  receipt: 'RCT',
  refund_receipt: 'RFD',
  invoice: 'INV',
  credit_note: 'CN',
});

/** Bounds that keep one document (its event and its PDF) small. */
export const MAX_DOCUMENT_LINES = 50;
const MAX_ADDRESS_LINES = 6;

const DocumentKindSchema = Type.Union(DOCUMENT_KINDS.map((k) => Type.Literal(k)));

export const PartySchema = strictObject({
  kind: Type.Union([Type.Literal('platform'), Type.Literal('student'), Type.Literal('tutor')]),
  /** The student's or tutor's id; the tenant's id for the platform. */
  id: Type.String({ minLength: 1, maxLength: 64 }),
  name: TextSchema(200),
  address: Type.Array(TextSchema(200), { maxItems: MAX_ADDRESS_LINES }),
  taxId: Nullable(TextSchema(64)),
});
export type Party = Static<typeof PartySchema>;

export const DocumentLineSchema = strictObject({
  description: TextSchema(200),
  /** Net of tax, minor units. */
  amount: AmountSchema,
  taxAmount: AmountSchema,
});
export type DocumentLine = Static<typeof DocumentLineSchema>;

/** A document as the rules draft it, before it has a number. */
export const DocumentDraftSchema = strictObject({
  documentId: UuidSchema,
  kind: DocumentKindSchema,
  issuedAt: InstantSchema,
  /** Who may read it besides finance admins. */
  owner: strictObject({
    kind: Type.Union([Type.Literal('student'), Type.Literal('tutor')]),
    id: EntityIdSchema,
  }),
  issuer: PartySchema,
  recipient: PartySchema,
  currency: CurrencySchema,
  /** BCP 47 locale the amounts and dates are printed in (the tenant's). */
  locale: Type.String({ minLength: 2, maxLength: 35, pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$' }),
  lines: Type.Array(DocumentLineSchema, { minItems: 1, maxItems: MAX_DOCUMENT_LINES }),
  subtotal: AmountSchema,
  tax: AmountSchema,
  total: AmountSchema,
  /** The tax rate applied (basis points) and whether the prices included it; null: no tax applies. */
  taxRate: Nullable(
    strictObject({ rateBps: Type.Integer({ minimum: 0, maximum: 10_000 }), inclusive: Type.Boolean() }),
  ),
  /** How it was paid or where the money went ('wallet', 'card', 'earnings'). */
  settlement: Type.String({ minLength: 1, maxLength: 40 }),
  /** What the document is about (a booking, a top-up, a refund). */
  subject: strictObject({ kind: Type.String({ minLength: 1, maxLength: 40 }), id: EntityIdSchema }),
  /** The event that caused it. */
  source: strictObject({ eventId: UuidSchema, eventType: Type.String({ minLength: 1, maxLength: 80 }) }),
  /** A credit note's invoice (its id and number). */
  references: Nullable(
    strictObject({ documentId: UuidSchema, number: Type.String({ minLength: 1, maxLength: 40 }) }),
  ),
});
export type DocumentDraft = Static<typeof DocumentDraftSchema>;

export const DOCUMENT_SERIES_EVENTS = {
  DocumentIssued: strictObject({
    ...DocumentDraftSchema.properties,
    seriesId: EntityIdSchema,
    /** 1, 2, 3, ... in its series: the stream's revision + 1. */
    sequence: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    /** As printed: `INV-2026-000001`. */
    number: Type.String({ minLength: 1, maxLength: 40 }),
  }),
} as const satisfies EventSchemas;

export type DocumentSeriesEvent = EventsOf<typeof DOCUMENT_SERIES_EVENTS>;
export type DocumentIssued = EventOf<typeof DOCUMENT_SERIES_EVENTS, 'DocumentIssued'>;
export type IssuedDocument = DocumentIssued['data'];

export interface IssueDocument {
  type: 'IssueDocument';
  draft: DocumentDraft;
}
export type DocumentSeriesCommand = IssueDocument;

export interface DocumentSeriesState {
  /** The last sequence issued; 0 before the first. */
  lastSequence: number;
  seriesId: string | null;
}

export const initialDocumentSeriesState = (): DocumentSeriesState => ({ lastSequence: 0, seriesId: null });

/** The series a document belongs to: its kind and the UTC year it is issued in. */
export function seriesIdOf(kind: DocumentKind, issuedAt: string): string {
  const year = new Date(parseInstant(issuedAt, 'issuedAt')).getUTCFullYear();
  return `${kind}-${year}`;
}

export function formatDocumentNumber(kind: DocumentKind, issuedAt: string, sequence: number): string {
  const year = new Date(parseInstant(issuedAt, 'issuedAt')).getUTCFullYear();
  return `${DOCUMENT_PREFIX[kind]}-${year}-${String(sequence).padStart(6, '0')}`;
}

/** Lines, subtotal, tax and total agree (to the minor unit); throws a message otherwise. */
export function documentTotalsProblem(
  doc: Pick<DocumentDraft, 'lines' | 'subtotal' | 'tax' | 'total'>,
): string | null {
  let net = 0;
  let tax = 0;
  for (const line of doc.lines) {
    net += line.amount;
    tax += line.taxAmount;
  }
  if (!Number.isSafeInteger(net) || !Number.isSafeInteger(tax) || !Number.isSafeInteger(net + tax)) {
    return 'document totals overflow';
  }
  if (net !== doc.subtotal) return `lines add up to ${net}, subtotal is ${doc.subtotal}`;
  if (tax !== doc.tax) return `line taxes add up to ${tax}, tax is ${doc.tax}`;
  if (net + tax !== doc.total) return `subtotal + tax is ${net + tax}, total is ${doc.total}`;
  return null;
}

export function decideDocumentSeries(
  command: DocumentSeriesCommand,
  state: DocumentSeriesState,
): DocumentSeriesEvent[] {
  if (command.type !== 'IssueDocument') throw new DomainError('validation_failed', 'unknown series command');
  const draft = command.draft;
  if (!(DOCUMENT_KINDS as readonly string[]).includes(draft.kind)) {
    validationFailed('unknown document kind', { field: 'kind' });
  }
  if (!isKnownCurrency(draft.currency)) validationFailed('unsupported currency', { field: 'currency' });
  const issuedAt = toIso(parseInstant(draft.issuedAt, 'issuedAt'));
  const problem = documentTotalsProblem(draft);
  if (problem) validationFailed(problem, { field: 'total' });
  const seriesId = seriesIdOf(draft.kind, issuedAt);
  if (state.seriesId !== null && state.seriesId !== seriesId) {
    validationFailed(`a ${draft.kind} of ${issuedAt} does not belong to series ${state.seriesId}`, {
      field: 'issuedAt',
    });
  }
  const sequence = state.lastSequence + 1;
  if (!Number.isSafeInteger(sequence)) throw new DomainError('limit_exceeded', 'document series is full');
  return [
    {
      type: 'DocumentIssued',
      data: {
        ...draft,
        issuedAt,
        seriesId,
        sequence,
        number: formatDocumentNumber(draft.kind, issuedAt, sequence),
      },
    },
  ];
}

export function evolveDocumentSeries(
  state: DocumentSeriesState,
  event: DocumentSeriesEvent,
): DocumentSeriesState {
  const doc = event.data;
  invariant(
    doc.sequence === state.lastSequence + 1,
    () =>
      `document ${doc.documentId} has number ${doc.sequence} after ${state.lastSequence}: a gap or a duplicate`,
  );
  invariant(
    state.seriesId === null || state.seriesId === doc.seriesId,
    () => `document ${doc.documentId} of series ${doc.seriesId} in series ${state.seriesId}`,
  );
  const problem = documentTotalsProblem(doc);
  invariant(problem === null, () => `document ${doc.documentId}: ${problem}`);
  return { lastSequence: doc.sequence, seriesId: doc.seriesId };
}

export const documentSeriesDecider: Decider<DocumentSeriesCommand, DocumentSeriesEvent, DocumentSeriesState> =
  {
    initialState: initialDocumentSeriesState,
    decide: decideDocumentSeries,
    evolve: evolveDocumentSeries,
  };
