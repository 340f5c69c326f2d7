import { decodeEventOf, type EventData, type LedgerEventType } from '../../domain/events.js';
import { guardianshipDecider, isGuardianOf, MAX_GUARDIANSHIP_EVENTS } from '../../domain/guardianship.js';
import { isEntityId } from '../../domain/ids.js';
import { bookingStream, guardianshipStream, payoutStream, topUpStream } from '../../domain/streams.js';
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
  /** The first event of a stream, which names the resource's owners; null when there is none yet. */
  async function firstEvent<T extends LedgerEventType>(
    stream: string,
    type: T,
  ): Promise<EventData<T> | null> {
    try {
      const [first] = await store.readStream(stream, { direction: 'forwards', maxCount: 1 });
      return first ? decodeEventOf(first, [type]).data : null;
    } catch (error) {
      if (error instanceof StreamNotFoundError) return null;
      throw error;
    }
  }
  return {
    async booking(tenantId, bookingId) {
      const view = await queries.getBooking(tenantId, bookingId);
      if (view) return { studentId: view.studentId, tutorId: view.tutorId };
      const placed = await firstEvent(bookingStream(tenantId, bookingId), 'BookingPlaced');
      return placed && { studentId: placed.studentId, tutorId: placed.tutorId };
    },
    async payout(tenantId, payoutId) {
      const view = await queries.getPayout(tenantId, payoutId);
      if (view) return { tutorId: view.tutorId };
      const requested = await firstEvent(payoutStream(tenantId, payoutId), 'PayoutRequested');
      return requested && { tutorId: requested.tutorId };
    },
    async topUp(tenantId, topUpId) {
      const view = await queries.getTopUp(tenantId, topUpId);
      if (view) return { studentId: view.studentId };
      const initiated = await firstEvent(topUpStream(tenantId, topUpId), 'TopUpInitiated');
      return initiated && { studentId: initiated.studentId };
    },
    async isGuardianOf(tenantId, studentId, guardianId) {
      if (!isEntityId(studentId)) return false;
      // The student's guardianship stream is small (links and unlinks by tenant admins): read and fold.
      let events: Awaited<ReturnType<EventStore['readStream']>>;
      try {
        events = await store.readStream(guardianshipStream(tenantId, studentId), {
          direction: 'forwards',
          maxCount: MAX_GUARDIANSHIP_EVENTS,
        });
      } catch (error) {
        if (error instanceof StreamNotFoundError) return false;
        throw error;
      }
      let state = guardianshipDecider.initialState();
      for (const stored of events) {
        state = guardianshipDecider.evolve(
          state,
          decodeEventOf(stored, ['GuardianLinked', 'GuardianUnlinked']),
        );
      }
      return isGuardianOf(state, guardianId);
    },
  };
}
