import type { CommandHandler } from '../commands/commandHandler.js';
import type { CommandContext } from '../commands/context.js';
import { stableHash } from '../commands/stableHash.js';
import { accountInfo } from '../domain/accounts.js';
import {
  type BalanceCondition,
  type BalanceMonitorState,
  balanceMonitorDecider,
  requireCondition,
} from '../domain/balanceMonitor.js';
import { DomainError } from '../domain/errors.js';
import { deterministicId } from '../domain/ids.js';
import { assertCurrency } from '../domain/money.js';
import { streamName } from '../domain/streams.js';
import type { EventStore } from '../eventstore/port.js';
import type { MonitorStore } from './monitorStore.js';

export const monitorStream = (tenantId: string, monitorId: string): string =>
  streamName('balancemonitor', tenantId, monitorId);

/** Live monitors one tenant may have (each posting is checked against the tenant's monitors). */
export const MAX_BALANCE_MONITORS = 500;

export interface BalanceMonitorView {
  monitorId: string;
  account: string;
  currency: string | null;
  condition: BalanceCondition;
  description: string | null;
  createdAt: string;
  /** Per currency watched so far: whether the condition holds as of its last edge, and that edge's position. */
  states: Array<{ currency: string; triggered: boolean; since: string }>;
  triggeredCount: number;
}

export interface CreateMonitorInput {
  account: string;
  currency?: string | null;
  condition: BalanceCondition;
  description?: string | null;
}

/** Creating, reading and deleting balance monitors (their evaluation is evaluator.ts). */
export class BalanceMonitors {
  constructor(
    private readonly options: {
      handler: CommandHandler;
      events: EventStore;
      store: MonitorStore;
      clock: () => Date;
    },
  ) {}

  async create(
    ctx: CommandContext,
    input: CreateMonitorInput,
  ): Promise<{ monitor: BalanceMonitorView; position: bigint }> {
    const account = accountInfo(input.account).path;
    const currency =
      input.currency === undefined || input.currency === null ? null : assertCurrency(input.currency);
    const condition = requireCondition(input.condition);
    if ((await this.options.store.countActive(ctx.tenantId)) >= MAX_BALANCE_MONITORS) {
      throw new DomainError(
        'limit_exceeded',
        `a tenant may have at most ${MAX_BALANCE_MONITORS} balance monitors`,
        {
          limit: MAX_BALANCE_MONITORS,
        },
      );
    }
    const monitorId = `bm_${deterministicId('balance-monitor', ctx.tenantId, ctx.idempotencyKey).replaceAll('-', '')}`;
    const result = await this.options.handler.handle(
      balanceMonitorDecider,
      monitorStream(ctx.tenantId, monitorId),
      {
        type: 'CreateBalanceMonitor',
        monitorId,
        account,
        currency,
        condition,
        description: input.description ?? null,
        actor: { ...ctx.actor },
        at: this.options.clock().toISOString(),
      },
      ctx,
      { commandType: 'CreateBalanceMonitor', payloadHash: stableHash({ op: 'create', input }) },
    );
    const state = result.state;
    if (state.status !== 'active' || !state.monitor) {
      throw new DomainError('not_found', `balance monitor ${monitorId} was deleted`);
    }
    const created = result.events[0];
    // The creation event's own position (a replay answers with the stream's first event).
    const position = result.replayed ? await this.createdPosition(ctx.tenantId, monitorId) : result.position;
    if (created || result.replayed)
      await this.options.store.recordCreated(ctx.tenantId, state.monitor, position);
    return { monitor: viewOf(state), position: result.position };
  }

  async get(tenantId: string, monitorId: string): Promise<BalanceMonitorView | null> {
    const { state } = await this.options.handler.load(
      balanceMonitorDecider,
      monitorStream(tenantId, monitorId),
    );
    return state.status === 'active' ? viewOf(state) : null;
  }

  async list(
    tenantId: string,
    options: { limit: number; after?: string; account?: string },
  ): Promise<BalanceMonitorView[]> {
    const rows = await this.options.store.list(tenantId, options);
    const views = await Promise.all(rows.map((r) => this.get(tenantId, r.monitorId)));
    return views.filter((v): v is BalanceMonitorView => v !== null);
  }

  async delete(ctx: CommandContext, monitorId: string): Promise<{ position: bigint }> {
    const result = await this.options.handler.handle(
      balanceMonitorDecider,
      monitorStream(ctx.tenantId, monitorId),
      {
        type: 'DeleteBalanceMonitor',
        monitorId,
        actor: { ...ctx.actor },
        at: this.options.clock().toISOString(),
      },
      ctx,
      { commandType: 'DeleteBalanceMonitor', payloadHash: stableHash({ op: 'delete', monitorId }) },
    );
    await this.options.store.recordDeleted(ctx.tenantId, monitorId, result.position);
    return { position: result.position };
  }

  private async createdPosition(tenantId: string, monitorId: string): Promise<bigint> {
    const [first] = await this.options.events.readStream(monitorStream(tenantId, monitorId), { maxCount: 1 });
    if (!first) throw new Error(`balance monitor ${monitorId}: stream vanished`);
    return first.position;
  }
}

export function viewOf(state: BalanceMonitorState): BalanceMonitorView {
  const m = state.monitor!;
  return {
    monitorId: m.monitorId,
    account: m.account,
    currency: m.currency,
    condition: { ...m.condition },
    description: m.description,
    createdAt: m.createdAt,
    states: [...state.watches].map(([currency, w]) => ({ currency, triggered: w.holds, since: w.position })),
    triggeredCount: state.triggered,
  };
}
