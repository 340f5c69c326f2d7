import { type Static, Type } from '@sinclair/typebox';
import { accountInfo } from './accounts.js';
import { type AccountTotals, available, pendingOutgoing, postedBalance } from './balances.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { assertCurrency } from './money.js';
import {
  type Actor,
  ActorSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  Nullable,
  strictObject,
  TextSchema,
} from './schema.js';
import { parseInstant, requireEntityId, requireText, toIso, validationFailed } from './validate.js';

/**
 * An edge-triggered balance monitor: stream `balancemonitor-{t}.{monitorId}`. It fires
 * (BalanceMonitorTriggered) when its condition on an account's balance becomes true, and can fire
 * again only after the condition was false (BalanceMonitorRecovered records that edge). Each currency
 * of the account is watched on its own (or only `currency` when the monitor names one).
 *
 * The evaluator (src/monitors) feeds it the account's balance at every position that changed it, in
 * log order. Evaluations carry their position, and one at or before the last edge recorded for that
 * currency changes nothing, so a replay after a crash or a rebuild of the read models never fires again:
 * the monitor's own events are the record. A monitor is first evaluated at its creation position: one
 * created while its condition already holds fires there, once.
 */

export type BalanceField = 'available' | 'posted' | 'pending';
export type ComparisonOp = 'lt' | 'lte' | 'gt' | 'gte';

export interface BalanceCondition {
  field: BalanceField;
  op: ComparisonOp;
  /** Minor units; may be negative (a debit-normal account's balance can be). */
  amount: number;
}

/** The three balance figures a condition can look at (normal-side; pending = outgoing holds). */
export interface MonitoredBalance {
  available: number;
  posted: number;
  pending: number;
}

export interface BalanceMonitorDefinition {
  monitorId: string;
  account: string;
  /** null: every currency of the account, each on its own. */
  currency: string | null;
  condition: BalanceCondition;
  description: string | null;
  createdAt: string;
}

export interface CurrencyWatch {
  /** The condition as of the last edge: true after a trigger, false after a recovery. */
  holds: boolean;
  /** Position of the last edge (decimal string: positions are 64-bit). */
  position: string;
}

export interface BalanceMonitorState {
  status: 'none' | 'active' | 'deleted';
  monitor: BalanceMonitorDefinition | null;
  /** Per currency, the last edge. A currency not here has never fired (its condition counts as false). */
  watches: ReadonlyMap<string, CurrencyWatch>;
  /** Triggers recorded so far (all currencies). */
  triggered: number;
}

// ---------------------------------------------------------------------------------------------------
// Commands and events

export interface CreateBalanceMonitor {
  type: 'CreateBalanceMonitor';
  monitorId: string;
  account: string;
  currency: string | null;
  condition: BalanceCondition;
  description: string | null;
  actor: Actor;
  at: string;
}

export interface EvaluateBalanceMonitor {
  type: 'EvaluateBalanceMonitor';
  monitorId: string;
  currency: string;
  /** Global position whose event left the account with `balance`. */
  position: string;
  balance: MonitoredBalance;
  /** The event at `position` (its id), or the monitor's own creation event. */
  causedBy: string;
  /** occurredAt of that event: evaluations carry no clock of their own, so a replay decides the same. */
  at: string;
}

export interface DeleteBalanceMonitor {
  type: 'DeleteBalanceMonitor';
  monitorId: string;
  actor: Actor;
  at: string;
}

export type BalanceMonitorCommand = CreateBalanceMonitor | EvaluateBalanceMonitor | DeleteBalanceMonitor;

const ConditionSchema = strictObject({
  field: Type.Union([Type.Literal('available'), Type.Literal('posted'), Type.Literal('pending')]),
  op: Type.Union([Type.Literal('lt'), Type.Literal('lte'), Type.Literal('gt'), Type.Literal('gte')]),
  amount: Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
});
const SignedInteger = Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER });
const EdgeSchema = strictObject({
  monitorId: EntityIdSchema,
  account: Type.String({ minLength: 1, maxLength: 200 }),
  currency: CurrencySchema,
  condition: ConditionSchema,
  balance: strictObject({ available: SignedInteger, posted: SignedInteger, pending: SignedInteger }),
  /** The figure the condition looked at. */
  value: SignedInteger,
  position: Type.String({ pattern: '^(0|[1-9]\\d{0,19})$' }),
  causedBy: Type.String({ minLength: 1, maxLength: 200 }),
  at: InstantSchema,
});

