import type { Registry } from 'prom-client';
import type { CheckpointStore } from '../commands/checkpointStore.js';
import type { CommandHandler } from '../commands/commandHandler.js';
import type { Logger } from '../commands/logger.js';
import {
  type ProcessManagerHandle,
  type ProcessManagerRunnerOptions,
  startProcessManagerRunner,
} from '../commands/processManagerRunner.js';
import { classifyStepFailure } from '../commands/processManagers.js';
import { type CommissionInvoicing, commissionInvoicingOf } from '../domain/billingSettings.js';
import {
  type DocumentDraft,
  documentSeriesDecider,
  type IssuedDocument,
  seriesIdOf,
} from '../domain/documentSeries.js';
import { InvariantViolation } from '../domain/errors.js';
import { decodeEvent, decodeEventOf } from '../domain/events.js';
import { billingStream, documentSeriesStream } from '../domain/streams.js';
import { type EventStore, type RecordedEvent, StreamNotFoundError } from '../eventstore/port.js';
import { renderDocumentPdf } from './pdf.js';
import {
  DOCUMENT_SOURCE_TYPES,
  type DocumentSettings,
  defaultDocumentSettings,
  documentsFor,
} from './rules.js';
import type { DocumentStore } from './store.js';

/**
 * The document issuer: a checkpointed consumer of the event log (the process-manager runner) that, for
 * each money event the rules name, issues its documents in order: appends DocumentIssued to the
 * document's series stream through the command handler (the next number, exact expected revision,
 * event id from the document id) and stores the document with its PDF. Then the checkpoint moves.
 *
 * Exactly once in effect, whatever crashes: a document issued before a crash is found again by its
 * event id (the same number, nothing appended), storing it is idempotent by document id, and the
 * checkpoint is saved only after every document of the event is stored. Several issuers (one per app
 * process) may run at once: the series stream's expected revision makes them take turns per number.
 * Events are handled in log order, so an invoice is always stored before a credit note that corrects it.
 */
export const DOCUMENT_ISSUER_SUBSCRIBER = 'document-issuer';

/** Who issues documents, in their events' metadata. */
export const ISSUER_ACTOR = { id: 'document-issuer', role: 'service' } as const;

export interface DocumentIssuerOptions {
  store: EventStore;
  checkpoints: CheckpointStore;
  handler: CommandHandler;
  documents: DocumentStore;
  /** The tenant's details for its documents at the time of issue (defaults: the tenant id, en-US). */
  settings?: (tenantId: string) => Promise<DocumentSettings>;
  name?: string;
  logger?: Logger;
  registry?: Registry;
  tuning?: Pick<
    ProcessManagerRunnerOptions,
    'maxAttemptsPerEvent' | 'backoff' | 'restartDelayMs' | 'maxBuffered'
  >;
}

export interface DocumentIssuing {
  /** Issues and stores every document of one event (idempotent). */
  handle(event: RecordedEvent): Promise<IssuedDocument[]>;
}

export function documentIssuing(
  options: Omit<DocumentIssuerOptions, 'checkpoints' | 'name' | 'tuning'>,
): DocumentIssuing {
  const settingsFor = options.settings ?? (async (tenantId: string) => defaultDocumentSettings(tenantId));
  return {
    async handle(recorded) {
      const event = decodeEvent(recorded);
      const invoicing = await commissionInvoicingAt(options.store, event.tenantId, recorded.position);
      const planned = documentsFor(event, {
        tenantId: event.tenantId,
        settings: await settingsFor(event.tenantId),
        commissionInvoicing: invoicing.mode,
      });
      const issued: IssuedDocument[] = [];
      for (const { draft: partial, refersTo } of planned) {
        let references: DocumentDraft['references'] = null;
        if (refersTo !== null) {
          const invoice = await options.documents.get(event.tenantId, refersTo);
          // A booking captured under monthly invoicing has no invoice of its own: its month's
          // invoice is issued at month end, and the credit note with it (monthlyCommission.ts).
          if (!invoice && invoicing.everMonthly) continue;
          // The invoice's event comes earlier in the log and was stored before this one was handled.
          if (!invoice) {
            throw new InvariantViolation(
              `${partial.kind} ${partial.documentId} corrects document ${refersTo}, which was never issued`,
            );
          }
          references = { documentId: refersTo, number: invoice.summary.number };
        }
        const draft: DocumentDraft = { ...partial, references };
        const { document, position } = await issueDocument(options.handler, event.tenantId, draft, {
          eventId: event.id,
          correlationId: event.metadata.correlationId,
        });
        const pdf = await renderDocumentPdf(document);
        await options.documents.put(event.tenantId, document, position, pdf);
        issued.push(document);
      }
      return issued;
    },
  };
}

