import { accountPath, describeAccount, requireAccount } from './accounts.js';
import type { Actor, Decider, DomainEvent } from './decider.js';
import { DomainError, invariant } from './errors.js';
import type { JournalEntry } from './journal.js';
import { manualAdjustmentEntry } from './manualAdjustment.js';
import { assertAmount, assertCurrency } from './money.js';
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

export interface AdjustLedger {
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

export type LedgerAdjusted = DomainEvent<
  'LedgerAdjusted',
  {
    adjustmentId: string;
    account: string;
    direction: 'debit' | 'credit';
    amount: number;
    currency: string;
    reason: string;
    actor: Actor;
    adjustedAt: string;
    entry: JournalEntry;
  }
>;

export type AdjustmentEvent = LedgerAdjusted;

export interface AdjustmentState {
  adjusted: boolean;
  entryId: string | null;
}

export const initialAdjustmentState = (): AdjustmentState => ({ adjusted: false, entryId: null });

export function decideAdjustment(command: AdjustmentCommand, state: AdjustmentState): AdjustmentEvent[] {
  switch (command.type) {
    case 'AdjustLedger': {
      const adjustmentId = requireEntityId(command.adjustmentId, 'adjustmentId');
      const ref = requireAccount(command.account);
      const direction = requireDirection(command.direction);
      const amount = assertAmount(command.amount);
      const currency = assertCurrency(command.currency);
      const reason = requireText(command.reason, 'reason');
      const actor = requireFinanceAdmin(command.actor);
      const entryId = requireUuid(command.entryId, 'entryId');
      const adjustedAt = toIso(parseInstant(command.adjustedAt, 'adjustedAt'));
      if (!command.allowedCurrencies.includes(currency)) {
        validationFailed(`currency ${currency} is not allowed for this tenant`, { field: 'currency' });
      }
      const info = describeAccount(ref);
      if (ref.kind === 'student_wallet') {
        validationFailed('student wallets are adjusted in their wallet stream (AdjustWallet)', {
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
      if (state.adjusted) {
        throw new DomainError('invalid_state', `adjustment ${adjustmentId} was already made`, {
          adjustmentId,
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
      return [
        {
          type: 'LedgerAdjusted',
          data: { adjustmentId, account, direction, amount, currency, reason, actor, adjustedAt, entry },
        },
      ];
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
