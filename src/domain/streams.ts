import { DomainError } from './errors.js';
import { ENTITY_ID_PATTERN, isEntityId, isTenantId } from './ids.js';

/**
 * Stream names `{category}-{tenantId}.{entityId}`: one stream per aggregate. The first dash splits the
 * category (as EventStoreDB's $by_category expects); tenant ids have no dash or dot, so the first dot
 * ends the tenant. Every stream name of the ledger is built and parsed here.
 */
export const STREAM_CATEGORIES = [
  'wallet',
  'booking',
  'tutor',
  'payout',
  'topup',
  'tenant',
  'adjustment',
  'adjustmentproposal',
  'stripe',
  'reconciliation',
  'webhook',
  'balancemonitor',
  'docseries',
  'billing',
  'promo',
  'guardianship',
  'period',
  'plans',
  'subscription',
  'referral',
] as const;
export type StreamCategory = (typeof STREAM_CATEGORIES)[number];

export interface StreamId {
  category: StreamCategory;
  tenantId: string;
  /** The aggregate's id inside its tenant and category. */
  id: string;
}

/** The one entity id of a tenant's settings stream: `tenant-{t}.settings`. */
export const TENANT_SETTINGS_ID = 'settings';

export function isStreamCategory(value: unknown): value is StreamCategory {
  return typeof value === 'string' && (STREAM_CATEGORIES as readonly string[]).includes(value);
}

export function streamName(category: StreamCategory, tenantId: string, id: string): string {
  if (!isStreamCategory(category)) {
    throw new DomainError('validation_failed', `unknown stream category ${JSON.stringify(category)}`);
  }
  if (!isTenantId(tenantId)) {
    throw new DomainError('validation_failed', 'tenantId must be 1-40 characters of [a-z0-9_]', {
      field: 'tenantId',
    });
  }
  if (!isEntityId(id)) {
    throw new DomainError('validation_failed', `${category} id must be 1-64 characters of [A-Za-z0-9_-]`, {
      field: 'id',
    });
  }
  return `${category}-${tenantId}.${id}`;
}

/** Parses a stream name of this ledger, or returns null for anything else (system streams, typos). */
export function parseStreamName(name: string): StreamId | null {
  const dash = name.indexOf('-');
  if (dash <= 0) return null;
  const category = name.slice(0, dash);
  const rest = name.slice(dash + 1);
  const dot = rest.indexOf('.');
  if (dot <= 0) return null;
  const tenantId = rest.slice(0, dot);
  const id = rest.slice(dot + 1);
  if (!isStreamCategory(category) || !isTenantId(tenantId) || !ENTITY_ID_PATTERN.test(id)) return null;
  return { category, tenantId, id };
}

/** Stream-name prefix of one tenant's streams of a category (for subscription filters). */
export const categoryPrefix = (category: StreamCategory, tenantId?: string): string =>
  tenantId === undefined ? `${category}-` : `${category}-${tenantId}.`;

/** The student's wallet: owner of `student:{id}:wallet`. */
export const walletStream = (tenantId: string, studentId: string): string =>
  streamName('wallet', tenantId, studentId);
export const bookingStream = (tenantId: string, bookingId: string): string =>
  streamName('booking', tenantId, bookingId);
/** The tutor's earnings: owner of `tutor:{id}:earnings:available`. */
export const tutorStream = (tenantId: string, tutorId: string): string =>
  streamName('tutor', tenantId, tutorId);
export const payoutStream = (tenantId: string, payoutId: string): string =>
  streamName('payout', tenantId, payoutId);
export const topUpStream = (tenantId: string, topUpId: string): string =>
  streamName('topup', tenantId, topUpId);
export const settingsStream = (tenantId: string): string =>
  streamName('tenant', tenantId, TENANT_SETTINGS_ID);
/** One manual adjustment of an unconstrained account. */
export const adjustmentStream = (tenantId: string, adjustmentId: string): string =>
  streamName('adjustment', tenantId, adjustmentId);
/** Fees and disputes of one Stripe object (balance transaction or dispute). */
export const stripeStream = (tenantId: string, stripeObjectId: string): string =>
  streamName('stripe', tenantId, stripeObjectId);
export const reconciliationStream = (tenantId: string, runId: string): string =>
  streamName('reconciliation', tenantId, runId);

/** A four-eyes adjustment proposal (adjustmentProposal.ts). */
export const adjustmentProposalStream = (tenantId: string, proposalId: string): string =>
  streamName('adjustmentproposal', tenantId, proposalId);

/** One series of documents (receipts, invoices, credit notes) and their gapless numbers (documentSeries.ts). */
export const documentSeriesStream = (tenantId: string, seriesId: string): string =>
  streamName('docseries', tenantId, seriesId);

/** The tenant's accounting periods: closes and adjustments backdated into an earlier month (periods.ts). */
export const periodsStream = (tenantId: string): string => streamName('period', tenantId, 'ledger');

/** The tenant's billing settings: legal entity, locale, tax rates (billingSettings.ts). */
export const billingStream = (tenantId: string): string =>
  streamName('billing', tenantId, TENANT_SETTINGS_ID);

/** A promo code: owner of its redemptions and discount budget (promoCode.ts). */
export const promoCodeStream = (tenantId: string, code: string): string =>
  streamName('promo', tenantId, code);

/** A student's guardians (guardianship.ts). */
export const guardianshipStream = (tenantId: string, studentId: string): string =>
  streamName('guardianship', tenantId, studentId);
/** The tenant's VIP plans and subscription policy (subscriptionPlans.ts). */
export const PLAN_CATALOG_ID = 'catalog';
export const planCatalogStream = (tenantId: string): string => streamName('plans', tenantId, PLAN_CATALOG_ID);
/** One VIP subscription of a student (subscription.ts). */
export const subscriptionStream = (tenantId: string, subscriptionId: string): string =>
  streamName('subscription', tenantId, subscriptionId);
/** A student's referrals: owner of `student:{id}:credits`, its link to a referrer and its rewards (referral.ts). */
export const referralStream = (tenantId: string, studentId: string): string =>
  streamName('referral', tenantId, studentId);
