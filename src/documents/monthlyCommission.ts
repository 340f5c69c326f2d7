import type { CommandHandler } from '../commands/commandHandler.js';
import type { Logger } from '../commands/logger.js';
import {
  type BillingSettings,
  type CommissionInvoicing,
  commissionInvoicingOf,
} from '../domain/billingSettings.js';
import { calendarPeriods, monthBoundsMs } from '../domain/calendar.js';
import {
  type DocumentDraft,
  type DocumentLine,
  type IssuedDocument,
  MAX_DOCUMENT_LINES,
} from '../domain/documentSeries.js';
import { invariant } from '../domain/errors.js';
import { type DecodedEvent, decodeEventOf } from '../domain/events.js';
import { deterministicId } from '../domain/ids.js';
import type { CommissionTax } from '../domain/tax.js';
import type { EventStore } from '../eventstore/port.js';
import { issueDocument } from './issuer.js';
import { renderDocumentPdf } from './pdf.js';
import { documentId, platformParty, type RuleContext, taxRateOf, tutorParty } from './rules.js';
import type { DocumentStore } from './store.js';

/**
 * Commission invoices per tutor per month (billing setting `commissionInvoicing: 'monthly'`): at the end
 * of each month in the tenant's time zone, the platform invoices each tutor once for the commission it
 * kept on that month's captures and late-cancellation fees (one invoice per tutor, month, currency and
 * tax rate: an invoice has one currency and prints one rate), and issues a credit note for each refund
 * of the month that reversed commission of a monthly-invoiced booking, naming the invoice of the month
 * the booking was captured in.
 *
 * Which captures are monthly is a function of the log: the billing settings in force at the capture's
 * position (the issuer asks the same question, issuer.ts commissionInvoicingAt), so a capture is
 * invoiced either on its own or in its month, never both and never neither, whatever either lags.
 * A capture's month is its occurredAt's month in the tenant's zone in force at its position.
 *
 * Exactly once across processes and restarts: document ids derive from tenant, tutor, month, currency
 * and rate (credit notes: from the refund, as per capture), numbers come from the series streams with
 * exact expected revisions (issuer.ts issueDocument), and the cause is the month's deterministic id, so
 * a second process, or the same one after a crash, finds each document already issued and appends
 * nothing. Dates come from the month, never the clock: the invoice's issue date is the month's last
 * millisecond. A month is due `graceMs` after it ends, so a capture committed right at the end is in it.
 *
 * State is in memory, rebuilt from the log on start (like the due-task index): per tenant the zone and
 * billing settings in force, the months with lines not yet issued, and the monthly-invoiced bookings
 * (booking -> its invoice, for the credit notes of later refunds: one entry per such booking).
 */
export const COMMISSION_MONTH_CAUSE = 'CommissionMonthClosed';

const FOLDED_TYPES = [
  'TenantSettingsUpdated',
  'BillingSettingsUpdated',
  'WalletHoldCaptured',
  'WalletHoldReleased',
  'WalletRefunded',
] as const;
type Folded = DecodedEvent<(typeof FOLDED_TYPES)[number]>;

interface ChargeLine {
  occurredAt: string;
  bookingId: string;
  what: string;
  commission: number;
  tax: number;
}

/** One invoice of a month: a tutor's commission in one currency at one tax rate. */
interface InvoiceGroup {
  documentId: string;
  tutorId: string;
  currency: string;
  taxRate: { rateBps: number; inclusive: boolean } | null;
  lines: ChargeLine[];
}

interface CreditLine {
  occurredAt: string;
  refundId: string;
  bookingId: string;
  tutorId: string;
  currency: string;
  commission: number;
  tax: number;
  taxRate: { rateBps: number; inclusive: boolean } | null;
  invoiceId: string;
}

interface MonthWork {
  invoices: Map<string, InvoiceGroup>;
  credits: CreditLine[];
}

interface TenantState {
  zone: string;
  billing: BillingSettings | null;
  months: Map<string, MonthWork>;
}

