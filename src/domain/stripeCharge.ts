import { Type } from '@sinclair/typebox';
import { PLATFORM_EXPENSE_DISPUTES, PLATFORM_EXPENSE_STRIPE_FEES, STRIPE_BALANCE } from './accounts.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { JournalEntrySchema, postEntry } from './journal.js';
import { assertAmount, assertCurrency, formatMoney } from './money.js';
import {
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  PositiveAmountSchema,
  strictObject,
  TextSchema,
} from './schema.js';
import {
  parseInstant,
  requireEntityId,
  requireText,
  requireUuid,
  toIso,
  validationFailed,
} from './validate.js';

/**
 * Stripe fees and disputes: stream `stripe-{t}.{stripeObjectId}` (a balance transaction or a dispute
 * id), so a webhook or reconciliation run that sees the same object twice decides against the same
 * stream. Fee: Dr platform:expense:stripe-fees, Cr stripe:balance. Dispute opened: Stripe withdraws
 * the disputed amount (Dr platform:expense:disputes, Cr stripe:balance); won: it comes back (the
 * reverse); lost: nothing more moves.
 */

export interface BookStripeFee {
  type: 'BookStripeFee';
  stripeObjectId: string;
  amount: number;
  currency: string;
  description: string;
  entryId: string;
  bookedAt: string;
}

export interface OpenStripeDispute {
  type: 'OpenStripeDispute';
  stripeObjectId: string;
  amount: number;
  currency: string;
  description: string;
  entryId: string;
  openedAt: string;
}

export interface CloseStripeDispute {
  type: 'CloseStripeDispute';
  stripeObjectId: string;
  outcome: 'won' | 'lost';
  description: string;
  entryId: string;
  closedAt: string;
}

export type StripeChargeCommand = BookStripeFee | OpenStripeDispute | CloseStripeDispute;

export const STRIPE_CHARGE_EVENTS = {
  StripeFeeBooked: strictObject({
    stripeObjectId: EntityIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    description: TextSchema(),
    bookedAt: InstantSchema,
    entry: JournalEntrySchema,
  }),
  StripeDisputeOpened: strictObject({
    stripeObjectId: EntityIdSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    description: TextSchema(),
    openedAt: InstantSchema,
    entry: JournalEntrySchema,
  }),
  StripeDisputeClosed: strictObject({
    stripeObjectId: EntityIdSchema,
    outcome: Type.Union([Type.Literal('won'), Type.Literal('lost')]),
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    description: TextSchema(),
    closedAt: InstantSchema,
    /** Present when won (the withdrawn amount returns); a lost dispute moves nothing more. */
    entry: Type.Optional(JournalEntrySchema),
  }),
} as const satisfies EventSchemas;

export type StripeChargeEvent = EventsOf<typeof STRIPE_CHARGE_EVENTS>;
export type StripeFeeBooked = EventOf<typeof STRIPE_CHARGE_EVENTS, 'StripeFeeBooked'>;
export type StripeDisputeOpened = EventOf<typeof STRIPE_CHARGE_EVENTS, 'StripeDisputeOpened'>;
export type StripeDisputeClosed = EventOf<typeof STRIPE_CHARGE_EVENTS, 'StripeDisputeClosed'>;

export interface StripeChargeState {
  stripeObjectId: string | null;
  fee: { amount: number; currency: string } | null;
  dispute: { amount: number; currency: string; status: 'open' | 'won' | 'lost' } | null;
}

export const initialStripeChargeState = (): StripeChargeState => ({
  stripeObjectId: null,
  fee: null,
  dispute: null,
});

function checkObject(state: StripeChargeState, value: unknown): string {
  const id = requireEntityId(value, 'stripeObjectId');
  if (state.stripeObjectId !== null && state.stripeObjectId !== id) {
    validationFailed(`command for ${id} sent to the stream of ${state.stripeObjectId}`, {
      field: 'stripeObjectId',
    });
  }
  return id;
}

