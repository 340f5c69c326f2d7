import type { EventStore } from '../../eventstore/port.js';
import { StreamNotFoundError } from '../../eventstore/port.js';
import type { LedgerQueries } from '../../projections/ledgerQueries.js';
import type { OwnershipLoader } from '../auth.js';

/**
 * Owner lookups for authorization. The read model answers first; when it has not caught up with a
 * resource created a moment ago, the resource's own stream is asked (its first event names the owners),
 * so a student can cancel the booking it has just placed without waiting for projections.
 */
export function createOwnershipLoader(queries: LedgerQueries, store: EventStore): OwnershipLoader {
  async function firstEventData(stream: string): Promise<Record<string, unknown> | null> {
    try {
      const [first] = await store.readStream(stream, { direction: 'forwards', maxCount: 1 });
      return first ? (first.data as Record<string, unknown>) : null;
    } catch (error) {
      if (error instanceof StreamNotFoundError) return null;
      throw error;
    }
  }
  return {
    async booking(tenantId, bookingId) {
      const view = await queries.getBooking(tenantId, bookingId);
      if (view) return { studentId: view.studentId, tutorId: view.tutorId };
      const data = await firstEventData(`booking-${tenantId}.${bookingId}`);
      if (data && typeof data.studentId === 'string' && typeof data.tutorId === 'string') {
        return { studentId: data.studentId, tutorId: data.tutorId };
      }
      return null;
    },
    async payout(tenantId, payoutId) {
      const view = await queries.getPayout(tenantId, payoutId);
      if (view) return { tutorId: view.tutorId };
      const data = await firstEventData(`payout-${tenantId}.${payoutId}`);
      return data && typeof data.tutorId === 'string' ? { tutorId: data.tutorId } : null;
    },
    async topUp(tenantId, topUpId) {
      const view = await queries.getTopUp(tenantId, topUpId);
      if (view) return { studentId: view.studentId };
      const data = await firstEventData(`topup-${tenantId}.${topUpId}`);
      return data && typeof data.studentId === 'string' ? { studentId: data.studentId } : null;
    },
  };
}