/**
 * The commission invoicing in force at a log position (the billing settings last updated before it),
 * and whether it was ever monthly up to there. A function of the log, so the issuer and the month-end
 * step (monthlyCommission.ts) agree on every capture whatever their lag.
 */
export async function commissionInvoicingAt(
  store: EventStore,
  tenantId: string,
  position: bigint,
): Promise<{ mode: CommissionInvoicing; everMonthly: boolean }> {
  let history: RecordedEvent[];
  try {
    history = await store.readStream(billingStream(tenantId), { maxCount: MAX_BILLING_HISTORY });
  } catch (error) {
    if (error instanceof StreamNotFoundError) return { mode: 'per_capture', everMonthly: false };
    throw error;
  }
  let mode: CommissionInvoicing = 'per_capture';
  let everMonthly = false;
  for (const recorded of history) {
    if (recorded.position >= position) break;
    const event = decodeEventOf(recorded, ['BillingSettingsUpdated']);
    mode = commissionInvoicingOf(event.data.settings);
    everMonthly ||= mode === 'monthly';
  }
  if (history.length === MAX_BILLING_HISTORY && (history.at(-1)?.position ?? 0n) < position) {
    throw new InvariantViolation(
      `billing settings of ${tenantId} changed more than ${MAX_BILLING_HISTORY} times`,
    );
  }
  return { mode, everMonthly };
}

/** Billing settings change rarely; a tenant that changed them this often is refused loudly. */
const MAX_BILLING_HISTORY = 10_000;

/**
 * Issues one document in its series: the next number, or the number it already has (same document id,
 * same event id: nothing appended, `replayed`). Returns the issued document and its event's position.
 */
export async function issueDocument(
  handler: CommandHandler,
  tenantId: string,
  draft: DocumentDraft,
  cause: { eventId: string; correlationId: string },
): Promise<{ document: IssuedDocument; position: bigint; replayed: boolean }> {
  const result = await handler.handle(
    documentSeriesDecider,
    documentSeriesStream(tenantId, seriesIdOf(draft.kind, draft.issuedAt)),
    { type: 'IssueDocument', draft },
    {
      tenantId,
      actor: ISSUER_ACTOR,
      idempotencyKey: `document:${draft.documentId}`,
      correlationId: cause.correlationId,
      causationId: cause.eventId,
    },
    // The document is fully determined by its id (kind + subject) and its source event.
    { commandType: 'IssueDocument', payloadHash: `${draft.documentId}:${cause.eventId}` },
  );
  const appended = result.events[0];
  if (result.events.length !== 1 || appended?.type !== 'DocumentIssued') {
    throw new InvariantViolation(`issuing ${draft.documentId} appended ${result.events.length} events`);
  }
  return {
    document: appended.data as unknown as IssuedDocument,
    position: result.position,
    replayed: result.replayed,
  };
}

export function startDocumentIssuer(options: DocumentIssuerOptions): ProcessManagerHandle {
  const issuing = documentIssuing(options);
  return startProcessManagerRunner({
    name: options.name ?? DOCUMENT_ISSUER_SUBSCRIBER,
    store: options.store,
    checkpoints: options.checkpoints,
    filter: { eventTypes: DOCUMENT_SOURCE_TYPES },
    handle: async (event) => {
      await issuing.handle(event);
    },
    classify: classifyStepFailure,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
    ...options.tuning,
  });
}
