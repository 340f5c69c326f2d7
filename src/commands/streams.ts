/** Stream names (`{category}-{tenantId}.{entityId}`, docs/ledger-flows.md). */
export const walletStream = (t: string, studentId: string) => `wallet-${t}.${studentId}`;
export const bookingStream = (t: string, bookingId: string) => `booking-${t}.${bookingId}`;
export const tutorStream = (t: string, tutorId: string) => `tutor-${t}.${tutorId}`;
export const payoutStream = (t: string, payoutId: string) => `payout-${t}.${payoutId}`;
export const topUpStream = (t: string, topUpId: string) => `topup-${t}.${topUpId}`;
export const settingsStream = (t: string) => `tenant-${t}.settings`;
export const adjustmentStream = (t: string, adjustmentId: string) => `adjustment-${t}.${adjustmentId}`;
export const stripeStream = (t: string, stripeObjectId: string) => `stripe-${t}.${stripeObjectId}`;

const TENANT_ID = /^[a-z0-9_]{1,40}$/;

export function isValidTenantId(tenantId: unknown): tenantId is string {
  return typeof tenantId === 'string' && TENANT_ID.test(tenantId);
}
