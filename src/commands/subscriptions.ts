import type { SubscriptionView } from '../contracts/subscriptionViews.js';
import { DomainError } from '../domain/errors.js';
import { decodeEventOf } from '../domain/events.js';
import { deterministicId } from '../domain/ids.js';
import { planCatalogStream, subscriptionStream, walletStream } from '../domain/streams.js';
import {
  changeChargeId,
  elapsedDays,
  periodBounds,
  periodChargeId,
  type SubscriptionState,
  subscriptionDecider,
  subscriptionDeferred,
  termsOf,
  upgradeCharge,
  usedDays,
} from '../domain/subscription.js';
import { type PlanCatalog, planCatalogDecider, requirePlan } from '../domain/subscriptionPlans.js';
import { requireEntityId, toIso, validationFailed } from '../domain/validate.js';
import { type ChargeSubscription, type WalletState, walletDecider } from '../domain/wallet.js';
import type { CommandHandler, HandleResult } from './commandHandler.js';
import type { CommandContext, CommandResult } from './context.js';
import { entryIdFor, type Trigger, triggerOf } from './flowContext.js';
import type { FlowSteps } from './flowSteps.js';
import { stableHash } from './stableHash.js';

/**
 * VIP subscriptions, the write side (docs/ledger-flows.md, "VIP subscriptions"): the plan catalog, and
 * the flows of a subscription across its own stream and the student's wallet. The wallet always goes
 * first (it can refuse: insufficient funds, a second subscription), then the subscription records what
 * was paid, keyed by the wallet's event, so the process managers finish a flow a crash left halfway; a
 * charge the subscription then refuses is refunded to the wallet by the same step.
 */
export class SubscriptionService {
  constructor(
    private readonly handler: CommandHandler,
    private readonly steps: FlowSteps,
    private readonly clock: () => Date,
  ) {}

  private now(): string {
    return this.clock().toISOString();
  }

  // ------------------------------------------------------------------------------------------------
  // Plans

  async getPlans(tenantId: string): Promise<PlanCatalog> {
    return (await this.handler.load(planCatalogDecider, planCatalogStream(tenantId))).state;
  }

  /** The catalog in force just before `position` (all of it when omitted), as flow steps must see it. */
  async catalogAsOf(tenantId: string, position?: bigint): Promise<PlanCatalog> {
    let state = planCatalogDecider.initialState();
    for (const e of await this.steps.settingsReads.read(planCatalogStream(tenantId))) {
      if (position !== undefined && e.position >= position) break;
      state = planCatalogDecider.evolve(state, decodeEventOf(e, ['SubscriptionPlansUpdated']));
    }
    return state;
  }

  async updatePlans(
    ctx: CommandContext,
    input: { plans: unknown; policy?: unknown },
  ): Promise<CommandResult & { catalog: PlanCatalog }> {
    const stream = planCatalogStream(ctx.tenantId);
    const [settings, current] = await Promise.all([
      this.steps.settingsAsOf(ctx.tenantId),
      this.handler.load(planCatalogDecider, stream),
    ]);
    const policy = input.policy ?? current.state.policy;
    const command = { type: 'UpdatePlans' as const, plans: input.plans, policy, updatedAt: this.now() };
    for (const event of planCatalogDecider.decide(command, current.state)) {
      for (const plan of event.data.plans) {
        if (!settings.allowedCurrencies.includes(plan.currency)) {
          validationFailed(
            `plan ${plan.planId}: ${plan.currency} is not an allowed currency of this tenant`,
            {
              field: 'plans',
              allowed: settings.allowedCurrencies,
            },
          );
        }
      }
    }
    const result = await this.handler.handle(planCatalogDecider, stream, command, ctx, {
      commandType: 'UpdatePlans',
      payloadHash: stableHash({ op: 'updatePlans', plans: input.plans, policy: input.policy ?? null }),
    });
    return { position: result.position, catalog: result.state };
  }

  // ------------------------------------------------------------------------------------------------
  // Subscriptions

