import type { Decider } from '../../src/domain/decider.js';
import { DomainError } from '../../src/domain/errors.js';

/** A minimal decider for the generic handler's tests: a jar of coins that cannot go below zero. */
export type JarCommand = { type: 'Deposit'; amount: number } | { type: 'Withdraw'; amount: number };
export type JarEvent =
  | { type: 'Deposited'; data: { amount: number } }
  | { type: 'Withdrawn'; data: { amount: number } };
export interface JarState {
  balance: number;
  events: number;
}

export const jarDecider: Decider<JarCommand, JarEvent, JarState> = {
  initialState: () => ({ balance: 0, events: 0 }),
  decide(command, state) {
    if (!Number.isSafeInteger(command.amount) || command.amount <= 0) {
      throw new DomainError('validation_failed', 'amount must be a positive integer');
    }
    if (command.type === 'Deposit') return [{ type: 'Deposited', data: { amount: command.amount } }];
    if (command.amount > state.balance) {
      throw new DomainError('insufficient_funds', 'not enough in the jar', { balance: state.balance });
    }
    return [{ type: 'Withdrawn', data: { amount: command.amount } }];
  },
  evolve(state, event) {
    const delta = event.type === 'Deposited' ? event.data.amount : -event.data.amount;
    return { balance: state.balance + delta, events: state.events + 1 };
  },
};

/**
 * Handler options for the jar: its events are outside the ledger's event schemas, so the handler's
 * read-side check (decodeEvent, which knows only EVENT_SCHEMAS) is replaced by the jar's own.
 */
export const jarHandlerOptions = {
  checkEvent: (event: { type: string }): void => {
    if (event.type !== 'Deposited' && event.type !== 'Withdrawn') {
      throw new Error(`not a jar event: ${event.type}`);
    }
  },
};
