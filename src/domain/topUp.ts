import { PersistentMap } from '../lib/persistentMap.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { assertAmount, assertCurrency, assertSameCurrency, formatMoney } from './money.js';
import {
  AmountSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  PositiveAmountSchema,
  StripeIdSchema,
  strictObject,
  TextSchema,
} from './schema.js';
import { parseInstant, requireEntityId, requireText, toIso, validationFailed } from './validate.js';

/**
 * A top-up: stream `topup-{t}.{topUpId}`. Money enters through Stripe: initiated -> PaymentIntent
 * created -> succeeded (the wallet stream then posts Dr stripe:balance, Cr wallet) | failed. Card
 * refunds of a succeeded top-up are recorded here after the wallet stream posted them, and so is a card
 * refund that failed at Stripe after the wallet reversed it (its amount is refundable again). No event
 * here moves money: the wallet owns those postings.
 */

export interface TopUpLimits {
  topUpMin: number;
  topUpMax: number;
  allowedCurrencies: readonly string[];
}

export interface InitiateTopUp {
  type: 'InitiateTopUp';
  topUpId: string;
  studentId: string;
  amount: number;
  currency: string;
  /** The tenant's settings in force (snapshot passed by the command layer). */
  limits: TopUpLimits;
  initiatedAt: string;
}

export interface RecordTopUpPaymentIntent {
  type: 'RecordTopUpPaymentIntent';
  paymentIntentId: string;
  clientSecret: string;
}

export interface SucceedTopUp {
  type: 'SucceedTopUp';
  paymentIntentId: string;
  amountReceived: number;
  currency: string;
  succeededAt: string;
}

export interface FailTopUp {
  type: 'FailTopUp';
  /** Null when the payment never got a PaymentIntent (gateway refused it up front). */
  paymentIntentId: string | null;
  reason: string;
  failedAt: string;
}

export interface RecordTopUpRefundToCard {
  type: 'RecordTopUpRefundToCard';
  stripeRefundId: string;
  amount: number;
  currency: string;
  refundedAt: string;
}

/** A recorded card refund failed at Stripe (after the wallet reversed it: WalletCardRefundFailed). */
export interface RecordTopUpCardRefundFailed {
  type: 'RecordTopUpCardRefundFailed';
  stripeRefundId: string;
  amount: number;
  currency: string;
  failureReason: string;
  failedAt: string;
}

export type TopUpCommand =
  | InitiateTopUp
  | RecordTopUpPaymentIntent
  | SucceedTopUp
  | FailTopUp
  | RecordTopUpRefundToCard
  | RecordTopUpCardRefundFailed;