export interface MonthlyCommissionOutcome {
  /**
   * The documents this call issued and stored. Two processes racing for the same document may both
   * list it (the store takes the second, byte-identical append as the first's own retry): the document
   * and its number are one either way.
   */
  issued: IssuedDocument[];
  failed: { tenantId: string; month: string; error: string }[];
}

export interface MonthlyCommissionOptions {
  store: EventStore;
  handler: CommandHandler;
  documents: DocumentStore;
  clock: () => Date;
  logger: Logger;
  /** How long after a month's end it is issued (commits of its last instants land first). Default 5 min. */
  graceMs?: number;
  pageSize?: number;
}

/** The invoice of a tutor's month (in one currency at one rate): what its credit notes refer to. */
export const monthlyInvoiceId = (
  tenantId: string,
  tutorId: string,
  month: string,
  currency: string,
  taxRate: { rateBps: number; inclusive: boolean } | null,
): string =>
  documentId(
    tenantId,
    'invoice',
    `commission-month:${tutorId}:${month}:${currency}:${taxRate ? `${taxRate.rateBps}${taxRate.inclusive ? 'i' : 'e'}` : 'none'}`,
  );

/** The cause of a tenant's month's documents: the same in every process. */
export const commissionMonthId = (tenantId: string, month: string): string =>
  deterministicId('commission-month', tenantId, month);

export class MonthlyCommissionInvoicing {
  private readonly tenants = new Map<string, TenantState>();
  /** `{tenant}/{bookingId}` -> the monthly invoice that includes its commission. */
  private readonly monthlyBookings = new Map<string, string>();
  private position = -1n;
  private readonly graceMs: number;
  private readonly pageSize: number;
  private running: Promise<MonthlyCommissionOutcome> | undefined;

  constructor(private readonly options: MonthlyCommissionOptions) {
    this.graceMs = options.graceMs ?? 300_000;
    this.pageSize = options.pageSize ?? 1_000;
    invariant(this.graceMs >= 0 && this.graceMs <= 86_400_000, 'graceMs must be 0..1 day');
  }

