import { ADJUSTMENT_EVENTS, type AdjustLedger, ledgerAdjustment } from './adjustment.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import {
  nextPeriod,
  PeriodSchema,
  periodEndMs,
  periodOf,
  periodStartMs,
  requirePeriod,
} from './effectiveTime.js';
import { DomainError, invariant } from './errors.js';
import { type Actor, ActorSchema, InstantSchema, strictObject } from './schema.js';
import { parseInstant, requireFinanceAdmin, toIso, validationFailed } from './validate.js';

/**
 * The tenant's accounting periods: stream `period-{t}.ledger` (streams.ts, periodsStream). Closing a
 * period is one event, `PeriodClosed`; periods close in order (the first close may name any ended month
 * and closes the books up to it). Nothing may be effective inside a closed period.
 *
 * This stream is also where an adjustment effective in an earlier month than the one it is recorded in
 * is booked (`LedgerAdjustedBackdated`): the close and the backdated entry are decided against the same
 * stream's state and appended with its expected revision, so a close racing a backdated adjustment is
 * serialised by the event store: whichever appends second re-reads and decides again (the adjustment is
 * then refused with `period_closed`, or the close comes after it). No multi-stream transaction and no
 * time fence is needed for that race. docs/ledger-flows.md, "Backdated entries and closed periods", says
 * why only unconstrained accounts are backdated across a month boundary.
 */

/** A month can be closed this long after it ended: entries recorded in it may still be in flight. */
export const PERIOD_CLOSE_GRACE_MS = 60 * 60 * 1000;
/** Closes kept in the state (one per month: a thousand years of books). */
export const MAX_PERIOD_CLOSES = 12_000;

export interface ClosePeriod {
  type: 'ClosePeriod';
  period: string;
  actor: Actor;
  now: string;
}

/** An AdjustLedger whose effectiveAt lies in an earlier month than `adjustedAt`. */
export interface AdjustLedgerBackdated extends Omit<AdjustLedger, 'type'> {
  type: 'AdjustLedgerBackdated';
  effectiveAt: string;
}

export type PeriodsCommand = ClosePeriod | AdjustLedgerBackdated;

export const PERIOD_EVENTS = {
  PeriodClosed: strictObject({
    period: PeriodSchema,
    /** The period's first instant and the first instant after it. */
    from: InstantSchema,
    to: InstantSchema,
    closedAt: InstantSchema,
    actor: ActorSchema,
  }),
  /** LedgerAdjusted of an unconstrained account, effective in an earlier (open) month. */
  LedgerAdjustedBackdated: ADJUSTMENT_EVENTS.LedgerAdjusted,
} as const satisfies EventSchemas;

export type PeriodsEvent = EventsOf<typeof PERIOD_EVENTS>;
export type PeriodClosed = EventOf<typeof PERIOD_EVENTS, 'PeriodClosed'>;

export interface PeriodClose {
  period: string;
  closedAt: string;
  actorId: string;
}

export interface PeriodsState {
  /** Every period up to and including this one is closed; null: none is. */
  closedThrough: string | null;
  closes: PeriodClose[];
}

export const initialPeriodsState = (): PeriodsState => ({ closedThrough: null, closes: [] });

export function isClosed(state: PeriodsState, period: string): boolean {
  return state.closedThrough !== null && period <= state.closedThrough;
}

/** The refusal of an entry effective in a closed period: names the period and the way out. */
export function periodClosedError(state: PeriodsState, period: string, what = 'an entry'): DomainError {
  return new DomainError(
    'period_closed',
    `period ${period} is closed (the books are closed through ${state.closedThrough}): ${what} effective in it is refused; book a correction in the open period with "corrects" naming the entry it corrects`,
    { field: 'effectiveAt', period, closedThrough: state.closedThrough },
  );
}

export function decidePeriods(command: PeriodsCommand, state: PeriodsState): PeriodsEvent[] {
  switch (command.type) {
    case 'ClosePeriod': {
      const period = requirePeriod(command.period);
      const actor = requireFinanceAdmin(command.actor);
      const nowMs = parseInstant(command.now, 'now');
      const closableFrom = periodEndMs(period) + PERIOD_CLOSE_GRACE_MS;
      if (nowMs < closableFrom) {
        throw new DomainError(
          'invalid_state',
          `period ${period} can be closed from ${toIso(closableFrom)} (an hour after it ends)`,
          { period, closableFrom: toIso(closableFrom) },
        );
      }
      if (isClosed(state, period)) {
        throw new DomainError('invalid_state', `period ${period} is already closed`, {
          period,
          closedThrough: state.closedThrough,
        });
      }
      if (state.closedThrough !== null && period !== nextPeriod(state.closedThrough)) {
        const next = nextPeriod(state.closedThrough);
        throw new DomainError('invalid_state', `periods close in order: close ${next} first`, {
          period,
          next,
          closedThrough: state.closedThrough,
        });
      }
      invariant(state.closes.length < MAX_PERIOD_CLOSES, 'too many period closes');
      return [
        {
          type: 'PeriodClosed',
          data: {
            period,
            from: toIso(periodStartMs(period)),
            to: toIso(periodEndMs(period)),
            closedAt: toIso(nowMs),
            actor,
          },
        },
      ];
    }
    case 'AdjustLedgerBackdated': {
      // The adjustment's own rules (account, amount, currency, reason, actor, effectiveAt not after adjustedAt).
      const data = ledgerAdjustment({ ...command, type: 'AdjustLedger' }, true);
      invariant(data.effectiveAt !== undefined, 'a backdated adjustment has an effectiveAt');
      const effectivePeriod = periodOf(parseInstant(data.effectiveAt, 'effectiveAt'));
      if (effectivePeriod >= periodOf(parseInstant(data.adjustedAt, 'adjustedAt'))) {
        validationFailed('a backdated adjustment is effective in an earlier month than it is recorded', {
          field: 'effectiveAt',
        });
      }
      if (isClosed(state, effectivePeriod)) {
        throw periodClosedError(state, effectivePeriod, `adjustment ${data.adjustmentId}`);
      }
      return [{ type: 'LedgerAdjustedBackdated', data }];
    }
    default:
      throw new DomainError('validation_failed', 'unknown periods command');
  }
}

export function evolvePeriods(state: PeriodsState, event: PeriodsEvent): PeriodsState {
  switch (event.type) {
    case 'PeriodClosed': {
      const { period, closedAt, actor } = event.data;
      invariant(
        state.closedThrough === null || period === nextPeriod(state.closedThrough),
        () => `period ${period} closed out of order (closed through ${state.closedThrough})`,
      );
      return {
        closedThrough: period,
        closes: [...state.closes, { period, closedAt, actorId: actor.id }],
      };
    }
    case 'LedgerAdjustedBackdated': {
      const { effectiveAt } = event.data;
      invariant(effectiveAt !== undefined, 'a backdated adjustment has an effectiveAt');
      const period = periodOf(parseInstant(effectiveAt, 'effectiveAt'));
      invariant(!isClosed(state, period), () => `an adjustment booked inside closed period ${period}`);
      return state;
    }
  }
}

export const periodsDecider: Decider<PeriodsCommand, PeriodsEvent, PeriodsState> = {
  initialState: initialPeriodsState,
  decide: decidePeriods,
  evolve: evolvePeriods,
};
