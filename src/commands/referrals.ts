import { discountTotal } from '../domain/bookingPrice.js';
import { calendarPeriods } from '../domain/calendar.js';
import { DomainError } from '../domain/errors.js';
import { decodeEventOf, type LedgerEventType } from '../domain/events.js';
import { isTenantId } from '../domain/ids.js';
import {
  countingMonth,
  creditsAvailable,
  type ReferralState,
  referralCodeOf,
  referralDecider,
} from '../domain/referral.js';
import { referralStream, walletStream } from '../domain/streams.js';
import { referralProgramActive, type TenantSettings } from '../domain/tenantSettings.js';
import { DAY_MS, requireEntityId, toIso } from '../domain/validate.js';
import { walletDecider } from '../domain/wallet.js';
import type { CommandHandler, HandleResult } from './commandHandler.js';
import type { CommandContext, CommandResult } from './context.js';
import { entryIdFor, type Trigger } from './flowContext.js';
import type { FlowSteps } from './flowSteps.js';
import { stableHash } from './stableHash.js';

/**
 * Referral credits (src/domain/referral.ts, docs/ledger-flows.md "Referral credits"): the student's
 * code and standing, the link a new student makes with a code, and the flow steps that reward both
 * sides at the referee's first paid capture and claw the rewards back when that booking is refunded in
 * full within the window. Every step is keyed by its trigger (FlowSteps.runStep), so the request path
 * and the process managers perform it once between them.
 */

export interface ReferralView {
  studentId: string;
  /** The code to share: a new student who signs up with it is linked to this one. */
  code: string;
  program: {
    active: boolean;
    refereeCredit: number;
    referrerCredit: number;
    monthlyCap: number;
    clawbackDays: number;
    timeZone: string;
  };
  /** As a referee: who referred this student, and the reward of its first paid booking. */
  referredBy: {
    referrerId: string;
    linkedAt: string;
    qualified: {
      bookingId: string;
      qualifiedAt: string;
      credit: number;
      currency: string;
      clawbackUntil: string;
      clawedBack: boolean;
    } | null;
  } | null;
  /** As a referrer: rewards granted, capped and clawed back, and this month's count against the cap. */
  rewards: {
    granted: number;
    capped: number;
    clawedBack: number;
    thisMonth: { month: string; granted: number; cap: number; remaining: number };
  };
  /** student:{id}:credits per currency. */
  credits: Array<{ currency: string; available: number }>;
}

export function referralView(
  tenantId: string,
  studentId: string,
  state: ReferralState,
  settings: TenantSettings,
  now: Date,
): ReferralView {
  let granted = 0;
  let capped = 0;
  let clawedBack = 0;
  for (const reward of state.rewards.values()) {
    if (reward.status === 'capped') capped++;
    else {
      granted++;
      if (reward.status === 'clawed_back') clawedBack++;
    }
  }
  const month = countingMonth(state, calendarPeriods(now.getTime(), settings.timeZone).month);
  const q = state.qualification;
  return {
    studentId,
    code: referralCodeOf(tenantId, studentId),
    program: {
      active: referralProgramActive(settings),
      refereeCredit: settings.referralRefereeCredit,
      referrerCredit: settings.referralReferrerCredit,
      monthlyCap: settings.referralMonthlyCap,
      clawbackDays: settings.referralClawbackDays,
      timeZone: settings.timeZone,
    },
    referredBy:
      state.referredBy === null
        ? null
        : {
            referrerId: state.referredBy.referrerId,
            linkedAt: state.referredBy.linkedAt,
            qualified:
              q === null
                ? null
                : {
                    bookingId: q.bookingId,
                    qualifiedAt: q.qualifiedAt,
                    credit: q.refereeCredit,
                    currency: q.currency,
                    clawbackUntil: q.clawbackUntil,
                    clawedBack: q.clawedBack,
                  },
          },
    rewards: {
      granted,
      capped,
      clawedBack,
      thisMonth: {
        month: month.month,
        granted: month.count,
        cap: settings.referralMonthlyCap,
        remaining: Math.max(0, settings.referralMonthlyCap - month.count),
      },
    },
    credits: [...state.credits.keys()]
      .sort()
      .map((currency) => ({ currency, available: creditsAvailable(state, currency) })),
  };
}

/** The single event a step appended (or replayed) as the next trigger, or null when it decided nothing. */
function nextTrigger<T extends LedgerEventType>(result: HandleResult<unknown>, type: T): Trigger<T> | null {
  const event = result.events.find((e) => e.type === type);
  return event ? decodeEventOf({ ...event, position: result.position }, [type]) : null;
}

export class ReferralService {
  constructor(
    private readonly handler: CommandHandler,
    private readonly steps: FlowSteps,
    private readonly clock: () => Date,
  ) {}

  async view(tenantId: string, studentId: string): Promise<ReferralView> {
    if (!isTenantId(tenantId)) throw new DomainError('validation_failed', 'invalid tenant id');
    const id = requireEntityId(studentId, 'studentId');
    const [{ state }, settings] = await Promise.all([
      this.handler.load(referralDecider, referralStream(tenantId, id)),
      this.steps.settingsAsOf(tenantId),
    ]);
    return referralView(tenantId, id, state, settings, this.clock());
  }

