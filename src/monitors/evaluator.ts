import type { Registry } from 'prom-client';
import type { CheckpointStore } from '../commands/checkpointStore.js';
import type { CommandHandler } from '../commands/commandHandler.js';
import type { Logger } from '../commands/logger.js';
import {
  type ProcessManagerHandle,
  type ProcessManagerRunnerOptions,
  startProcessManagerRunner,
} from '../commands/processManagerRunner.js';
import { classifyStepFailure } from '../commands/processManagers.js';
import { stableHash } from '../commands/stableHash.js';
import {
  type BalanceMonitorDefinition,
  balanceMonitorDecider,
  type EvaluateBalanceMonitor,
  monitoredBalance,
} from '../domain/balanceMonitor.js';
import type { AccountTotals } from '../domain/balances.js';
import { DomainError } from '../domain/errors.js';
import { decodeEvent, decodeEventOf, entryOf } from '../domain/events.js';
import { EVENT_TYPES } from '../domain/index.js';
import { parseStreamName } from '../domain/streams.js';
import type { EventStore, RecordedEvent } from '../eventstore/port.js';
import { monitorStream } from './balanceMonitors.js';
import type { MonitorRow, MonitorStore } from './monitorStore.js';

/**
 * Evaluates balance monitors from the ledger's balance changes, in log order: a checkpointed consumer
 * (the project's process-manager runner) of every money event and of the monitors' own events. For an
 * event at position P that posts to a monitored account, it waits until the projection has applied P,
 * reads the account's balance as of P (one index seek on the postings' running balances) and hands it
 * to the monitor's decider, which records an edge when the condition changed. The edge's event id is
 * derived from the monitor, the currency and P, so evaluating P again (after a crash) appends nothing,
 * and the decider ignores evaluations at or before its last edge: rebuilding read models or replaying
 * the log never fires a monitor twice.
 */
export interface BalanceAtPosition {
  /** Resolves once the read models have applied `position` (false: not within timeoutMs). */
  waitForPosition(position: bigint, timeoutMs: number): Promise<boolean>;
  /** The account's totals in each currency it has as of `position` (only `currency` when given). */
  balancesAt(
    tenantId: string,
    account: string,
    position: bigint,
    currency: string | null,
  ): Promise<Array<{ currency: string; totals: AccountTotals }>>;
}

export interface EvaluatorOptions {
  store: EventStore;
  checkpoints: CheckpointStore;
  handler: CommandHandler;
  monitors: MonitorStore;
  balances: BalanceAtPosition;
  name?: string;
  logger?: Logger;
  registry?: Registry;
  /** How long one event waits for the projection before the step is retried. */
  projectionWaitMs?: number;
  tuning?: Pick<ProcessManagerRunnerOptions, 'maxAttemptsPerEvent' | 'backoff' | 'restartDelayMs'>;
}

export const BALANCE_MONITOR_SUBSCRIBER = 'balance-monitors';
export const EVALUATOR_ACTOR = { id: 'balance-monitor-evaluator', role: 'service' } as const;

/** The categories whose events carry journal entries (the others move no money). */
const MONEY_EVENT_TYPES: readonly string[] = [
  ...EVENT_TYPES.wallet,
  ...EVENT_TYPES.tutor,
  ...EVENT_TYPES.adjustment,
  ...EVENT_TYPES.stripe,
];

interface Posting {
  account: string;
  currency: string;
}

/** The accounts (and currencies) an event posts to: its (decoded, balanced) entry's postings. */
function postingsOf(event: RecordedEvent): Posting[] {
  const entry = entryOf(decodeEvent(event));
  if (!entry) return [];
  const seen = new Map<string, Posting>();
  for (const p of entry.postings)
    seen.set(`${p.account}\u0000${p.currency}`, { account: p.account, currency: p.currency });
  return [...seen.values()];
}

