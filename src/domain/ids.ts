import { v5 as uuidv5 } from 'uuid';

/** Namespace for all deterministic ids of this project (a fixed random UUID; never change it). */
export const LEDGER_NAMESPACE = '6f1d7c52-4b0e-4b8e-9a57-2a8f3c0d9e11';

/**
 * Deterministic event id (DESIGN.md, Events): UUID v5 of tenant + command type + idempotency key + index.
 * A retried command produces the same ids, so the store appends nothing new.
 */
export function eventId(
  tenantId: string,
  commandType: string,
  idempotencyKey: string,
  index: number,
): string {
  return uuidv5(`${tenantId}\u0000${commandType}\u0000${idempotencyKey}\u0000${index}`, LEDGER_NAMESPACE);
}

/** Deterministic id for anything derived from names (entry ids, hold ids). */
export function deterministicId(...parts: string[]): string {
  return uuidv5(parts.join('\u0000'), LEDGER_NAMESPACE);
}

/** The hold a booking places on the student wallet (docs/ledger-flows.md). */
export const bookingHoldId = (tenantId: string, bookingId: string): string =>
  deterministicId('hold', tenantId, bookingId);

/** The hold a payout places on the tutor's available earnings. */
export const payoutHoldId = (tenantId: string, payoutId: string): string =>
  deterministicId('payout-hold', tenantId, payoutId);
