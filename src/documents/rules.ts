import type { CommissionInvoicing } from '../domain/billingSettings.js';
import type { DocumentDraft, DocumentKind, DocumentLine, Party } from '../domain/documentSeries.js';
import type { DecodedEvent, LedgerEventType } from '../domain/events.js';
import { deterministicId } from '../domain/ids.js';
import type { CommissionTax } from '../domain/tax.js';

/**
 * Which money events produce which documents: one entry per event type, each a pure function of the
 * decoded event (and the tenant's document settings at the time it is issued). Adding a flow (course
 * purchases, subscription payments) is one more entry here; the issuer, numbering, storage, PDF and
 * routes need nothing new.
 *
 * Document ids derive from the tenant, the kind and what the document is about (`booking:{id}`,
 * `refund:{id}`, ...), so a credit note can name the invoice it corrects without looking anything up,
 * and issuing the same document twice is the same document.
 */

/** The tenant's details as printed on its documents. */
export interface DocumentSettings {
  legalName: string;
  address: string[];
  taxId: string | null;
  locale: string;
}

export const defaultDocumentSettings = (tenantId: string): DocumentSettings => ({
  legalName: tenantId,
  address: [],
  taxId: null,
  locale: 'en-US',
});

/** A draft, and for a credit note the invoice it corrects (the issuer fills in that invoice's number). */
export interface PlannedDocument {
  draft: Omit<DocumentDraft, 'references'>;
  refersTo: string | null;
}

export interface RuleContext {
  tenantId: string;
  settings: DocumentSettings;
  /**
   * The tenant's commission invoicing in force at the event's log position (billing settings): monthly
   * leaves the capture's invoice, and the credit notes of refunds of such captures, to the month's
   * step (monthlyCommission.ts). Absent: per capture.
   */
  commissionInvoicing?: CommissionInvoicing;
}

export const documentId = (tenantId: string, kind: DocumentKind, subject: string): string =>
  deterministicId('document', tenantId, kind, subject);

type Rule<T extends LedgerEventType> = (event: DecodedEvent<T>, ctx: RuleContext) => PlannedDocument[];
type RuleTable = { [T in LedgerEventType]?: Rule<T> };

const platform = (ctx: RuleContext): Party => ({
  kind: 'platform',
  id: ctx.tenantId,
  name: ctx.settings.legalName,
  address: [...ctx.settings.address],
  taxId: ctx.settings.taxId,
});
const person = (kind: 'student' | 'tutor', id: string): Party => ({
  kind,
  id,
  name: `${kind === 'student' ? 'Student' : 'Tutor'} ${id}`,
  address: [],
  taxId: null,
});
const untaxed = (description: string, amount: number): DocumentLine => ({
  description,
  amount,
  taxAmount: 0,
});

/** The rate a commission tax was booked at, as a document prints it; null: untaxed. */
const rateOf = (tax: CommissionTax | undefined) =>
  tax ? { rateBps: tax.rateBps, inclusive: tax.inclusive } : null;

interface Plan {
  kind: DocumentKind;
  taxRate?: { rateBps: number; inclusive: boolean } | null;
  subject: { kind: string; id: string };
  owner: { kind: 'student' | 'tutor'; id: string };
  issuer: Party;
  recipient: Party;
  lines: DocumentLine[];
  settlement: string;
  refersTo?: string | null;
}

function plan(event: DecodedEvent, ctx: RuleContext, p: Plan, currency: string): PlannedDocument {
  const subtotal = p.lines.reduce((sum, l) => sum + l.amount, 0);
  const tax = p.lines.reduce((sum, l) => sum + l.taxAmount, 0);
  return {
    draft: {
      documentId: documentId(ctx.tenantId, p.kind, `${p.subject.kind}:${p.subject.id}`),
      kind: p.kind,
      issuedAt: event.metadata.occurredAt,
      owner: p.owner,
      issuer: p.issuer,
      recipient: p.recipient,
      currency,
      locale: ctx.settings.locale,
      lines: p.lines,
      subtotal,
      tax,
      total: subtotal + tax,
      taxRate: p.taxRate ?? null,
      settlement: p.settlement,
      subject: p.subject,
      source: { eventId: event.id, eventType: event.type },
    },
    refersTo: p.refersTo ?? null,
  };
}