  /**
   * `POST /v1/students/{id}/referred-by {code}`: links a new student to the code's referrer, once. "New"
   * (no completed booking) is read from the student's wallet just before the append, not under one
   * expected revision of both streams; a link that slips in beside the first capture simply waits for
   * that capture's step to run again (process managers) or the next paid capture, and qualifies once
   * (docs/ledger-flows.md, "Referral credits").
   */
  async linkReferrer(
    ctx: CommandContext,
    input: { studentId: string; code: string },
  ): Promise<CommandResult & { linked: boolean; referral: ReferralView }> {
    const studentId = requireEntityId(input.studentId, 'studentId');
    const [{ state: wallet }, settings] = await Promise.all([
      this.handler.load(walletDecider, walletStream(ctx.tenantId, studentId)),
      this.steps.settingsAsOf(ctx.tenantId),
    ]);
    let hasCompletedBooking = false;
    for (const hold of wallet.holds.values()) {
      if (hold.status === 'captured') {
        hasCompletedBooking = true;
        break;
      }
    }
    const result = await this.handler.handle(
      referralDecider,
      referralStream(ctx.tenantId, studentId),
      {
        type: 'LinkReferral',
        tenantId: ctx.tenantId,
        studentId,
        code: input.code,
        actor: { id: ctx.actor.id, role: ctx.actor.role },
        linkedAt: this.clock().toISOString(),
        hasCompletedBooking,
        programActive: referralProgramActive(settings),
      },
      ctx,
      { commandType: 'LinkReferral', payloadHash: stableHash({ op: 'linkReferrer', input }) },
    );
    return {
      position: result.position,
      linked: result.events.length > 0,
      referral: referralView(ctx.tenantId, studentId, result.state, settings, this.clock()),
    };
  }

  /**
   * WalletHoldCaptured -> ReferralQualified on the referee's stream (nothing when not referred or
   * rewarded already), then the referrer's reward. Terms are the tenant's as of the capture.
   */
  async qualifyAfterCapture(trigger: Trigger<'WalletHoldCaptured'>): Promise<bigint | null> {
    const d = trigger.data;
    const t = trigger.tenantId;
    const settings = await this.steps.settingsAsOf(t, trigger.position);
    const at = Date.parse(trigger.metadata.occurredAt);
    const result = await this.steps.runStep(
      trigger,
      'qualify-referral',
      referralDecider,
      referralStream(t, d.studentId),
      (ctx) => ({
        type: 'QualifyReferral',
        studentId: d.studentId,
        bookingId: d.bookingId,
        bookingAmount: d.captured + discountTotal(d.discounts),
        currency: d.currency,
        refereeCredit: settings.referralRefereeCredit,
        referrerCredit: settings.referralReferrerCredit,
        referrerMonthlyCap: settings.referralMonthlyCap,
        month: calendarPeriods(at, settings.timeZone).month,
        qualifiedAt: toIso(at),
        clawbackUntil: toIso(at + settings.referralClawbackDays * DAY_MS),
        entryId: entryIdFor(ctx, 'QualifyReferral'),
      }),
    );
    const qualified = nextTrigger(result, 'ReferralQualified');
    if (qualified === null) return null;
    return (await this.rewardReferrer(qualified)) ?? qualified.position;
  }

  /** ReferralQualified -> ReferralRewardGranted or ReferralRewardCapped on the referrer's stream. */
  async rewardReferrer(trigger: Trigger<'ReferralQualified'>): Promise<bigint | null> {
    const d = trigger.data;
    if (d.referrerCredit === 0) return null;
    const result = await this.steps.runStep(
      trigger,
      'reward-referrer',
      referralDecider,
      referralStream(trigger.tenantId, d.referrerId),
      (ctx) => ({
        type: 'GrantReferrerReward',
        studentId: d.referrerId,
        refereeId: d.studentId,
        bookingId: d.bookingId,
        currency: d.currency,
        amount: d.referrerCredit,
        month: d.month,
        cap: d.referrerMonthlyCap,
        grantedAt: d.qualifiedAt,
        entryId: entryIdFor(ctx, 'GrantReferrerReward'),
      }),
    );
    return result.events.length > 0 ? result.position : null;
  }

  /** BookingRefunded -> ReferralClawedBack when it refunds the qualifying booking in full within the window. */
  async clawBackAfterRefund(trigger: Trigger<'BookingRefunded'>): Promise<bigint | null> {
    const d = trigger.data;
    const result = await this.steps.runStep(
      trigger,
      'claw-back-referral',
      referralDecider,
      referralStream(trigger.tenantId, d.studentId),
      (ctx) => ({
        type: 'ClawBackReferral',
        studentId: d.studentId,
        bookingId: d.bookingId,
        refundedTotal: d.refundedTotal,
        refundedAt: d.refundedAt,
        entryId: entryIdFor(ctx, 'ClawBackReferral'),
      }),
    );
    const clawedBack = nextTrigger(result, 'ReferralClawedBack');
    if (clawedBack === null) return null;
    return (await this.clawBackReferrer(clawedBack)) ?? clawedBack.position;
  }

  /** ReferralClawedBack -> ReferralRewardClawedBack on the referrer's stream (nothing if it was capped). */
  async clawBackReferrer(trigger: Trigger<'ReferralClawedBack'>): Promise<bigint | null> {
    const d = trigger.data;
    const result = await this.steps.runStep(
      trigger,
      'claw-back-referrer',
      referralDecider,
      referralStream(trigger.tenantId, d.referrerId),
      (ctx) => ({
        type: 'ClawBackReferrerReward',
        studentId: d.referrerId,
        refereeId: d.studentId,
        bookingId: d.bookingId,
        clawedBackAt: d.clawedBackAt,
        entryId: entryIdFor(ctx, 'ClawBackReferrerReward'),
      }),
    );
    return result.events.length > 0 ? result.position : null;
  }
}