export const BALANCE_MONITOR_EVENTS = {
  BalanceMonitorCreated: strictObject({
    monitorId: EntityIdSchema,
    account: Type.String({ minLength: 1, maxLength: 200 }),
    currency: Nullable(CurrencySchema),
    condition: ConditionSchema,
    description: Nullable(TextSchema()),
    createdAt: InstantSchema,
    actor: ActorSchema,
  }),
  BalanceMonitorTriggered: EdgeSchema,
  BalanceMonitorRecovered: EdgeSchema,
  BalanceMonitorDeleted: strictObject({
    monitorId: EntityIdSchema,
    actor: ActorSchema,
    deletedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

type EdgeData = Static<typeof EdgeSchema>;
export type BalanceMonitorEvent = EventsOf<typeof BALANCE_MONITOR_EVENTS>;
export type BalanceMonitorCreated = EventOf<typeof BALANCE_MONITOR_EVENTS, 'BalanceMonitorCreated'>;
export type BalanceMonitorTriggered = EventOf<typeof BALANCE_MONITOR_EVENTS, 'BalanceMonitorTriggered'>;
export type BalanceMonitorRecovered = EventOf<typeof BALANCE_MONITOR_EVENTS, 'BalanceMonitorRecovered'>;
export type BalanceMonitorDeleted = EventOf<typeof BALANCE_MONITOR_EVENTS, 'BalanceMonitorDeleted'>;

export const BALANCE_MONITOR_EVENT_TYPES = Object.keys(
  BALANCE_MONITOR_EVENTS,
) as BalanceMonitorEvent['type'][];

// ---------------------------------------------------------------------------------------------------
// Pure helpers

export const BALANCE_FIELDS: readonly BalanceField[] = ['available', 'posted', 'pending'];
export const COMPARISON_OPS: readonly ComparisonOp[] = ['lt', 'lte', 'gt', 'gte'];

export function conditionHolds(condition: BalanceCondition, balance: MonitoredBalance): boolean {
  const value = balance[condition.field];
  switch (condition.op) {
    case 'lt':
      return value < condition.amount;
    case 'lte':
      return value <= condition.amount;
    case 'gt':
      return value > condition.amount;
    case 'gte':
      return value >= condition.amount;
  }
}

/** The monitored figures of an account's totals, on its normal side. */
export function monitoredBalance(account: string, totals: AccountTotals): MonitoredBalance {
  const side = accountInfo(account).normalSide;
  return {
    available: available(totals, side),
    posted: postedBalance(totals, side),
    pending: pendingOutgoing(totals, side),
  };
}

const POSITION_PATTERN = /^(0|[1-9]\d{0,19})$/;

function requirePosition(value: unknown): bigint {
  if (typeof value !== 'string' || !POSITION_PATTERN.test(value)) {
    validationFailed('position must be a non-negative decimal string', { field: 'position' });
  }
  return BigInt(value);
}

export function requireCondition(value: unknown): BalanceCondition {
  const c = value as Partial<BalanceCondition> | null;
  if (!c || typeof c !== 'object') validationFailed('condition must be an object', { field: 'condition' });
  if (!BALANCE_FIELDS.includes(c.field as BalanceField)) {
    validationFailed('condition.field must be available, posted or pending', { field: 'condition.field' });
  }
  if (!COMPARISON_OPS.includes(c.op as ComparisonOp)) {
    validationFailed('condition.op must be lt, lte, gt or gte', { field: 'condition.op' });
  }
  if (!Number.isSafeInteger(c.amount)) {
    validationFailed('condition.amount must be an integer in minor units', { field: 'condition.amount' });
  }
  return { field: c.field as BalanceField, op: c.op as ComparisonOp, amount: c.amount as number };
}

function requireBalance(value: unknown): MonitoredBalance {
  const b = value as Partial<MonitoredBalance> | null;
  if (
    !b ||
    !Number.isSafeInteger(b.available) ||
    !Number.isSafeInteger(b.posted) ||
    !Number.isSafeInteger(b.pending)
  ) {
    validationFailed('balance must be {available, posted, pending} integers', { field: 'balance' });
  }
  return { available: b.available as number, posted: b.posted as number, pending: b.pending as number };
}

function requireActor(value: unknown): Actor {
  const a = value as Actor | null;
  if (
    !a ||
    typeof a.id !== 'string' ||
    a.id.length === 0 ||
    typeof a.role !== 'string' ||
    a.role.length === 0
  ) {
    validationFailed('actor must be {id, role}', { field: 'actor' });
  }
  return { id: a.id, role: a.role };
}

// ---------------------------------------------------------------------------------------------------
// Decider

function decide(command: BalanceMonitorCommand, state: BalanceMonitorState): BalanceMonitorEvent[] {
  switch (command.type) {
    case 'CreateBalanceMonitor': {
      if (state.status !== 'none') {
        throw new DomainError('invalid_state', `balance monitor ${command.monitorId} exists already`);
      }
      const account = accountInfo(command.account).path;
      return [
        {
          type: 'BalanceMonitorCreated',
          data: {
            monitorId: requireEntityId(command.monitorId, 'monitorId'),
            account,
            currency: command.currency === null ? null : assertCurrency(command.currency),
            condition: requireCondition(command.condition),
            description:
              command.description === null ? null : requireText(command.description, 'description'),
            createdAt: toIso(parseInstant(command.at, 'at')),
            actor: requireActor(command.actor),
          },
        },
      ];
    }
    case 'EvaluateBalanceMonitor': {
      // A monitor deleted (or never created) ignores evaluations still in flight for it.
      if (state.status !== 'active') return [];
      const monitor = state.monitor!;
      const currency = assertCurrency(command.currency);
      if (monitor.currency !== null && monitor.currency !== currency) return [];
      const position = requirePosition(command.position);
      const balance = requireBalance(command.balance);
      const watch = state.watches.get(currency);
      if (watch && position <= BigInt(watch.position)) return [];
      const holds = conditionHolds(monitor.condition, balance);
      const held = watch?.holds ?? false;
      if (holds === held) return [];
      const data: EdgeData = {
        monitorId: monitor.monitorId,
        account: monitor.account,
        currency,
        condition: monitor.condition,
        balance,
        value: balance[monitor.condition.field],
        position: position.toString(),
        causedBy: requireText(command.causedBy, 'causedBy', 200),
        at: toIso(parseInstant(command.at, 'at')),
      };
      return [{ type: holds ? 'BalanceMonitorTriggered' : 'BalanceMonitorRecovered', data }];
    }
    case 'DeleteBalanceMonitor': {
      if (state.status !== 'active') {
        throw new DomainError('not_found', `no balance monitor ${command.monitorId}`);
      }
      return [
        {
          type: 'BalanceMonitorDeleted',
          data: {
            monitorId: state.monitor!.monitorId,
            actor: requireActor(command.actor),
            deletedAt: toIso(parseInstant(command.at, 'at')),
          },
        },
      ];
    }
  }
}

function evolve(state: BalanceMonitorState, event: BalanceMonitorEvent): BalanceMonitorState {
  switch (event.type) {
    case 'BalanceMonitorCreated': {
      invariant(state.status === 'none', `balance monitor ${event.data.monitorId} created twice`);
      const { actor: _actor, ...monitor } = event.data;
      return { status: 'active', monitor, watches: new Map(), triggered: 0 };
    }
    case 'BalanceMonitorTriggered':
    case 'BalanceMonitorRecovered': {
      const d = event.data;
      const holds = event.type === 'BalanceMonitorTriggered';
      const before = state.watches.get(d.currency);
      invariant(
        (before?.holds ?? false) !== holds,
        `balance monitor ${d.monitorId}: ${event.type} in ${d.currency} without the opposite edge before it`,
      );
      invariant(
        !before || BigInt(d.position) > BigInt(before.position),
        `balance monitor ${d.monitorId}: edge at ${d.position} not after ${before?.position}`,
      );
      const watches = new Map(state.watches);
      watches.set(d.currency, { holds, position: d.position });
      return { ...state, watches, triggered: state.triggered + (holds ? 1 : 0) };
    }
    case 'BalanceMonitorDeleted':
      return { ...state, status: 'deleted' };
  }
}

export const balanceMonitorDecider: Decider<BalanceMonitorCommand, BalanceMonitorEvent, BalanceMonitorState> =
  {
    initialState: () => ({ status: 'none', monitor: null, watches: new Map(), triggered: 0 }),
    decide,
    evolve,
  };
