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
import { type BookingCommand, type BookingEvent, type BookingState, bookingDecider } from './booking.js';
import type { Decider } from './decider.js';
import { type PayoutCommand, type PayoutEvent, type PayoutState, payoutDecider } from './payout.js';
import type { StreamCategory } from './streams.js';
import {
  type StripeChargeCommand,
  type StripeChargeEvent,
  type StripeChargeState,
  stripeChargeDecider,
} from './stripeCharge.js';
import {
  type TenantSettingsCommand,
  type TenantSettingsEvent,
  type TenantSettingsState,
  tenantSettingsDecider,
} from './tenantSettings.js';
import { type TopUpCommand, type TopUpEvent, type TopUpState, topUpDecider } from './topUp.js';
import { type TutorCommand, type TutorEvent, type TutorState, tutorDecider } from './tutor.js';
import { type WalletCommand, type WalletEvent, type WalletState, walletDecider } from './wallet.js';

export * from './accounts.js';
export * from './adjustment.js';
export * from './balances.js';
export * from './booking.js';
export * from './decider.js';
export * from './errors.js';
export * from './ids.js';
export * from './journal.js';
export * from './money.js';
export * from './payout.js';
export * from './streams.js';
export * from './stripeCharge.js';
export * from './tenantSettings.js';
export * from './topUp.js';
export * from './tutor.js';
export * from './validate.js';
export * from './wallet.js';

/** Command, event and state types of each category that has a decider. */
export interface DeciderTypes {
  wallet: { command: WalletCommand; event: WalletEvent; state: WalletState };
  booking: { command: BookingCommand; event: BookingEvent; state: BookingState };
  tutor: { command: TutorCommand; event: TutorEvent; state: TutorState };
  payout: { command: PayoutCommand; event: PayoutEvent; state: PayoutState };
  topup: { command: TopUpCommand; event: TopUpEvent; state: TopUpState };
  tenant: { command: TenantSettingsCommand; event: TenantSettingsEvent; state: TenantSettingsState };
  adjustment: { command: AdjustmentCommand; event: AdjustmentEvent; state: AdjustmentState };
  stripe: { command: StripeChargeCommand; event: StripeChargeEvent; state: StripeChargeState };
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
  stripe: stripeChargeDecider,
};

export function deciderFor<C extends DeciderCategory>(category: C): DeciderFor<C> {
  return deciders[category];
}

export function hasDecider(category: StreamCategory): category is DeciderCategory {
  return Object.hasOwn(deciders, category);
}

/** Event types each category's stream may hold (for subscription filters and upcasting checks). */
export const EVENT_TYPES: { [C in DeciderCategory]: readonly DeciderTypes[C]['event']['type'][] } = {
  wallet: [
    'WalletToppedUp',
    'WalletHoldPlaced',
    'WalletHoldCaptured',
    'WalletHoldReleased',
    'WalletRefunded',
    'WalletRefundedToCard',
    'WalletAdjusted',
  ],
  booking: ['BookingPlaced', 'BookingCompleted', 'BookingCancelled', 'BookingExpired', 'BookingRefunded'],
  tutor: [
    'TutorEarningsRecorded',
    'TutorEarningsCleared',
    'TutorEarningsReversed',
    'TutorPayoutHoldPlaced',
    'TutorPayoutHoldPosted',
    'TutorPayoutHoldReleased',
    'TutorAdjusted',
  ],
  payout: ['PayoutRequested', 'PayoutSubmitted', 'PayoutPaid', 'PayoutFailed'],
  topup: [
    'TopUpInitiated',
    'TopUpPaymentIntentCreated',
    'TopUpSucceeded',
    'TopUpFailed',
    'TopUpRefundedToCard',
  ],
  tenant: ['TenantSettingsUpdated'],
  adjustment: ['LedgerAdjusted'],
  stripe: ['StripeFeeBooked', 'StripeDisputeOpened', 'StripeDisputeClosed'],
};

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