  /** Issues every month that is due now; one pass at a time in a process (concurrent callers share it). */
  tick(): Promise<MonthlyCommissionOutcome> {
    this.running ??= this.tickNow().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async tickNow(): Promise<MonthlyCommissionOutcome> {
    await this.catchUp();
    const nowMs = this.options.clock().getTime();
    const outcome: MonthlyCommissionOutcome = { issued: [], failed: [] };
    for (const [tenantId, tenant] of [...this.tenants].sort(([a], [b]) => a.localeCompare(b))) {
      // Oldest month first: a credit note's invoice (its booking's month) is issued before it.
      for (const month of [...tenant.months.keys()].sort()) {
        const { endMs } = monthBoundsMs(month, tenant.zone);
        if (endMs + this.graceMs > nowMs) break;
        try {
          outcome.issued.push(...(await this.issueMonth(tenantId, tenant, month, endMs)));
          tenant.months.delete(month);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          outcome.failed.push({ tenantId, month, error: message });
          this.options.logger.error({ tenantId, month, err: message }, 'monthly commission invoices failed');
          break;
        }
      }
    }
    if (outcome.issued.length > 0) {
      this.options.logger.info({ documents: outcome.issued.length }, 'monthly commission invoices issued');
    }
    return outcome;
  }

  private async issueMonth(
    tenantId: string,
    tenant: TenantState,
    month: string,
    endMs: number,
  ): Promise<IssuedDocument[]> {
    const work = tenant.months.get(month);
    if (!work) return [];
    const b = tenant.billing;
    const ctx: RuleContext = {
      tenantId,
      settings: b
        ? { legalName: b.legalName, address: b.address, taxId: b.taxId, locale: b.locale }
        : { legalName: tenantId, address: [], taxId: null, locale: 'en-US' },
    };
    const issuedAt = new Date(endMs - 1).toISOString();
    const cause = { eventId: commissionMonthId(tenantId, month), correlationId: `commission-month:${month}` };
    const source = { eventId: cause.eventId, eventType: COMMISSION_MONTH_CAUSE };
    const drafts: DocumentDraft[] = [];
    for (const group of [...work.invoices.values()].sort((x, y) =>
      x.documentId.localeCompare(y.documentId),
    )) {
      const lines = invoiceLines(group.lines);
      const subtotal = lines.reduce((s, l) => s + l.amount, 0);
      const tax = lines.reduce((s, l) => s + l.taxAmount, 0);
      drafts.push({
        documentId: group.documentId,
        kind: 'invoice',
        issuedAt,
        owner: { kind: 'tutor', id: group.tutorId },
        issuer: platformParty(ctx),
        recipient: tutorParty(group.tutorId),
        currency: group.currency,
        locale: ctx.settings.locale,
        lines,
        subtotal,
        tax,
        total: subtotal + tax,
        taxRate: group.taxRate,
        settlement: 'earnings',
        subject: { kind: 'commission-month', id: `${month}-${group.currency}` },
        source,
        references: null,
      });
    }
    const issued: IssuedDocument[] = [];
    const issue = async (draft: DocumentDraft) => {
      if (await this.options.documents.get(tenantId, draft.documentId)) return;
      const { document, position, replayed } = await issueDocument(
        this.options.handler,
        tenantId,
        draft,
        cause,
      );
      await this.options.documents.put(tenantId, document, position, await renderDocumentPdf(document));
      // Numbered before this call (a retry after a crash): stored again idempotently, not reported.
      if (!replayed) issued.push(document);
    };
    for (const draft of drafts) await issue(draft);
    for (const credit of work.credits) {
      const invoice = await this.options.documents.get(tenantId, credit.invoiceId);
      // The invoice is of the booking's month, which is this one or an earlier one issued before it.
      invariant(invoice, `credit note of refund ${credit.refundId} corrects ${credit.invoiceId}, not issued`);
      await issue({
        documentId: documentId(tenantId, 'credit_note', `refund:${credit.refundId}`),
        kind: 'credit_note',
        issuedAt,
        owner: { kind: 'tutor', id: credit.tutorId },
        issuer: platformParty(ctx),
        recipient: tutorParty(credit.tutorId),
        currency: credit.currency,
        locale: ctx.settings.locale,
        lines: [
          {
            description: `${credit.occurredAt.slice(0, 10)}: commission reversed by refund ${credit.refundId} of booking ${credit.bookingId}`,
            amount: credit.commission,
            taxAmount: credit.tax,
          },
        ],
        subtotal: credit.commission,
        tax: credit.tax,
        total: credit.commission + credit.tax,
        taxRate: credit.taxRate,
        settlement: 'earnings',
        subject: { kind: 'refund', id: credit.refundId },
        source,
        references: { documentId: credit.invoiceId, number: invoice.summary.number },
      });
    }
    return issued;
  }

  /** Folds the events committed since the last call, in bounded pages. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const page = await this.options.store.readAll({
        ...(this.position >= 0n ? { after: this.position } : {}),
        maxCount: this.pageSize,
        filter: { eventTypes: [...FOLDED_TYPES] },
      });
      for (const recorded of page) {
        this.fold(decodeEventOf(recorded, FOLDED_TYPES));
        this.position = recorded.position;
      }
      if (page.length < this.pageSize) return;
    }
  }

  private tenant(tenantId: string): TenantState {
    let t = this.tenants.get(tenantId);
    if (!t) {
      t = { zone: 'UTC', billing: null, months: new Map() };
      this.tenants.set(tenantId, t);
    }
    return t;
  }

  private fold(event: Folded): void {
    const tenant = this.tenant(event.tenantId);
    const monthOf = () => calendarPeriods(Date.parse(event.metadata.occurredAt), tenant.zone).month;
    const work = (month: string): MonthWork => {
      let w = tenant.months.get(month);
      if (!w) {
        w = { invoices: new Map(), credits: [] };
        tenant.months.set(month, w);
      }
      return w;
    };
    const charge = (
      d: { bookingId: string; tutorId: string; currency: string; commission: number },
      tax: CommissionTax | undefined,
      what: string,
    ) => {
      const mode: CommissionInvoicing = commissionInvoicingOf(tenant.billing);
      // The same condition as the per-capture invoice (rules.ts bookingCharge).
      if (mode !== 'monthly' || d.commission + (tax?.amount ?? 0) <= 0) return;
      const month = monthOf();
      const taxRate = taxRateOf(tax);
      const id = monthlyInvoiceId(event.tenantId, d.tutorId, month, d.currency, taxRate);
      const w = work(month);
      let group = w.invoices.get(id);
      if (!group) {
        group = { documentId: id, tutorId: d.tutorId, currency: d.currency, taxRate, lines: [] };
        w.invoices.set(id, group);
      }
      group.lines.push({
        occurredAt: event.metadata.occurredAt,
        bookingId: d.bookingId,
        what,
        commission: d.commission,
        tax: tax?.amount ?? 0,
      });
      this.monthlyBookings.set(`${event.tenantId}/${d.bookingId}`, id);
    };
    switch (event.type) {
      case 'TenantSettingsUpdated':
        tenant.zone = event.data.settings.timeZone ?? 'UTC';
        return;
      case 'BillingSettingsUpdated':
        tenant.billing = event.data.settings;
        return;
      case 'WalletHoldCaptured':
        charge(event.data, event.data.commissionTax, 'tutoring session');
        return;
      case 'WalletHoldReleased':
        if (event.data.fee > 0) charge(event.data, event.data.commissionTax, 'late cancellation fee');
        return;
      case 'WalletRefunded': {
        const d = event.data;
        const invoiceId = this.monthlyBookings.get(`${event.tenantId}/${d.bookingId}`);
        const tax = d.commissionTax?.amount ?? 0;
        // Refunds of bookings invoiced on their own get their credit note from the issuer (rules.ts).
        if (invoiceId === undefined || d.commissionPart + tax <= 0) return;
        work(monthOf()).credits.push({
          occurredAt: event.metadata.occurredAt,
          refundId: d.refundId,
          bookingId: d.bookingId,
          tutorId: d.tutorId,
          currency: d.currency,
          commission: d.commissionPart,
          tax,
          taxRate: taxRateOf(d.commissionTax),
          invoiceId,
        });
        return;
      }
    }
  }
}

/**
 * The invoice's lines: one per capture or fee, in log order; a month with more than a document holds
 * gets one line per day instead (at most 31), each the sum of the day's.
 */
function invoiceLines(charges: ChargeLine[]): DocumentLine[] {
  if (charges.length <= MAX_DOCUMENT_LINES) {
    return charges.map((c) => ({
      description: `${c.occurredAt.slice(0, 10)}: platform commission on booking ${c.bookingId} (${c.what})`,
      amount: c.commission,
      taxAmount: c.tax,
    }));
  }
  const days = new Map<string, { count: number; amount: number; taxAmount: number }>();
  for (const c of charges) {
    const day = c.occurredAt.slice(0, 10);
    const d = days.get(day) ?? { count: 0, amount: 0, taxAmount: 0 };
    d.count++;
    d.amount += c.commission;
    d.taxAmount += c.tax;
    days.set(day, d);
  }
  return [...days].map(([day, d]) => ({
    description: `${day}: platform commission on ${d.count} bookings`,
    amount: d.amount,
    taxAmount: d.taxAmount,
  }));
}

export interface MonthlyCommissionHandle {
  tick(): Promise<MonthlyCommissionOutcome>;
  stop(): Promise<void>;
}

/** Ticks every `intervalMs` (never overlapping) until stopped. */
export function startMonthlyCommissionInvoicing(
  monthly: MonthlyCommissionInvoicing,
  options: { intervalMs: number; logger: Logger },
): MonthlyCommissionHandle {
  invariant(options.intervalMs >= 10, 'intervalMs must be >= 10');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = monthly
        .tick()
        .catch((error: unknown) =>
          options.logger.error(
            { err: error instanceof Error ? error.message : String(error) },
            'monthly commission invoices: pass failed',
          ),
        )
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, options.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    tick: () => monthly.tick(),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