/** The commission invoice of a booking's capture (or late-cancellation fee): what credit notes refer to. */
export const bookingInvoiceId = (tenantId: string, bookingId: string): string =>
  documentId(tenantId, 'invoice', `booking:${bookingId}`);

/** The parties and rate as the per-capture documents print them (monthlyCommission.ts prints the same). */
export const platformParty = (ctx: RuleContext): Party => platform(ctx);
export const tutorParty = (tutorId: string): Party => person('tutor', tutorId);
export const taxRateOf = rateOf;

/** Receipt of a booking's payment and the platform's commission invoice to the tutor. */
function bookingCharge(
  event: DecodedEvent<'WalletHoldCaptured' | 'WalletHoldReleased'>,
  ctx: RuleContext,
  charged: number,
  commission: number,
  tax: CommissionTax | undefined,
  what: string,
): PlannedDocument[] {
  const d = event.data;
  const booking = { kind: 'booking', id: d.bookingId };
  const out = [
    plan(
      event,
      ctx,
      {
        kind: 'receipt',
        subject: booking,
        owner: { kind: 'student', id: d.studentId },
        issuer: platform(ctx),
        recipient: person('student', d.studentId),
        lines: [untaxed(`${what}: booking ${d.bookingId} with tutor ${d.tutorId}`, charged)],
        settlement: 'wallet',
      },
      d.currency,
    ),
  ];
  if (commission + (tax?.amount ?? 0) > 0 && ctx.commissionInvoicing !== 'monthly') {
    out.push(
      plan(
        event,
        ctx,
        {
          kind: 'invoice',
          subject: booking,
          owner: { kind: 'tutor', id: d.tutorId },
          issuer: platform(ctx),
          recipient: person('tutor', d.tutorId),
          lines: [
            {
              description: `Platform commission on booking ${d.bookingId} (${what.toLowerCase()})`,
              amount: commission,
              taxAmount: tax?.amount ?? 0,
            },
          ],
          taxRate: rateOf(tax),
          settlement: 'earnings',
        },
        d.currency,
      ),
    );
  }
  return out;
}

