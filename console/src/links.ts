import { href } from './router';

/** Where a thing found by search (or named in an event) is read in the console. */
export function linkOf(
  kind: string,
  id: string,
  currency?: string | null,
): { href: string; label: string }[] {
  switch (kind) {
    case 'student':
      return [
        { href: href('accounts', `student:${id}:wallet`), label: 'wallet' },
        { href: href('story', 'student', id), label: 'all events' },
      ];
    case 'tutor':
      return [
        { href: href('accounts', `tutor:${id}:earnings:available`), label: 'available earnings' },
        { href: href('accounts', `tutor:${id}:earnings:pending`), label: 'pending earnings' },
        { href: href('story', 'tutor', id), label: 'all events' },
      ];
    case 'entry':
      return [{ href: href('entries', id), label: 'journal entry' }];
    case 'event':
      return [{ href: href('events', id), label: 'event and its causes' }];
    case 'account':
      return [{ href: href('accounts', id, currency ? { currency } : {}), label: 'account' }];
    default:
      return [{ href: href('story', kind, id), label: 'money story' }];
  }
}

export const KIND_LABELS: Record<string, string> = {
  student: 'Student',
  tutor: 'Tutor',
  booking: 'Booking',
  payout: 'Payout',
  topup: 'Top-up',
  refund: 'Refund',
  adjustment: 'Adjustment',
  adjustment_proposal: 'Adjustment proposal',
  reconciliation_run: 'Reconciliation run',
  course: 'Course',
  subscription: 'Subscription',
  promotion: 'Promotion',
  stripe: 'Stripe object',
  idempotency_key: 'Idempotency key',
  entry: 'Journal entry',
  event: 'Event',
  account: 'Account',
};
