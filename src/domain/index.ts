/**
 * The pure domain: money, accounts, journal entries, balances, and one decider per aggregate. The
 * registry below maps each stream category to its decider so the command layer can be generic:
 * load `streamName(category, tenant, id)`, fold with `evolve`, `decide`, append.
 */
import {
  type AdjustmentCommand,
  type AdjustmentEvent,
  type AdjustmentState,
  adjustmentDecider,
} from './adjustment.js';
import {
  type AdjustmentProposalCommand,
  type AdjustmentProposalEvent,
  type AdjustmentProposalState,
  adjustmentProposalDecider,
} from './adjustmentProposal.js';
import {
  type BalanceMonitorCommand,
  type BalanceMonitorEvent,
  type BalanceMonitorState,
  balanceMonitorDecider,
} from './balanceMonitor.js';
import {
  type BillingSettingsCommand,
  type BillingSettingsEvent,
  type BillingSettingsState,
  billingSettingsDecider,
} from './billingSettings.js';
import { type BookingCommand, type BookingEvent, type BookingState, bookingDecider } from './booking.js';
import type { Decider } from './decider.js';
import {
  type DocumentSeriesCommand,
  type DocumentSeriesEvent,
  type DocumentSeriesState,
  documentSeriesDecider,
} from './documentSeries.js';
import {
  type GuardianshipCommand,
  type GuardianshipEvent,
  type GuardianshipState,
  guardianshipDecider,
} from './guardianship.js';
import { type PayoutCommand, type PayoutEvent, type PayoutState, payoutDecider } from './payout.js';
import { type PeriodsCommand, type PeriodsEvent, type PeriodsState, periodsDecider } from './periods.js';
import {
  type PromoCodeCommand,
  type PromoCodeEvent,
  type PromoCodeState,
  promoCodeDecider,
} from './promoCode.js';
import { type ReferralCommand, type ReferralEvent, type ReferralState, referralDecider } from './referral.js';
import type { StreamCategory } from './streams.js';
import {
  type StripeChargeCommand,
  type StripeChargeEvent,
  type StripeChargeState,
  stripeChargeDecider,
} from './stripeCharge.js';
import {
  type SubscriptionCommand,
  type SubscriptionEvent,
  type SubscriptionState,
  subscriptionDecider,
} from './subscription.js';
import {
  type PlanCatalogCommand,
  type PlanCatalogEvent,
  type PlanCatalogState,
  planCatalogDecider,
} from './subscriptionPlans.js';
import {
  type TenantSettingsCommand,
  type TenantSettingsEvent,
  type TenantSettingsState,
  tenantSettingsDecider,
} from './tenantSettings.js';
import { type TopUpCommand, type TopUpEvent, type TopUpState, topUpDecider } from './topUp.js';
import { type TutorCommand, type TutorEvent, type TutorState, tutorDecider } from './tutor.js';
import { type WalletCommand, type WalletEvent, type WalletState, walletDecider } from './wallet.js';
import {
  type WebhookEndpointCommand,
  type WebhookEndpointEvent,
  type WebhookEndpointsState,
  webhookEndpointsDecider,
} from './webhookEndpoints.js';

export * from './accounts.js';
export * from './adjustment.js';
export * from './adjustmentProposal.js';
export * from './balanceMonitor.js';
export * from './balances.js';
export * from './billingSettings.js';
export * from './booking.js';
export * from './bookingPrice.js';
export * from './decider.js';
export * from './documentSeries.js';
export * from './effectiveTime.js';
export * from './errors.js';
export * from './events.js';
export * from './guardianship.js';
export * from './ids.js';
export * from './journal.js';
export * from './metadata.js';
export * from './money.js';
export * from './payout.js';
export * from './periods.js';
export * from './promoCode.js';
export * from './reconciliationRun.js';
export * from './referral.js';
export * from './schema.js';
export * from './streams.js';
export * from './stripeCharge.js';
export * from './subscription.js';
export * from './subscriptionPlans.js';
export * from './tax.js';
export * from './tenantSettings.js';
export * from './topUp.js';
export * from './tutor.js';
export * from './validate.js';
export * from './wallet.js';
export * from './webhookEndpoints.js';