export const TOP_UP_EVENTS = {
  TopUpInitiated: strictObject({
    topUpId: EntityIdSchema,
    studentId: EntityIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    initiatedAt: InstantSchema,
  }),
  TopUpPaymentIntentCreated: strictObject({
    topUpId: EntityIdSchema,
    studentId: EntityIdSchema,
    paymentIntentId: StripeIdSchema,
    clientSecret: TextSchema(),
  }),
  TopUpSucceeded: strictObject({
    topUpId: EntityIdSchema,
    studentId: EntityIdSchema,
    paymentIntentId: StripeIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    succeededAt: InstantSchema,
  }),
  TopUpFailed: strictObject({
    topUpId: EntityIdSchema,
    studentId: EntityIdSchema,
    /** Null when the payment never got a PaymentIntent (the gateway refused it up front). */
    paymentIntentId: Nullable(StripeIdSchema),
    reason: TextSchema(),
    failedAt: InstantSchema,
  }),
  TopUpRefundedToCard: strictObject({
    topUpId: EntityIdSchema,
    studentId: EntityIdSchema,
    stripeRefundId: StripeIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    /** Sum of card refunds of this top-up after this one. */
    refundedTotal: PositiveAmountSchema,
    refundedAt: InstantSchema,
  }),
  /** A card refund recorded above failed at Stripe: its amount is refundable again. */
  TopUpCardRefundFailed: strictObject({
    topUpId: EntityIdSchema,
    studentId: EntityIdSchema,
    stripeRefundId: StripeIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    failureReason: TextSchema(),
    /** Sum of card refunds of this top-up that still stand after this failure. */
    refundedTotal: AmountSchema,
    failedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type TopUpEvent = EventsOf<typeof TOP_UP_EVENTS>;
export type TopUpInitiated = EventOf<typeof TOP_UP_EVENTS, 'TopUpInitiated'>;
export type TopUpPaymentIntentCreated = EventOf<typeof TOP_UP_EVENTS, 'TopUpPaymentIntentCreated'>;
export type TopUpSucceeded = EventOf<typeof TOP_UP_EVENTS, 'TopUpSucceeded'>;
export type TopUpFailed = EventOf<typeof TOP_UP_EVENTS, 'TopUpFailed'>;
export type TopUpRefundedToCard = EventOf<typeof TOP_UP_EVENTS, 'TopUpRefundedToCard'>;
export type TopUpCardRefundFailed = EventOf<typeof TOP_UP_EVENTS, 'TopUpCardRefundFailed'>;

export type TopUpStatus = 'none' | 'initiated' | 'succeeded' | 'failed';

export interface TopUpState {
  status: TopUpStatus;
  topUpId: string | null;
  studentId: string | null;
  amount: number;
  currency: string | null;
  paymentIntentId: string | null;
  clientSecret: string | null;
  failureReason: string | null;
  /** Card refunds that stand (failed ones given back). */
  refundedToCard: number;
  /** Every card refund recorded, by Stripe refund id: its amount and whether it failed since. */
  cardRefunds: PersistentMap<{ amount: number; failed: boolean }>;
}

export const initialTopUpState = (): TopUpState => ({
  status: 'none',
  topUpId: null,
  studentId: null,
  amount: 0,
  currency: null,
  paymentIntentId: null,
  clientSecret: null,
  failureReason: null,
  refundedToCard: 0,
  cardRefunds: PersistentMap.empty(),
});

function requireExisting(state: TopUpState): { topUpId: string; studentId: string; currency: string } {
  if (state.status === 'none' || !state.topUpId || !state.studentId || !state.currency) {
    throw new DomainError('not_found', 'top-up not found');
  }
  return { topUpId: state.topUpId, studentId: state.studentId, currency: state.currency };
}

function requireInitiated(state: TopUpState, action: string): void {
  if (state.status !== 'initiated') {
    throw new DomainError('invalid_state', `cannot ${action}: top-up is ${state.status}`, {
      status: state.status,
    });
  }
}

export function decideTopUp(command: TopUpCommand, state: TopUpState): TopUpEvent[] {
  switch (command.type) {
    case 'InitiateTopUp': {
      const topUpId = requireEntityId(command.topUpId, 'topUpId');
      const studentId = requireEntityId(command.studentId, 'studentId');
      const amount = assertAmount(command.amount);
      const currency = assertCurrency(command.currency);
      const initiatedAt = toIso(parseInstant(command.initiatedAt, 'initiatedAt'));
      if (state.status !== 'none') {
        throw new DomainError('invalid_state', `top-up ${topUpId} already exists (${state.status})`, {
          status: state.status,
        });
      }
      const { topUpMin, topUpMax, allowedCurrencies } = command.limits;
      if (!allowedCurrencies.includes(currency)) {
        validationFailed(`currency ${currency} is not allowed for this tenant`, {
          field: 'currency',
          allowed: [...allowedCurrencies],
        });
      }
      if (amount < topUpMin || amount > topUpMax) {
        throw new DomainError(
          'limit_exceeded',
          `top-up amount ${formatMoney({ amount, currency })} is outside the tenant's limits ${topUpMin}..${topUpMax}`,
          { min: topUpMin, max: topUpMax, requested: amount },
        );
      }
      return [{ type: 'TopUpInitiated', data: { topUpId, studentId, amount, currency, initiatedAt } }];
    }

    case 'RecordTopUpPaymentIntent': {
      const { topUpId, studentId } = requireExisting(state);
      const paymentIntentId = requireText(command.paymentIntentId, 'paymentIntentId', 255);
      const clientSecret = requireText(command.clientSecret, 'clientSecret', 500);
      // Stripe's webhook can settle the payment before the request that created the intent records it;
      // the top-up then already carries this intent and the request's late step has nothing to add.
      if (state.status !== 'initiated' && state.paymentIntentId === paymentIntentId) return [];
      requireInitiated(state, 'record a PaymentIntent');
      if (state.paymentIntentId !== null) {
        throw new DomainError(
          'invalid_state',
          `top-up ${topUpId} already has PaymentIntent ${state.paymentIntentId}`,
          { paymentIntentId: state.paymentIntentId },
        );
      }
      return [
        { type: 'TopUpPaymentIntentCreated', data: { topUpId, studentId, paymentIntentId, clientSecret } },
      ];
    }

    case 'SucceedTopUp': {
      const { topUpId, studentId, currency } = requireExisting(state);
      const paymentIntentId = requireText(command.paymentIntentId, 'paymentIntentId', 255);
      const amountReceived = assertAmount(command.amountReceived, { field: 'amountReceived' });
      const receivedCurrency = assertCurrency(command.currency);
      const succeededAt = toIso(parseInstant(command.succeededAt, 'succeededAt'));
      requireInitiated(state, 'succeed');
      if (state.paymentIntentId !== null && state.paymentIntentId !== paymentIntentId) {
        validationFailed(`PaymentIntent ${paymentIntentId} does not belong to top-up ${topUpId}`, {
          field: 'paymentIntentId',
        });
      }
      assertSameCurrency(currency, receivedCurrency, `top-up ${topUpId}`);
      if (amountReceived !== state.amount) {
        validationFailed(`amount received ${amountReceived} differs from the top-up's ${state.amount}`, {
          field: 'amountReceived',
          expected: state.amount,
        });
      }
      return [
        {
          type: 'TopUpSucceeded',
          data: { topUpId, studentId, paymentIntentId, amount: state.amount, currency, succeededAt },
        },
      ];
    }

    case 'FailTopUp': {
      const { topUpId, studentId } = requireExisting(state);
      const paymentIntentId =
        command.paymentIntentId === null
          ? null
          : requireText(command.paymentIntentId, 'paymentIntentId', 255);
      const reason = requireText(command.reason, 'reason');
      const failedAt = toIso(parseInstant(command.failedAt, 'failedAt'));
      // The same failure reported again (a webhook retry, or the request learning of a decline the
      // webhook already recorded; a request that never got an intent names none): nothing to add.
      // A failure naming another intent, or failing a succeeded top-up, stays a refusal.
      if (
        state.status === 'failed' &&
        (paymentIntentId === null || paymentIntentId === state.paymentIntentId)
      ) {
        return [];
      }
      requireInitiated(state, 'fail');
      return [{ type: 'TopUpFailed', data: { topUpId, studentId, paymentIntentId, reason, failedAt } }];
    }

    case 'RecordTopUpRefundToCard': {
      const { topUpId, studentId, currency } = requireExisting(state);
      const stripeRefundId = requireText(command.stripeRefundId, 'stripeRefundId', 255);
      const amount = assertAmount(command.amount);
      const refundCurrency = assertCurrency(command.currency);
      const refundedAt = toIso(parseInstant(command.refundedAt, 'refundedAt'));
      if (state.status !== 'succeeded') {
        throw new DomainError('invalid_state', `cannot refund to the card: top-up is ${state.status}`, {
          status: state.status,
        });
      }
      assertSameCurrency(currency, refundCurrency, `top-up ${topUpId}`);
      if (state.cardRefunds.get(stripeRefundId)) {
        throw new DomainError('invalid_state', `card refund ${stripeRefundId} was already recorded`, {
          stripeRefundId,
        });
      }
      if (state.refundedToCard + amount > state.amount) {
        throw new DomainError(
          'limit_exceeded',
          `card refund of ${amount} exceeds what is left of top-up ${topUpId} (${state.amount - state.refundedToCard})`,
          { amount: state.amount, refunded: state.refundedToCard, requested: amount },
        );
      }
      return [
        {
          type: 'TopUpRefundedToCard',
          data: {
            topUpId,
            studentId,
            stripeRefundId,
            amount,
            currency,
            refundedTotal: state.refundedToCard + amount,
            refundedAt,
          },
        },
      ];
    }

    case 'RecordTopUpCardRefundFailed': {
      const { topUpId, studentId, currency } = requireExisting(state);
      const stripeRefundId = requireText(command.stripeRefundId, 'stripeRefundId', 255);
      const amount = assertAmount(command.amount);
      const refundCurrency = assertCurrency(command.currency);
      const failureReason = requireText(command.failureReason, 'failureReason');
      const failedAt = toIso(parseInstant(command.failedAt, 'failedAt'));
      assertSameCurrency(currency, refundCurrency, `top-up ${topUpId}`);
      const refund = state.cardRefunds.get(stripeRefundId);
      if (!refund) {
        throw new DomainError(
          'not_found',
          `card refund ${stripeRefundId} of top-up ${topUpId} is not recorded`,
          {
            stripeRefundId,
          },
        );
      }
      if (refund.failed) {
        throw new DomainError('invalid_state', `card refund ${stripeRefundId} already failed`, {
          stripeRefundId,
          status: 'failed',
        });
      }
      if (refund.amount !== amount) {
        validationFailed(`card refund ${stripeRefundId} was of ${refund.amount}, not ${amount}`, {
          field: 'amount',
          expected: refund.amount,
        });
      }
      return [
        {
          type: 'TopUpCardRefundFailed',
          data: {
            topUpId,
            studentId,
            stripeRefundId,
            amount,
            currency,
            failureReason,
            refundedTotal: state.refundedToCard - amount,
            failedAt,
          },
        },
      ];
    }

    default:
      throw new DomainError('validation_failed', 'unknown top-up command');
  }
}

export function evolveTopUp(state: TopUpState, event: TopUpEvent): TopUpState {
  switch (event.type) {
    case 'TopUpInitiated': {
      invariant(state.status === 'none', 'top-up initiated twice');
      const e = event.data;
      return {
        ...state,
        status: 'initiated',
        topUpId: e.topUpId,
        studentId: e.studentId,
        amount: e.amount,
        currency: e.currency,
      };
    }
    case 'TopUpPaymentIntentCreated':
      invariant(state.status === 'initiated', `PaymentIntent recorded on a ${state.status} top-up`);
      return { ...state, paymentIntentId: event.data.paymentIntentId, clientSecret: event.data.clientSecret };
    case 'TopUpSucceeded':
      invariant(state.status === 'initiated', `top-up succeeded from ${state.status}`);
      invariant(event.data.amount === state.amount, 'top-up succeeded with another amount');
      // The client secret is only useful while the card step is pending.
      return {
        ...state,
        status: 'succeeded',
        paymentIntentId: event.data.paymentIntentId,
        clientSecret: null,
      };
    case 'TopUpFailed':
      invariant(state.status === 'initiated', `top-up failed from ${state.status}`);
      return {
        ...state,
        status: 'failed',
        paymentIntentId: event.data.paymentIntentId ?? state.paymentIntentId,
        clientSecret: null,
        failureReason: event.data.reason,
      };
    case 'TopUpRefundedToCard': {
      invariant(state.status === 'succeeded', `card refund of a ${state.status} top-up`);
      const refundedToCard = state.refundedToCard + event.data.amount;
      invariant(refundedToCard <= state.amount, 'card refunds exceed the top-up');
      invariant(refundedToCard === event.data.refundedTotal, 'card refund total disagrees with the fold');
      return {
        ...state,
        refundedToCard,
        cardRefunds: state.cardRefunds.set(event.data.stripeRefundId, {
          amount: event.data.amount,
          failed: false,
        }),
      };
    }
    case 'TopUpCardRefundFailed': {
      const refund = state.cardRefunds.get(event.data.stripeRefundId);
      invariant(refund && !refund.failed, 'card refund failed twice or was never recorded');
      invariant(refund.amount === event.data.amount, 'failed card refund disagrees with the refund');
      const refundedToCard = state.refundedToCard - event.data.amount;
      invariant(refundedToCard === event.data.refundedTotal, 'card refund total disagrees with the fold');
      return {
        ...state,
        refundedToCard,
        cardRefunds: state.cardRefunds.set(event.data.stripeRefundId, { ...refund, failed: true }),
      };
    }
  }
}

export const topUpDecider: Decider<TopUpCommand, TopUpEvent, TopUpState> = {
  initialState: initialTopUpState,
  decide: decideTopUp,
  evolve: evolveTopUp,
};