  async subscribe(
    ctx: CommandContext,
    input: { studentId: string; planId: string },
  ): Promise<CommandResult & { subscription: SubscriptionView }> {
    const t = ctx.tenantId;
    const studentId = requireEntityId(input.studentId, 'studentId');
    const planId = requireEntityId(input.planId, 'planId');
    const subscriptionId = deterministicId('subscription', t, ctx.idempotencyKey);
    const [catalog, existing] = await Promise.all([
      this.getPlans(t),
      this.handler.load(subscriptionDecider, subscriptionStream(t, subscriptionId)),
    ]);
    const plan = requirePlan(catalog, planId);
    if (existing.state.status === 'none') {
      if (!plan.active) throw new DomainError('invalid_state', `plan ${planId} is retired`, { planId });
      // Dry run: the wallet is never charged for a subscription that cannot start.
      subscriptionDecider.decide(
        {
          type: 'StartSubscription',
          subscriptionId,
          studentId,
          terms: termsOf(plan, Math.max(catalog.version, 1)),
          chargeId: periodChargeId(0),
          amount: plan.price,
          startedAt: this.now(),
        },
        existing.state,
      );
    } else if (existing.state.studentId !== studentId) {
      throw new DomainError('invalid_state', `subscription ${subscriptionId} already exists`);
    }
    const charged = await this.chargeWallet(
      ctx,
      {
        studentId,
        subscriptionId,
        chargeId: periodChargeId(0),
        kind: 'period',
        period: 0,
        planId,
        startDay: 0,
      },
      { amount: plan.price, currency: plan.currency },
      stableHash({ op: 'subscribe', input }),
    );
    const recorded = await this.recordCharge(triggerOf(charged, 'WalletSubscriptionCharged'));
    return { position: recorded.position, subscription: subscriptionView(recorded.state, recorded.position) };
  }

  async get(tenantId: string, subscriptionId: string): Promise<SubscriptionView | null> {
    const { state } = await this.handler.load(
      subscriptionDecider,
      subscriptionStream(tenantId, subscriptionId),
    );
    return state.status === 'none' ? null : subscriptionView(state);
  }

  /** The student's subscription that has not ended; null when there is none. */
  async forStudent(tenantId: string, studentId: string): Promise<SubscriptionView | null> {
    const wallet = await this.handler.load(walletDecider, walletStream(tenantId, studentId));
    const id = wallet.state.liveSubscriptionId;
    return id === null ? null : this.get(tenantId, id);
  }

  async changePlan(
    ctx: CommandContext,
    input: { subscriptionId: string; planId: string },
  ): Promise<
    CommandResult & { subscription: SubscriptionView; effective: 'now' | 'period_end'; charged: number }
  > {
    const t = ctx.tenantId;
    const subscriptionId = requireEntityId(input.subscriptionId, 'subscriptionId');
    const planId = requireEntityId(input.planId, 'planId');
    const stream = subscriptionStream(t, subscriptionId);
    const [catalog, current] = await Promise.all([
      this.getPlans(t),
      this.handler.load(subscriptionDecider, stream),
    ]);
    const state = current.state;
    if (state.status === 'none')
      throw new DomainError('not_found', `subscription ${subscriptionId} not found`);
    const plan = requirePlan(catalog, planId);
    if (!plan.active) throw new DomainError('invalid_state', `plan ${planId} is retired`, { planId });
    const terms = termsOf(plan, Math.max(catalog.version, 1));
    const payloadHash = stableHash({ op: 'changePlan', input });
    if (state.terms && plan.price <= state.terms.price) {
      const result = await this.handler.handle(
        subscriptionDecider,
        stream,
        { type: 'ScheduleDowngrade', toPlanId: planId, toPrice: plan.price, scheduledAt: this.now() },
        ctx,
        { commandType: 'ScheduleDowngrade', payloadHash },
      );
      return {
        position: result.position,
        subscription: subscriptionView(result.state),
        effective: 'period_end',
        charged: 0,
      };
    }
    if (state.status !== 'active' || !state.bounds || !state.terms || !state.studentId) {
      throw new DomainError(
        'invalid_state',
        `subscription ${subscriptionId} is ${state.status}: it cannot be upgraded`,
        {
          status: state.status,
        },
      );
    }
    const startDay = usedDays(state.bounds, this.clock().getTime());
    const amount = upgradeCharge(state.terms.price, plan.price, startDay, state.bounds.days);
    if (amount === 0) {
      // The last day: nothing left to pay for, the new terms apply at once.
      const result = await this.handler.handle(
        subscriptionDecider,
        stream,
        { type: 'UpgradeSubscription', terms, chargeId: null, amount: 0, startDay, upgradedAt: this.now() },
        ctx,
        { commandType: 'UpgradeSubscription', payloadHash },
      );
      return {
        position: result.position,
        subscription: subscriptionView(result.state),
        effective: 'now',
        charged: 0,
      };
    }
    // Dry run first: the wallet is never charged for an upgrade the subscription would refuse.
    subscriptionDecider.decide(
      {
        type: 'UpgradeSubscription',
        terms,
        chargeId: changeChargeId(state.period, state.changesInPeriod),
        amount,
        startDay,
        upgradedAt: this.now(),
      },
      state,
    );
    const charged = await this.chargeWallet(
      ctx,
      {
        studentId: state.studentId,
        subscriptionId,
        chargeId: changeChargeId(state.period, state.changesInPeriod),
        kind: 'change',
        period: state.period,
        planId,
        startDay,
      },
      { amount, currency: terms.currency },
      payloadHash,
    );
    const trigger = triggerOf(charged, 'WalletSubscriptionCharged');
    const recorded = await this.recordCharge(trigger);
    return {
      position: recorded.position,
      subscription: subscriptionView(recorded.state),
      effective: 'now',
      charged: trigger.data.amount,
    };
  }