/** Command, event and state types of each category that has a decider. */
export interface DeciderTypes {
  wallet: { command: WalletCommand; event: WalletEvent; state: WalletState };
  booking: { command: BookingCommand; event: BookingEvent; state: BookingState };
  tutor: { command: TutorCommand; event: TutorEvent; state: TutorState };
  payout: { command: PayoutCommand; event: PayoutEvent; state: PayoutState };
  topup: { command: TopUpCommand; event: TopUpEvent; state: TopUpState };
  tenant: { command: TenantSettingsCommand; event: TenantSettingsEvent; state: TenantSettingsState };
  adjustment: { command: AdjustmentCommand; event: AdjustmentEvent; state: AdjustmentState };
  adjustmentproposal: {
    command: AdjustmentProposalCommand;
    event: AdjustmentProposalEvent;
    state: AdjustmentProposalState;
  };
  stripe: { command: StripeChargeCommand; event: StripeChargeEvent; state: StripeChargeState };
  webhook: { command: WebhookEndpointCommand; event: WebhookEndpointEvent; state: WebhookEndpointsState };
  balancemonitor: { command: BalanceMonitorCommand; event: BalanceMonitorEvent; state: BalanceMonitorState };
  docseries: { command: DocumentSeriesCommand; event: DocumentSeriesEvent; state: DocumentSeriesState };
  billing: { command: BillingSettingsCommand; event: BillingSettingsEvent; state: BillingSettingsState };
  promo: { command: PromoCodeCommand; event: PromoCodeEvent; state: PromoCodeState };
  guardianship: { command: GuardianshipCommand; event: GuardianshipEvent; state: GuardianshipState };
  period: { command: PeriodsCommand; event: PeriodsEvent; state: PeriodsState };
  plans: { command: PlanCatalogCommand; event: PlanCatalogEvent; state: PlanCatalogState };
  subscription: { command: SubscriptionCommand; event: SubscriptionEvent; state: SubscriptionState };
  referral: { command: ReferralCommand; event: ReferralEvent; state: ReferralState };
}

export type DeciderCategory = keyof DeciderTypes;

export type DeciderFor<C extends DeciderCategory> = Decider<
  DeciderTypes[C]['command'],
  DeciderTypes[C]['event'],
  DeciderTypes[C]['state']
>;

/** Every category with a decider (reconciliation runs are written by the reconciler, not decided here). */
export const deciders: { [C in DeciderCategory]: DeciderFor<C> } = {
  wallet: walletDecider,
  booking: bookingDecider,
  tutor: tutorDecider,
  payout: payoutDecider,
  topup: topUpDecider,
  tenant: tenantSettingsDecider,
  adjustment: adjustmentDecider,
  adjustmentproposal: adjustmentProposalDecider,
  stripe: stripeChargeDecider,
  webhook: webhookEndpointsDecider,
  balancemonitor: balanceMonitorDecider,
  docseries: documentSeriesDecider,
  billing: billingSettingsDecider,
  promo: promoCodeDecider,
  guardianship: guardianshipDecider,
  period: periodsDecider,
  plans: planCatalogDecider,
  subscription: subscriptionDecider,
  referral: referralDecider,
};

export function deciderFor<C extends DeciderCategory>(category: C): DeciderFor<C> {
  return deciders[category];
}

export function hasDecider(category: StreamCategory): category is DeciderCategory {
  return Object.hasOwn(deciders, category);
}

/** Folds events into a state with a decider (the load half of load -> decide -> append). */
export function fold<Command, Event, State>(
  decider: Decider<Command, Event, State>,
  events: Iterable<Event>,
  from: State = decider.initialState(),
): State {
  let state = from;
  for (const event of events) state = decider.evolve(state, event);
  return state;
}
