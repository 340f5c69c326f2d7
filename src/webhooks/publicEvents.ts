import { decodeEventOf } from '../domain/events.js';
import { deterministicId } from '../domain/ids.js';
import type {
  BalanceMonitorRecovered,
  BalanceMonitorTriggered,
  BookingCancelled,
  BookingCompleted,
  BookingExpired,
  BookingPlaced,
  BookingRefunded,
  PayoutFailed,
  PayoutPaid,
  PayoutRequested,
  StripeDisputeClosed,
  StripeDisputeOpened,
  TopUpFailed,
  TopUpSucceeded,
  TutorEarningsCleared,
  WalletAdjusted,
  WalletCardRefundFailed,
  WalletRefundedToCard,
  WalletToppedUp,
  WebhookEndpointDisabled,
} from '../domain/index.js';
import type { JsonObject, RecordedEvent } from '../eventstore/port.js';

/**
 * The public event types that webhooks deliver (docs/webhooks.md, "Event types"): stable, documented
 * payloads mapped from the domain events, never the internal event shapes. A payload is versioned by
 * `apiVersion`: an endpoint is pinned to the version it registered with, and a change that could break
 * a receiver (a field renamed, removed or retyped) ships as a new version beside the old one; adding a
 * field or a new event type is not breaking.
 *
 * Envelope (every version):
 *   { id, object: "event", type, apiVersion, createdAt, tenant, position, data: { object } }
 * `id` is the same for every endpoint and every redelivery of one event: receivers dedupe on it.
 */
export const WEBHOOK_API_VERSIONS = ['2026-12-01'] as const;
export type WebhookApiVersion = (typeof WEBHOOK_API_VERSIONS)[number];
export const CURRENT_WEBHOOK_API_VERSION: WebhookApiVersion = '2026-12-01';

export interface PublicMoney extends JsonObject {
  amount: number;
  currency: string;
}

/** Every public event type with the domain event it comes from (one each). */
export const PUBLIC_EVENT_TYPES = {
  'top_up.succeeded': 'TopUpSucceeded',
  'top_up.failed': 'TopUpFailed',
  'wallet.topped_up': 'WalletToppedUp',
  'wallet.refunded_to_card': 'WalletRefundedToCard',
  'wallet.card_refund_failed': 'WalletCardRefundFailed',
  'wallet.adjusted': 'WalletAdjusted',
  'booking.placed': 'BookingPlaced',
  'booking.completed': 'BookingCompleted',
  'booking.cancelled': 'BookingCancelled',
  'booking.expired': 'BookingExpired',
  'booking.refunded': 'BookingRefunded',
  'tutor.earnings_cleared': 'TutorEarningsCleared',
  'payout.requested': 'PayoutRequested',
  'payout.paid': 'PayoutPaid',
  'payout.failed': 'PayoutFailed',
  'dispute.opened': 'StripeDisputeOpened',
  'dispute.closed': 'StripeDisputeClosed',
  'balance_monitor.triggered': 'BalanceMonitorTriggered',
  'balance_monitor.recovered': 'BalanceMonitorRecovered',
  'webhook_endpoint.disabled': 'WebhookEndpointDisabled',
} as const satisfies Record<string, string>;

export type PublicEventType = keyof typeof PUBLIC_EVENT_TYPES;
export const PUBLIC_EVENT_TYPE_NAMES = Object.keys(PUBLIC_EVENT_TYPES) as PublicEventType[];

/** The domain event types the fan-out subscribes to. */
export const SOURCE_EVENT_TYPES: readonly SourceEvent['type'][] = [
  ...new Set(Object.values(PUBLIC_EVENT_TYPES)),
];
const SOURCE_TYPE_SET: ReadonlySet<string> = new Set(SOURCE_EVENT_TYPES);

export function isPublicEventType(value: string): value is PublicEventType {
  return Object.hasOwn(PUBLIC_EVENT_TYPES, value);
}

/** True when an endpoint subscribed to `eventTypes` wants `type`. */
export function subscribes(eventTypes: readonly string[], type: PublicEventType): boolean {
  return eventTypes.includes('*') || eventTypes.includes(type);
}

export interface PublicEvent {
  id: string;
  type: PublicEventType;
  createdAt: string;
  tenant: string;
  position: string;
  /** The resource the event is about, in the endpoint's API version. */
  object: JsonObject;
}