  async cancel(
    ctx: CommandContext,
    input: { subscriptionId: string; atPeriodEnd: boolean },
  ): Promise<CommandResult & { subscription: SubscriptionView }> {
    const t = ctx.tenantId;
    const subscriptionId = requireEntityId(input.subscriptionId, 'subscriptionId');
    const catalog = await this.getPlans(t);
    const result = await this.handler.handle(
      subscriptionDecider,
      subscriptionStream(t, subscriptionId),
      {
        type: 'CancelSubscription',
        mode: input.atPeriodEnd ? 'at_period_end' : 'now',
        refund: catalog.policy.cancelNowRefund,
        refundId: deterministicId('subscription-refund', t, subscriptionId),
        at: this.now(),
        entryId: entryIdFor(ctx, 'CancelSubscription'),
      },
      ctx,
      { commandType: 'CancelSubscription', payloadHash: stableHash({ op: 'cancelSubscription', input }) },
    );
    let position = result.position;
    const canceled = result.events.find((e) => e.type === 'SubscriptionCanceled');
    if (canceled) {
      position = (await this.endInWallet(triggerOf(result, 'SubscriptionCanceled'))).position;
    }
    return { position, subscription: subscriptionView(result.state) };
  }

  /** The wallet's charge for a subscription (the first step of subscribing, renewing and upgrading). */
  private chargeWallet(
    ctx: CommandContext,
    what: Pick<
      ChargeSubscription,
      'studentId' | 'subscriptionId' | 'chargeId' | 'kind' | 'period' | 'planId' | 'startDay'
    >,
    money: { amount: number; currency: string },
    payloadHash: string,
  ): Promise<HandleResult<WalletState>> {
    return this.handler.handle(
      walletDecider,
      walletStream(ctx.tenantId, what.studentId),
      { type: 'ChargeSubscription', ...what, ...money, entryId: entryIdFor(ctx, 'ChargeSubscription') },
      ctx,
      { commandType: 'ChargeSubscription', payloadHash },
    );
  }

  // ------------------------------------------------------------------------------------------------
  // Flow steps (also run by the process managers: processManagers.ts)

