import { Type } from '@sinclair/typebox';
import { accountPath, describeAccount, requireAccount } from './accounts.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import {
  EffectiveFields,
  type EffectiveInput,
  effectiveFieldsOf,
  periodOf,
  periodStartMs,
} from './effectiveTime.js';
import { DomainError, invariant } from './errors.js';
import { JournalEntrySchema } from './journal.js';
import { manualAdjustmentEntry } from './manualAdjustment.js';
import { assertAmount, assertCurrency } from './money.js';
import {
  type Actor,
  ActorSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  PositiveAmountSchema,
  SideSchema,
  strictObject,
  TextSchema,
} from './schema.js';
import {
  parseInstant,
  requireDirection,
  requireEntityId,
  requireFinanceAdmin,
  requireText,
  requireUuid,
  toIso,
  validationFailed,
} from './validate.js';

/**
 * A finance-admin manual adjustment of an unconstrained account: stream `adjustment-{t}.{adjustmentId}`,
 * one adjustment per stream, posted against `platform:adjustments`. Reason and actor are in the event.
 *
 * Accounts whose balance another stream tracks are adjusted in that stream instead, so its checks stay
 * true: student wallets with AdjustWallet (wallet.ts), tutor available earnings and receivables with
 * AdjustTutor (tutor.ts). Tutor pending earnings are tracked per booking and are not adjusted by hand.
 */

export interface AdjustLedger extends EffectiveInput {
  type: 'AdjustLedger';
  adjustmentId: string;
  account: string;
  /** Side of the posting on `account`; platform:adjustments takes the other side. */
  direction: 'debit' | 'credit';
  amount: number;
  currency: string;
  reason: string;
  actor: Actor;
  entryId: string;
  adjustedAt: string;
  /** Tenant setting in force; the currency must be one of these. */
  allowedCurrencies: readonly string[];
}

export type AdjustmentCommand = AdjustLedger;

export const ADJUSTMENT_EVENTS = {
  LedgerAdjusted: strictObject({
    adjustmentId: EntityIdSchema,
    account: Type.String({ minLength: 1, maxLength: 300 }),
    direction: SideSchema,
    amount: PositiveAmountSchema,
    currency: CurrencySchema,
    reason: TextSchema(),
    actor: ActorSchema,
    adjustedAt: InstantSchema,
    entry: JournalEntrySchema,
    ...EffectiveFields,
  }),
} as const satisfies EventSchemas;

export type AdjustmentEvent = EventsOf<typeof ADJUSTMENT_EVENTS>;
export type LedgerAdjusted = EventOf<typeof ADJUSTMENT_EVENTS, 'LedgerAdjusted'>;

export interface AdjustmentState {
  adjusted: boolean;
  entryId: string | null;
}

export const initialAdjustmentState = (): AdjustmentState => ({ adjusted: false, entryId: null });

/**
 * The LedgerAdjusted an AdjustLedger decides. `backdated`: its effectiveAt may lie in an earlier month
 * than adjustedAt (only the periods stream, which knows the closed periods, books those: periods.ts);
 * otherwise it must lie in adjustedAt's month, which cannot be closed yet.
 */
export function ledgerAdjustment(command: AdjustLedger, backdated: boolean): LedgerAdjusted['data'] {
  const adjustmentId = requireEntityId(command.adjustmentId, 'adjustmentId');
  const ref = requireAccount(command.account);
  const direction = requireDirection(command.direction);
  const amount = assertAmount(command.amount);
  const currency = assertCurrency(command.currency);
  const reason = requireText(command.reason, 'reason');
  const actor = requireFinanceAdmin(command.actor);
  const entryId = requireUuid(command.entryId, 'entryId');
  const adjustedAtMs = parseInstant(command.adjustedAt, 'adjustedAt');
  const adjustedAt = toIso(adjustedAtMs);
  const effective = effectiveFieldsOf(
    command,
    adjustedAt,
    backdated
      ? {}
      : {
          earliestMs: periodStartMs(periodOf(adjustedAtMs)),
          earliestReason: 'effectiveAt before this month is booked through the periods stream',
        },
  );
  if (!command.allowedCurrencies.includes(currency)) {
    validationFailed(`currency ${currency} is not allowed for this tenant`, { field: 'currency' });
  }
  const info = describeAccount(ref);
  if (ref.kind === 'student_wallet') {
    validationFailed('student wallets are adjusted in their wallet stream (AdjustWallet)', {
      field: 'account',
    });
  }
  if (ref.kind === 'student_credits') {
    validationFailed('referral credits move only through the referral flow (referral.ts)', {
      field: 'account',
    });
  }
  if (
    ref.kind === 'tutor_earnings_available' ||
    ref.kind === 'tutor_receivable' ||
    ref.kind === 'tutor_earnings_pending'
  ) {
    validationFailed('tutor earnings are adjusted in the tutor stream (AdjustTutor)', {
      field: 'account',
    });
  }
  invariant(info.constraint === null, 'only unconstrained accounts reach here');
  if (ref.kind === 'platform_adjustments') {
    validationFailed('platform:adjustments is the contra account of every adjustment', {
      field: 'account',
    });
  }
  const account = accountPath(ref);
  const entry = manualAdjustmentEntry({
    entryId,
    adjustmentId,
    account,
    label: account,
    direction,
    amount,
    currency,
    reason,
  });
  return {
    adjustmentId,
    account,
    direction,
    amount,
    currency,
    reason,
    actor,
    adjustedAt,
    entry,
    ...effective,
  };
}

export function decideAdjustment(command: AdjustmentCommand, state: AdjustmentState): AdjustmentEvent[] {
  switch (command.type) {
    case 'AdjustLedger': {
      const data = ledgerAdjustment(command, false);
      if (state.adjusted) {
        throw new DomainError('invalid_state', `adjustment ${data.adjustmentId} was already made`, {
          adjustmentId: data.adjustmentId,
        });
      }
      return [{ type: 'LedgerAdjusted', data }];
    }
    default:
      throw new DomainError('validation_failed', 'unknown adjustment command');
  }
}

export function evolveAdjustment(state: AdjustmentState, event: AdjustmentEvent): AdjustmentState {
  switch (event.type) {
    case 'LedgerAdjusted':
      invariant(!state.adjusted, 'an adjustment stream holds one adjustment');
      return { adjusted: true, entryId: event.data.entry.entryId };
  }
}

export const adjustmentDecider: Decider<AdjustmentCommand, AdjustmentEvent, AdjustmentState> = {
  initialState: initialAdjustmentState,
  decide: decideAdjustment,
  evolve: evolveAdjustment,
};