type SourceEvent =
  | TopUpSucceeded
  | TopUpFailed
  | WalletToppedUp
  | WalletRefundedToCard
  | WalletCardRefundFailed
  | WalletAdjusted
  | BookingPlaced
  | BookingCompleted
  | BookingCancelled
  | BookingExpired
  | BookingRefunded
  | TutorEarningsCleared
  | PayoutRequested
  | PayoutPaid
  | PayoutFailed
  | StripeDisputeOpened
  | StripeDisputeClosed
  | BalanceMonitorTriggered
  | BalanceMonitorRecovered
  | WebhookEndpointDisabled;

const money = (amount: number, currency: string): PublicMoney => ({ amount, currency });

/** The resource of one source event, version 2026-12-01. */
function objectOf(event: SourceEvent): { type: PublicEventType; object: JsonObject } {
  switch (event.type) {
    case 'TopUpSucceeded': {
      const d = event.data;
      return {
        type: 'top_up.succeeded',
        object: {
          object: 'top_up',
          id: d.topUpId,
          studentId: d.studentId,
          status: 'succeeded',
          amount: money(d.amount, d.currency),
          paymentIntentId: d.paymentIntentId,
          succeededAt: d.succeededAt,
        },
      };
    }
    case 'TopUpFailed': {
      const d = event.data;
      return {
        type: 'top_up.failed',
        object: {
          object: 'top_up',
          id: d.topUpId,
          studentId: d.studentId,
          status: 'failed',
          paymentIntentId: d.paymentIntentId,
          failureReason: d.reason,
          failedAt: d.failedAt,
        },
      };
    }
    case 'WalletToppedUp': {
      const d = event.data;
      return {
        type: 'wallet.topped_up',
        object: {
          object: 'wallet_credit',
          studentId: d.studentId,
          topUpId: d.topUpId,
          amount: money(d.amount, d.currency),
          entryId: d.entry.entryId,
        },
      };
    }
    case 'WalletRefundedToCard': {
      const d = event.data;
      return {
        type: 'wallet.refunded_to_card',
        object: {
          object: 'wallet_debit',
          studentId: d.studentId,
          topUpId: d.topUpId,
          stripeRefundId: d.stripeRefundId,
          amount: money(d.amount, d.currency),
          entryId: d.entry.entryId,
        },
      };
    }
    case 'WalletCardRefundFailed': {
      const d = event.data;
      return {
        type: 'wallet.card_refund_failed',
        object: {
          object: 'wallet_credit',
          studentId: d.studentId,
          topUpId: d.topUpId,
          stripeRefundId: d.stripeRefundId,
          failureReason: d.failureReason,
          amount: money(d.amount, d.currency),
          entryId: d.entry.entryId,
        },
      };
    }
    case 'WalletAdjusted': {
      const d = event.data;
      return {
        type: 'wallet.adjusted',
        object: {
          object: 'adjustment',
          id: d.adjustmentId,
          account: `student:${d.studentId}:wallet`,
          studentId: d.studentId,
          direction: d.direction,
          amount: money(d.amount, d.currency),
          reason: d.reason,
          entryId: d.entry.entryId,
        },
      };
    }
    case 'BookingPlaced': {
      const d = event.data;
      return {
        type: 'booking.placed',
        object: {
          ...bookingRef(d),
          status: 'held',
          price: money(d.price, d.currency),
          scheduledAt: d.scheduledAt,
          expiresAt: d.expiresAt,
          freeCancellationUntil: d.freeCancellationUntil,
          placedAt: d.placedAt,
        },
      };
    }
    case 'BookingCompleted': {
      const d = event.data;
      return {
        type: 'booking.completed',
        object: {
          ...bookingRef(d),
          status: 'completed',
          captured: money(d.captured, d.currency),
          tutorShare: money(d.tutorShare, d.currency),
          commission: money(d.commission, d.currency),
          completedAt: d.completedAt,
          earningsClearableAt: d.earningsClearableAt,
        },
      };
    }
    case 'BookingCancelled': {
      const d = event.data;
      return {
        type: 'booking.cancelled',
        object: {
          ...bookingRef(d),
          status: 'cancelled',
          reason: d.reason,
          late: d.late,
          fee: money(d.fee, d.currency),
          cancelledAt: d.cancelledAt,
        },
      };
    }
    case 'BookingExpired': {
      const d = event.data;
      return {
        type: 'booking.expired',
        object: { ...bookingRef(d), status: 'expired', expiredAt: d.expiredAt },
      };
    }
    case 'BookingRefunded': {
      const d = event.data;
      return {
        type: 'booking.refunded',
        object: {
          ...bookingRef(d),
          refundId: d.refundId,
          amount: money(d.amount, d.currency),
          refundedTotal: money(d.refundedTotal, d.currency),
          reason: d.reason,
          refundedAt: d.refundedAt,
        },
      };
    }
    case 'TutorEarningsCleared': {
      const d = event.data;
      return {
        type: 'tutor.earnings_cleared',
        object: {
          object: 'tutor_earnings',
          tutorId: d.tutorId,
          bookingId: d.bookingId,
          amount: money(d.amount, d.currency),
          recoveredToReceivable: money(d.recovered, d.currency),
          clearedAt: d.clearedAt,
        },
      };
    }
    case 'PayoutRequested':
    case 'PayoutPaid':
    case 'PayoutFailed': {
      const d = event.data;
      const base = {
        object: 'payout',
        id: d.payoutId,
        tutorId: d.tutorId,
        amount: money(d.amount, d.currency),
      };
      if (event.type === 'PayoutRequested') {
        return {
          type: 'payout.requested',
          object: { ...base, status: 'requested', requestedAt: event.data.requestedAt },
        };
      }
      if (event.type === 'PayoutPaid') {
        return {
          type: 'payout.paid',
          object: {
            ...base,
            status: 'paid',
            stripeTransferId: event.data.stripeTransferId,
            stripePayoutId: event.data.stripePayoutId,
            paidAt: event.data.paidAt,
          },
        };
      }
      return {
        type: 'payout.failed',
        object: {
          ...base,
          status: 'failed',
          failureReason: event.data.reason,
          failedAt: event.data.failedAt,
        },
      };
    }
    case 'StripeDisputeOpened': {
      const d = event.data;
      return {
        type: 'dispute.opened',
        object: {
          object: 'dispute',
          stripeObjectId: d.stripeObjectId,
          status: 'open',
          amount: money(d.amount, d.currency),
          description: d.description,
          openedAt: d.openedAt,
        },
      };
    }
    case 'StripeDisputeClosed': {
      const d = event.data;
      return {
        type: 'dispute.closed',
        object: {
          object: 'dispute',
          stripeObjectId: d.stripeObjectId,
          status: d.outcome,
          amount: money(d.amount, d.currency),
          description: d.description,
          closedAt: d.closedAt,
        },
      };
    }
    case 'BalanceMonitorTriggered':
    case 'BalanceMonitorRecovered': {
      const d = event.data;
      return {
        type:
          event.type === 'BalanceMonitorTriggered'
            ? 'balance_monitor.triggered'
            : 'balance_monitor.recovered',
        object: {
          object: 'balance_monitor_alert',
          monitorId: d.monitorId,
          account: d.account,
          currency: d.currency,
          condition: { ...d.condition },
          state: event.type === 'BalanceMonitorTriggered' ? 'triggered' : 'recovered',
          value: d.value,
          balance: { ...d.balance },
          position: d.position,
          at: d.at,
        },
      };
    }
    case 'WebhookEndpointDisabled': {
      const d = event.data;
      return {
        type: 'webhook_endpoint.disabled',
        object: {
          object: 'webhook_endpoint',
          id: d.endpointId,
          status: 'disabled',
          reason: d.reason,
          failure: d.failure ? { ...d.failure } : null,
          disabledAt: d.disabledAt,
        },
      };
    }
  }
}

function bookingRef(d: { bookingId: string; studentId: string; tutorId: string }): JsonObject {
  return { object: 'booking', id: d.bookingId, studentId: d.studentId, tutorId: d.tutorId };
}

/** The public event of a recorded domain event (decoded and checked), or null for one that has none. */
export function publicEventOf(recorded: RecordedEvent): PublicEvent | null {
  if (!SOURCE_TYPE_SET.has(recorded.type)) return null;
  const source = decodeEventOf(recorded, SOURCE_EVENT_TYPES);
  const { type, object } = objectOf(source);
  return {
    id: `evt_${deterministicId('webhook-event', recorded.id).replaceAll('-', '')}`,
    type,
    createdAt: recorded.metadata.occurredAt,
    tenant: recorded.metadata.tenantId,
    position: recorded.position.toString(),
    object,
  };
}

/** The exact body delivered to an endpoint of `apiVersion` (the bytes that are signed). */
export function deliveryBody(event: PublicEvent, apiVersion: WebhookApiVersion): string {
  return JSON.stringify({
    id: event.id,
    object: 'event',
    type: event.type,
    apiVersion,
    createdAt: event.createdAt,
    tenant: event.tenant,
    position: event.position,
    data: { object: event.object },
  });
}