  /**
   * WalletSubscriptionCharged -> SubscriptionStarted / SubscriptionRenewed / SubscriptionUpgraded, with
   * the plan's terms as of the charge. A charge the subscription refuses (it changed meanwhile: canceled,
   * renewed, upgraded by a concurrent request) goes back to the wallet, and the refusal is rethrown.
   */
  async recordCharge(
    trigger: Trigger<'WalletSubscriptionCharged'>,
  ): Promise<HandleResult<SubscriptionState>> {
    const d = trigger.data;
    const t = trigger.tenantId;
    const stream = subscriptionStream(t, d.subscriptionId);
    const at = trigger.metadata.occurredAt;
    try {
      const catalog = await this.catalogAsOf(t, trigger.position);
      const terms = termsOf(requirePlan(catalog, d.planId), Math.max(catalog.version, 1));
      return await this.steps.runStep(
        trigger,
        'record-subscription-charge',
        subscriptionDecider,
        stream,
        (ctx) => {
          if (d.kind === 'change') {
            return {
              type: 'UpgradeSubscription',
              terms,
              chargeId: d.chargeId,
              amount: d.amount,
              startDay: d.startDay,
              upgradedAt: at,
            };
          }
          if (d.period === 0) {
            return {
              type: 'StartSubscription',
              subscriptionId: d.subscriptionId,
              studentId: d.studentId,
              terms,
              chargeId: d.chargeId,
              amount: d.amount,
              startedAt: at,
            };
          }
          return {
            type: 'RenewSubscription',
            period: d.period,
            terms,
            chargeId: d.chargeId,
            amount: d.amount,
            renewedAt: at,
            entryId: entryIdFor(ctx, 'RenewSubscription'),
          };
        },
      );
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const refundId = `refund-${d.chargeId}`.slice(0, 64);
      await this.steps
        .runStep(
          trigger,
          'refund-refused-subscription-charge',
          walletDecider,
          walletStream(t, d.studentId),
          (ctx) => ({
            type: 'RefundSubscription',
            studentId: d.studentId,
            subscriptionId: d.subscriptionId,
            refundId,
            amount: d.amount,
            currency: d.currency,
            entryId: entryIdFor(ctx, 'RefundSubscription'),
          }),
        )
        .catch((refusal: unknown) => {
          if (!(refusal instanceof DomainError)) throw refusal;
        });
      // A period 0 that could not start frees the student (the wallet had made it their live one).
      if (d.kind === 'period' && d.period === 0) {
        await this.steps
          .runStep(
            trigger,
            'end-unstarted-subscription',
            walletDecider,
            walletStream(t, d.studentId),
            (ctx) => ({
              type: 'EndSubscription',
              studentId: d.studentId,
              subscriptionId: d.subscriptionId,
              refund: 0,
              refundId: null,
              currency: d.currency,
              entryId: entryIdFor(ctx, 'EndSubscription'),
            }),
          )
          .catch((refusal: unknown) => {
            if (!(refusal instanceof DomainError)) throw refusal;
          });
      }
      throw error;
    }
  }

  /** SubscriptionCanceled -> WalletSubscriptionEnded (with the refund of the unused part, if any). */
  async endInWallet(trigger: Trigger<'SubscriptionCanceled'>): Promise<HandleResult<unknown>> {
    const d = trigger.data;
    return this.steps.runStep(
      trigger,
      'end-subscription-in-wallet',
      walletDecider,
      walletStream(trigger.tenantId, d.studentId),
      (ctx) => ({
        type: 'EndSubscription',
        studentId: d.studentId,
        subscriptionId: d.subscriptionId,
        refund: d.refund,
        refundId: d.refundId,
        currency: d.currency,
        entryId: entryIdFor(ctx, 'EndSubscription'),
      }),
    );
  }

  // ------------------------------------------------------------------------------------------------
  // Time-driven (the scheduler: scheduler.ts, dueTaskIndex.ts)

  /** Daily recognition: everything earned by `now`. True when it appended. */
  async recognize(tenantId: string, subscriptionId: string, now: Date): Promise<boolean> {
    const stream = subscriptionStream(tenantId, subscriptionId);
    const { state } = await this.handler.load(subscriptionDecider, stream);
    if (state.status !== 'active' || !state.bounds) return false;
    const day = elapsedDays(state.bounds, now.getTime());
    if (day <= state.recognizedThroughDay) return false;
    const ctx = taskContext(tenantId, `recognize:${subscriptionId}:${state.period}:${day}`);
    const result = await this.handler.handle(
      subscriptionDecider,
      stream,
      // The task's key fixes the day: the same key always recognises through the same day.
      {
        type: 'RecognizeSubscriptionRevenue',
        asOf: toIso(state.bounds.startMs + day * 86_400_000),
        entryId: entryIdFor(ctx, 'RecognizeSubscriptionRevenue'),
      },
      ctx,
      { commandType: 'RecognizeSubscriptionRevenue', payloadHash: ctx.idempotencyKey },
    );
    return !result.replayed && result.events.length > 0;
  }

