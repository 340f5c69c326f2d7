import type { SubscriptionTerms } from '../domain/subscription.js';

/** A VIP subscription as the API shows it (GET /v1/subscriptions/{id}). Amounts in minor units. */
export interface SubscriptionView {
  subscriptionId: string;
  studentId: string;
  status: 'active' | 'past_due' | 'canceled';
  /** The terms the current period runs on (a snapshot of the plan when the period started or was upgraded). */
  plan: SubscriptionTerms;
  currentPeriod: { period: number; start: string; end: string; days: number; recognizedThroughDay: number };
  cancelAtPeriodEnd: boolean;
  /** A downgrade scheduled for the period end. */
  pendingPlanId: string | null;
  /** The renewal being retried (dunning): benefits continue until the last retry fails. */
  pastDue: { period: number; attempt: number; nextAttemptAt: string } | null;
  currency: string;
  paid: number;
  recognized: number;
  refunded: number;
  /** paid - recognized - refunded: what the platform still owes in service. */
  deferred: number;
  canceledAt: string | null;
  canceledReason: 'canceled_now' | 'period_end' | 'payment_failed' | null;
  /** Position of the command's last event (command responses only). */
  position?: string;
}