const RULES = {
  WalletToppedUp: (event, ctx) => [
    plan(
      event,
      ctx,
      {
        kind: 'receipt',
        subject: { kind: 'topup', id: event.data.topUpId },
        owner: { kind: 'student', id: event.data.studentId },
        issuer: platform(ctx),
        recipient: person('student', event.data.studentId),
        lines: [untaxed(`Wallet top-up ${event.data.topUpId}`, event.data.amount)],
        settlement: 'card',
      },
      event.data.currency,
    ),
  ],
  WalletHoldCaptured: (event, ctx) =>
    bookingCharge(
      event,
      ctx,
      event.data.captured,
      event.data.commission,
      event.data.commissionTax,
      'Tutoring session',
    ),
  WalletHoldReleased: (event, ctx) =>
    event.data.fee > 0
      ? bookingCharge(
          event,
          ctx,
          event.data.fee,
          event.data.commission,
          event.data.commissionTax,
          'Late cancellation fee',
        )
      : [],
  WalletRefunded: (event, ctx) => {
    const d = event.data;
    const refund = { kind: 'refund', id: d.refundId };
    // A refund whose promo-code part took it whole gives the student nothing back: no receipt.
    const out: PlannedDocument[] = [];
    if (d.amount > 0) {
      out.push(
        plan(
          event,
          ctx,
          {
            kind: 'refund_receipt',
            subject: refund,
            owner: { kind: 'student', id: d.studentId },
            issuer: platform(ctx),
            recipient: person('student', d.studentId),
            lines: [untaxed(`Refund ${d.refundId} of booking ${d.bookingId}`, d.amount)],
            settlement: 'wallet',
          },
          d.currency,
        ),
      );
    }
    const tax = d.commissionTax;
    if (d.commissionPart + (tax?.amount ?? 0) > 0) {
      out.push(
        plan(
          event,
          ctx,
          {
            kind: 'credit_note',
            subject: refund,
            owner: { kind: 'tutor', id: d.tutorId },
            issuer: platform(ctx),
            recipient: person('tutor', d.tutorId),
            lines: [
              {
                description: `Commission reversed by refund ${d.refundId} of booking ${d.bookingId}`,
                amount: d.commissionPart,
                taxAmount: tax?.amount ?? 0,
              },
            ],
            taxRate: rateOf(tax),
            settlement: 'earnings',
            refersTo: bookingInvoiceId(ctx.tenantId, d.bookingId),
          },
          d.currency,
        ),
      );
    }
    return out;
  },
  WalletRefundedToCard: (event, ctx) => [
    plan(
      event,
      ctx,
      {
        kind: 'refund_receipt',
        subject: {
          kind: 'card-refund',
          id: event.data.stripeRefundId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64),
        },
        owner: { kind: 'student', id: event.data.studentId },
        issuer: platform(ctx),
        recipient: person('student', event.data.studentId),
        lines: [untaxed(`Refund to card of top-up ${event.data.topUpId}`, event.data.amount)],
        settlement: 'card',
      },
      event.data.currency,
    ),
  ],
  // VIP subscriptions (docs/ledger-flows.md): the student's receipt of a period's (or an upgrade's)
  // payment and the platform's invoice for the service to the student. Untaxed: the charge books no
  // tax (docs/documents.md, "Not yet").
  WalletSubscriptionCharged: (event, ctx) => {
    const d = event.data;
    const subject = { kind: 'subscription', id: `${d.subscriptionId}-${d.chargeId}`.slice(0, 64) };
    const what =
      d.kind === 'period'
        ? `VIP subscription ${d.subscriptionId}, plan ${d.planId}: period ${d.period}`
        : `VIP subscription ${d.subscriptionId}: upgrade to plan ${d.planId} from day ${d.startDay + 1} of period ${d.period}`;
    const party = {
      subject,
      owner: { kind: 'student' as const, id: d.studentId },
      issuer: platform(ctx),
      recipient: person('student', d.studentId),
      lines: [untaxed(what, d.amount)],
      settlement: 'wallet',
    };
    return [
      plan(event, ctx, { kind: 'receipt', ...party }, d.currency),
      plan(event, ctx, { kind: 'invoice', ...party, taxRate: null }, d.currency),
    ];
  },
  WalletSubscriptionRefunded: (event, ctx) => [
    subscriptionRefundReceipt(
      event,
      ctx,
      event.data.refundId,
      event.data.amount,
      'charge refused by the subscription',
    ),
  ],
  WalletSubscriptionEnded: (event, ctx) =>
    event.data.refundId && event.data.refund > 0
      ? [
          subscriptionRefundReceipt(
            event,
            ctx,
            event.data.refundId,
            event.data.refund,
            'unused days of a cancellation',
          ),
        ]
      : [],
} satisfies RuleTable;

function subscriptionRefundReceipt(
  event: DecodedEvent<'WalletSubscriptionRefunded' | 'WalletSubscriptionEnded'>,
  ctx: RuleContext,
  refundId: string,
  amount: number,
  why: string,
): PlannedDocument {
  const d = event.data;
  return plan(
    event,
    ctx,
    {
      kind: 'refund_receipt',
      subject: { kind: 'subscription-refund', id: `${d.subscriptionId}-${refundId}`.slice(0, 64) },
      owner: { kind: 'student', id: d.studentId },
      issuer: platform(ctx),
      recipient: person('student', d.studentId),
      lines: [untaxed(`Refund of VIP subscription ${d.subscriptionId} (${why})`, amount)],
      settlement: 'wallet',
    },
    d.currency,
  );
}

/** The event types that produce documents: the issuer's subscription filter. */
export const DOCUMENT_SOURCE_TYPES = Object.keys(RULES) as Array<keyof typeof RULES>;

/** The documents one event produces, in the order they are issued (none for other events). */
export function documentsFor(event: DecodedEvent, ctx: RuleContext): PlannedDocument[] {
  const rules: RuleTable = RULES;
  // The table pairs each type with its rule; TypeScript cannot correlate the two through the lookup.
  const rule = rules[event.type] as Rule<LedgerEventType> | undefined;
  return rule ? rule(event, ctx) : [];
}