  /**
   * The renewal of `period` (attempt 0 at the period start, then the dunning retries): ends a subscription
   * canceled at the period end, else charges the wallet for the period (the wallet refuses a second
   * charge of the same period), records a failure as past due or, after the last retry, canceled.
   */
  async renew(
    tenantId: string,
    subscriptionId: string,
    period: number,
    attempt: number,
    now: Date,
  ): Promise<boolean> {
    const stream = subscriptionStream(tenantId, subscriptionId);
    const { state } = await this.handler.load(subscriptionDecider, stream);
    if ((state.status !== 'active' && state.status !== 'past_due') || state.period >= period) return false;
    if (!state.terms || !state.studentId || !state.currency) return false;
    const key =
      attempt === 0
        ? `renew:${subscriptionId}:${period}`
        : `renew:${subscriptionId}:${period}:retry${attempt}`;
    const ctx = taskContext(tenantId, key);
    if (state.cancelAtPeriodEnd) {
      const result = await this.handler.handle(
        subscriptionDecider,
        stream,
        {
          type: 'CancelSubscription',
          mode: 'period_end_reached',
          refund: 'none',
          refundId: 'none',
          at: now.toISOString(),
          entryId: entryIdFor(ctx, 'CancelSubscription'),
        },
        ctx,
        { commandType: 'CancelSubscription', payloadHash: key },
      );
      await this.endInWallet(triggerOf(result, 'SubscriptionCanceled'));
      return !result.replayed;
    }
    const catalog = await this.getPlans(tenantId);
    const planId = state.pendingPlanId ?? state.terms.planId;
    const plan = requirePlan(catalog, planId);
    try {
      const charged = await this.chargeWallet(
        ctx,
        {
          studentId: state.studentId,
          subscriptionId,
          chargeId: periodChargeId(period),
          kind: 'period',
          period,
          planId,
          startDay: 0,
        },
        { amount: plan.price, currency: plan.currency },
        key,
      );
      await this.recordCharge(triggerOf(charged, 'WalletSubscriptionCharged'));
      return !charged.replayed;
    } catch (error) {
      if (!(error instanceof DomainError) || error.code !== 'insufficient_funds') throw error;
      const result = await this.handler.handle(
        subscriptionDecider,
        stream,
        {
          type: 'RecordRenewalFailure',
          period,
          attempt,
          reason: error.message,
          failedAt: now.toISOString(),
          policy: catalog.policy,
          entryId: entryIdFor(ctx, 'RecordRenewalFailure'),
        },
        ctx,
        { commandType: 'RecordRenewalFailure', payloadHash: key },
      );
      const canceled = result.events.find((e) => e.type === 'SubscriptionCanceled');
      if (canceled) await this.endInWallet(triggerOf(result, 'SubscriptionCanceled'));
      return !result.replayed;
    }
  }
}

const taskContext = (tenantId: string, key: string): CommandContext => ({
  tenantId,
  actor: { id: 'scheduler', role: 'service' },
  idempotencyKey: key,
  correlationId: key,
  causationId: key,
});

export function subscriptionView(state: SubscriptionState, position?: bigint): SubscriptionView {
  if (!state.subscriptionId || !state.studentId || !state.terms || !state.bounds || !state.currency) {
    throw new DomainError('not_found', 'subscription not found');
  }
  const bounds = periodBounds(state.anchorMs, state.terms.interval, state.period);
  return {
    subscriptionId: state.subscriptionId,
    studentId: state.studentId,
    status: state.status as SubscriptionView['status'],
    plan: state.terms,
    currentPeriod: {
      period: state.period,
      start: toIso(bounds.startMs),
      end: toIso(bounds.endMs),
      days: bounds.days,
      recognizedThroughDay: state.recognizedThroughDay,
    },
    cancelAtPeriodEnd: state.cancelAtPeriodEnd,
    pendingPlanId: state.pendingPlanId,
    pastDue:
      state.dunning === null
        ? null
        : {
            period: state.dunning.period,
            attempt: state.dunning.attempt,
            nextAttemptAt: toIso(state.dunning.nextAttemptAtMs),
          },
    currency: state.currency,
    paid: state.paid,
    recognized: state.recognized,
    refunded: state.refunded,
    deferred: subscriptionDeferred(state),
    canceledAt: state.canceledAtMs === null ? null : toIso(state.canceledAtMs),
    canceledReason: state.canceledReason,
    ...(position !== undefined ? { position: String(position) } : {}),
  };
}