export function startBalanceMonitorEvaluator(options: EvaluatorOptions): ProcessManagerHandle {
  const waitMs = options.projectionWaitMs ?? 5_000;
  /** tenant \0 account -> monitors on it (loaded once, then kept in step with the monitors' events). */
  let index: Map<string, MonitorRow[]> | undefined;
  const key = (tenantId: string, account: string) => `${tenantId}\u0000${account}`;

  async function loadIndex(): Promise<Map<string, MonitorRow[]>> {
    if (index) return index;
    const loaded = new Map<string, MonitorRow[]>();
    for (const row of await options.monitors.active()) add(loaded, row);
    index = loaded;
    return loaded;
  }
  function add(into: Map<string, MonitorRow[]>, row: MonitorRow): void {
    const k = key(row.tenantId, row.account);
    const rows = (into.get(k) ?? []).filter((r) => r.monitorId !== row.monitorId);
    rows.push(row);
    into.set(k, rows);
  }
  function remove(into: Map<string, MonitorRow[]>, tenantId: string, monitorId: string): void {
    for (const [k, rows] of into) {
      if (!k.startsWith(`${tenantId}\u0000`)) continue;
      const kept = rows.filter((r) => r.monitorId !== monitorId);
      if (kept.length === rows.length) continue;
      if (kept.length === 0) into.delete(k);
      else into.set(k, kept);
    }
  }

  async function evaluate(
    tenantId: string,
    monitor: Pick<BalanceMonitorDefinition, 'monitorId' | 'account' | 'currency'>,
    event: RecordedEvent,
    currencies: readonly string[] | null,
  ): Promise<void> {
    if (!(await options.balances.waitForPosition(event.position, waitMs))) {
      throw new Error(
        `balance monitors: the projection has not reached ${event.position} within ${waitMs} ms`,
      );
    }
    const balances = await options.balances.balancesAt(
      tenantId,
      monitor.account,
      event.position,
      monitor.currency,
    );
    for (const { currency, totals } of balances) {
      if (currencies && !currencies.includes(currency)) continue;
      const command: EvaluateBalanceMonitor = {
        type: 'EvaluateBalanceMonitor',
        monitorId: monitor.monitorId,
        currency,
        position: event.position.toString(),
        balance: monitoredBalance(monitor.account, totals),
        causedBy: event.id,
        at: event.metadata.occurredAt,
      };
      await options.handler.handle(
        balanceMonitorDecider,
        monitorStream(tenantId, monitor.monitorId),
        command,
        {
          tenantId,
          actor: { ...EVALUATOR_ACTOR },
          idempotencyKey: `monitor-eval:${monitor.monitorId}:${currency}:${event.position}`,
          correlationId: event.metadata.correlationId,
          causationId: event.id,
        },
        { commandType: 'EvaluateBalanceMonitor', payloadHash: stableHash(command) },
      );
    }
  }

  async function handle(event: RecordedEvent): Promise<void> {
    const stream = parseStreamName(event.streamName);
    if (!stream) return;
    const tenantId = stream.tenantId;
    const monitors = await loadIndex();
    if (event.type === 'BalanceMonitorCreated') {
      const { actor: _actor, ...definition } = decodeEventOf(event, ['BalanceMonitorCreated']).data;
      await options.monitors.recordCreated(tenantId, definition, event.position);
      add(monitors, { ...definition, tenantId, createdPosition: event.position, deletedPosition: null });
      // First evaluation at the creation position: a monitor created while its condition holds fires here.
      await evaluate(tenantId, definition, event, null);
      return;
    }
    if (event.type === 'BalanceMonitorDeleted') {
      const { monitorId } = decodeEventOf(event, ['BalanceMonitorDeleted']).data;
      await options.monitors.recordDeleted(tenantId, monitorId, event.position);
      remove(monitors, tenantId, monitorId);
      return;
    }
    const byAccount = new Map<string, string[]>();
    for (const p of postingsOf(event))
      byAccount.set(p.account, [...(byAccount.get(p.account) ?? []), p.currency]);
    for (const [account, currencies] of byAccount) {
      for (const monitor of monitors.get(key(tenantId, account)) ?? []) {
        if (monitor.createdPosition >= event.position) continue;
        if (monitor.currency !== null && !currencies.includes(monitor.currency)) continue;
        await evaluate(tenantId, monitor, event, currencies);
      }
    }
  }

  return startProcessManagerRunner({
    name: options.name ?? BALANCE_MONITOR_SUBSCRIBER,
    store: options.store,
    checkpoints: options.checkpoints,
    filter: { eventTypes: [...MONEY_EVENT_TYPES, 'BalanceMonitorCreated', 'BalanceMonitorDeleted'] },
    handle,
    classify: classifyStepFailure,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
    ...options.tuning,
  });
}

/** BalanceAtPosition over the projection's as-of index (PostgresLedgerQueries). */
export function balancesFromQueries(queries: {
  waitForPosition(position: bigint, timeoutMs: number): Promise<boolean>;
  getAccountBalance(
    tenantId: string,
    account: string,
    asOf: { position: bigint },
    options?: { currency?: string },
  ): Promise<(AccountTotals & { currency: string; position: bigint }) | null>;
}): BalanceAtPosition {
  const one = async (tenantId: string, account: string, position: bigint, currency: string) => {
    const b = await queries.getAccountBalance(tenantId, account, { position }, { currency });
    // No posting in this currency at or before `position`: nothing to evaluate yet.
    if (!b || b.position < 0n) return [];
    return [{ currency, totals: b }];
  };
  return {
    waitForPosition: (position, timeoutMs) => queries.waitForPosition(position, timeoutMs),
    async balancesAt(tenantId, account, position, currency) {
      if (currency !== null) return one(tenantId, account, position, currency);
      try {
        const b = await queries.getAccountBalance(tenantId, account, { position });
        return b && b.position >= 0n ? [{ currency: b.currency, totals: b }] : [];
      } catch (error) {
        // An account in several currencies: each one on its own.
        const currencies = error instanceof DomainError ? error.details.currencies : undefined;
        if (!Array.isArray(currencies)) throw error;
        const all = await Promise.all(currencies.map((c) => one(tenantId, account, position, String(c))));
        return all.flat();
      }
    },
  };
}