export function decideStripeCharge(
  command: StripeChargeCommand,
  state: StripeChargeState,
): StripeChargeEvent[] {
  switch (command.type) {
    case 'BookStripeFee': {
      const stripeObjectId = checkObject(state, command.stripeObjectId);
      const amount = assertAmount(command.amount);
      const currency = assertCurrency(command.currency);
      const description = requireText(command.description, 'description');
      const entryId = requireUuid(command.entryId, 'entryId');
      const bookedAt = toIso(parseInstant(command.bookedAt, 'bookedAt'));
      if (state.fee) {
        throw new DomainError('invalid_state', `the fee of ${stripeObjectId} was already booked`, {
          stripeObjectId,
        });
      }
      const entry = postEntry({
        entryId,
        currency,
        description: `Stripe fee ${stripeObjectId} (${formatMoney({ amount, currency })}): ${description}`,
        lines: [
          { account: PLATFORM_EXPENSE_STRIPE_FEES, side: 'debit', amount },
          { account: STRIPE_BALANCE, side: 'credit', amount },
        ],
      });
      return [
        { type: 'StripeFeeBooked', data: { stripeObjectId, amount, currency, description, bookedAt, entry } },
      ];
    }
    case 'OpenStripeDispute': {
      const stripeObjectId = checkObject(state, command.stripeObjectId);
      const amount = assertAmount(command.amount);
      const currency = assertCurrency(command.currency);
      const description = requireText(command.description, 'description');
      const entryId = requireUuid(command.entryId, 'entryId');
      const openedAt = toIso(parseInstant(command.openedAt, 'openedAt'));
      if (state.dispute) {
        throw new DomainError('invalid_state', `dispute ${stripeObjectId} was already opened`, {
          stripeObjectId,
          status: state.dispute.status,
        });
      }
      const entry = postEntry({
        entryId,
        currency,
        description: `Dispute ${stripeObjectId} opened: ${formatMoney({ amount, currency })} withdrawn by Stripe`,
        lines: [
          { account: PLATFORM_EXPENSE_DISPUTES, side: 'debit', amount },
          { account: STRIPE_BALANCE, side: 'credit', amount },
        ],
      });
      return [
        {
          type: 'StripeDisputeOpened',
          data: { stripeObjectId, amount, currency, description, openedAt, entry },
        },
      ];
    }
    case 'CloseStripeDispute': {
      const stripeObjectId = checkObject(state, command.stripeObjectId);
      if (command.outcome !== 'won' && command.outcome !== 'lost') {
        throw new DomainError('validation_failed', "outcome must be 'won' or 'lost'", { field: 'outcome' });
      }
      const description = requireText(command.description, 'description');
      const entryId = requireUuid(command.entryId, 'entryId');
      const closedAt = toIso(parseInstant(command.closedAt, 'closedAt'));
      const dispute = state.dispute;
      if (!dispute) throw new DomainError('not_found', `dispute ${stripeObjectId} was never opened`);
      if (dispute.status !== 'open') {
        throw new DomainError('invalid_state', `dispute ${stripeObjectId} was already ${dispute.status}`, {
          status: dispute.status,
        });
      }
      const { amount, currency } = dispute;
      const data: StripeDisputeClosed['data'] = {
        stripeObjectId,
        outcome: command.outcome,
        amount,
        currency,
        description,
        closedAt,
      };
      if (command.outcome === 'won') {
        data.entry = postEntry({
          entryId,
          currency,
          description: `Dispute ${stripeObjectId} won: ${formatMoney({ amount, currency })} returned by Stripe`,
          lines: [
            { account: STRIPE_BALANCE, side: 'debit', amount },
            { account: PLATFORM_EXPENSE_DISPUTES, side: 'credit', amount },
          ],
        });
      }
      return [{ type: 'StripeDisputeClosed', data }];
    }
    default:
      throw new DomainError('validation_failed', 'unknown Stripe charge command');
  }
}

export function evolveStripeCharge(state: StripeChargeState, event: StripeChargeEvent): StripeChargeState {
  const stripeObjectId = event.data.stripeObjectId;
  invariant(state.stripeObjectId === null || state.stripeObjectId === stripeObjectId, 'mixed Stripe objects');
  switch (event.type) {
    case 'StripeFeeBooked':
      invariant(state.fee === null, 'fee booked twice');
      return { ...state, stripeObjectId, fee: { amount: event.data.amount, currency: event.data.currency } };
    case 'StripeDisputeOpened':
      invariant(state.dispute === null, 'dispute opened twice');
      return {
        ...state,
        stripeObjectId,
        dispute: { amount: event.data.amount, currency: event.data.currency, status: 'open' },
      };
    case 'StripeDisputeClosed': {
      const dispute = state.dispute;
      invariant(dispute && dispute.status === 'open', 'dispute closed twice or never opened');
      invariant(dispute.currency === event.data.currency, 'dispute closed in another currency');
      invariant(
        (event.data.outcome === 'won') === (event.data.entry !== undefined),
        'won disputes carry an entry',
      );
      return { ...state, dispute: { ...dispute, status: event.data.outcome } };
    }
  }
}

export const stripeChargeDecider: Decider<StripeChargeCommand, StripeChargeEvent, StripeChargeState> = {
  initialState: initialStripeChargeState,
  decide: decideStripeCharge,
  evolve: evolveStripeCharge,
};
