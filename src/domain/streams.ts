import { DomainError } from './errors.js';
import { CATEGORY_PATTERN, ENTITY_ID_PATTERN, TENANT_ID_PATTERN } from './validation-patterns.js';

/**
 * Stream names `{category}-{tenantId}.{entityId}` (the first dash splits the category, as
 * EventStoreDB's $by_category expects; tenant ids have no dash or dot, so the first dot ends the tenant).
 */
export const STREAM_CATEGORIES = [
  'wallet',
  'booking',
  'tutor',
  'payout',
  'topup',
  'tenant',
  'adjustment',
  'stripe',
  'reconciliation',
] as const;
export type StreamCategory = (typeof STREAM_CATEGORIES)[number];

export interface StreamId {
  category: StreamCategory;
  tenantId: string;
  id: string;
}

/** The one entity id of a tenant's settings stream: `tenant-{t}.settings`. */
export const TENANT_SETTINGS_ID = 'settings';

export function isStreamCategory(value: unknown): value is StreamCategory {
  return typeof value === 'string' && (STREAM_CATEGORIES as readonly string[]).includes(value);
}

export function streamName(category: StreamCategory, tenantId: string, id: string): string {
  if (!isStreamCategory(category) || !CATEGORY_PATTERN.test(category)) {
    throw new DomainError('validation_failed', `unknown stream category ${JSON.stringify(category)}`);
  }
  if (!TENANT_ID_PATTERN.test(tenantId)) {
    throw new DomainError('validation_failed', 'tenantId must be 1-40 characters of [a-z0-9_]', {
      field: 'tenantId',
    });
  }
  if (!ENTITY_ID_PATTERN.test(id)) {
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
  if (!isStreamCategory(category) || !TENANT_ID_PATTERN.test(tenantId) || !ENTITY_ID_PATTERN.test(id)) {
    return null;
  }
  return { category, tenantId, id };
}

/** Stream-name prefix of one tenant's streams of a category (for subscription filters). */
export const categoryPrefix = (category: StreamCategory, tenantId?: string): string =>
  tenantId === undefined ? `${category}-` : `${category}-${tenantId}.`;
