import { calendarPeriods } from '../domain/calendar.js';
import { DomainError } from '../domain/errors.js';
import { guardianshipDecider } from '../domain/guardianship.js';
import { isTenantId } from '../domain/ids.js';
import { assertCurrency } from '../domain/money.js';
import {
  type LimitName,
  type LimitStanding,
  limitStandings,
  periodsForHold,
  requireLimits,
  type SpendingLimits,
  spentIn,
} from '../domain/spendingLimits.js';
import { guardianshipStream, settingsStream, walletStream } from '../domain/streams.js';
import { tenantSettingsDecider } from '../domain/tenantSettings.js';
import { requireEntityId } from '../domain/validate.js';
import { walletDecider } from '../domain/wallet.js';
import type { CommandHandler } from './commandHandler.js';
import type { CommandContext, CommandResult } from './context.js';
import { stableHash } from './stableHash.js';

/** A wallet's spending limits as the API shows them: each limit with what is left of it now. */
export interface SpendingLimitsView {
  studentId: string;
  /** The wallet's currency; null while it has neither money nor limits. */
  currency: string | null;
  /** The tenant's time zone the periods are calendar periods of. */
  timeZone: string;
  limits: SpendingLimits;
  /** Per limit that is set: its amount, what was spent against it in the current period, what is left. */
  standing: Record<LimitName, LimitStanding | null>;
  /** What was spent in the current day, week and month, whether or not a limit is set. */
  spent: { day: PeriodSpend; week: PeriodSpend; month: PeriodSpend };
  asOf: string;
}

/** A student's linked guardians, oldest link first. */
export interface GuardiansView {
  studentId: string;
  guardians: Array<{ guardianId: string; linkedAt: string }>;
}

export interface PeriodSpend {
  period: string;
  amount: number;
}

/**
 * Wallet controls (docs/ledger-flows.md, "Spending limits"): the spending limits a wallet's own stream
 * holds. Reads go to the wallet stream (the write side), so what is left is exact the moment a booking
 * or a change answered.
 */
export class WalletControls {
  constructor(
    private readonly handler: CommandHandler,
    private readonly clock: () => Date,
  ) {}

  async getLimits(tenantId: string, studentId: string): Promise<SpendingLimitsView> {
    if (!isTenantId(tenantId)) throw new DomainError('validation_failed', 'invalid tenant id');
    const id = requireEntityId(studentId, 'studentId');
    const [{ state: tenant }, { state: wallet }] = await Promise.all([
      this.handler.load(tenantSettingsDecider, settingsStream(tenantId)),
      this.handler.load(walletDecider, walletStream(tenantId, id)),
    ]);
    const now = this.clock();
    const timeZone = tenant.settings.timeZone;
    // The periods a booking placed now would count in (periodsForHold: never behind the counters).
    const periods = periodsForHold(wallet.spending, calendarPeriods(now.getTime(), timeZone));
    const spent = spentIn(wallet.spending, periods);
    return {
      studentId: id,
      currency: wallet.currency,
      timeZone,
      limits: { ...wallet.spending.limits },
      standing: limitStandings(wallet.spending, periods),
      spent: {
        day: { period: periods.day, amount: spent.day },
        week: { period: periods.week, amount: spent.week },
        month: { period: periods.month, amount: spent.month },
      },
      asOf: now.toISOString(),
    };
  }

  /**
   * Replaces the wallet's limits (null: no limit of that kind). `currency` is needed only while the
   * wallet has no currency yet (it then becomes the wallet's); otherwise it must be the wallet's.
   */
  async setLimits(
    ctx: CommandContext,
    input: { studentId: string; limits: SpendingLimits; currency?: string },
  ): Promise<CommandResult & { view: SpendingLimitsView }> {
    const studentId = requireEntityId(input.studentId, 'studentId');
    const limits = requireLimits(input.limits);
    const stream = walletStream(ctx.tenantId, studentId);
    const [{ state: tenant }, { state: wallet }, { state: guardianship }] = await Promise.all([
      this.handler.load(tenantSettingsDecider, settingsStream(ctx.tenantId)),
      this.handler.load(walletDecider, stream),
      this.handler.load(guardianshipDecider, guardianshipStream(ctx.tenantId, studentId)),
    ]);
    const currency = input.currency ?? wallet.currency;
    if (currency === null) {
      throw new DomainError(
        'validation_failed',
        'this wallet holds no money yet: give the currency its limits are in',
        { field: 'currency' },
      );
    }
    if (!tenant.settings.allowedCurrencies.includes(assertCurrency(currency, 'currency'))) {
      throw new DomainError('validation_failed', `currency ${currency} is not allowed for this tenant`, {
        field: 'currency',
        allowed: [...tenant.settings.allowedCurrencies],
      });
    }
    const result = await this.handler.handle(
      walletDecider,
      stream,
      {
        type: 'SetSpendingLimits',
        studentId,
        currency,
        limits,
        actor: ctx.actor,
        setAt: this.clock().toISOString(),
        // Read just before: a link appended meanwhile orders after this change (docs/ledger-flows.md).
        guardianLinked: guardianship.guardians.size > 0,
      },
      ctx,
      {
        commandType: 'SetSpendingLimits',
        payloadHash: stableHash({ op: 'setSpendingLimits', studentId, limits, currency }),
      },
    );
    return { position: result.position, view: await this.getLimits(ctx.tenantId, studentId) };
  }

  async guardians(tenantId: string, studentId: string): Promise<GuardiansView> {
    if (!isTenantId(tenantId)) throw new DomainError('validation_failed', 'invalid tenant id');
    const id = requireEntityId(studentId, 'studentId');
    const { state } = await this.handler.load(guardianshipDecider, guardianshipStream(tenantId, id));
    return guardiansView(id, state.guardians);
  }

  /** Links a guardian to a student (a tenant admin's act); linking one already linked changes nothing. */
  async linkGuardian(
    ctx: CommandContext,
    input: { studentId: string; guardianId: string },
  ): Promise<CommandResult & { view: GuardiansView; linked: boolean }> {
    const studentId = requireEntityId(input.studentId, 'studentId');
    const guardianId = requireEntityId(input.guardianId, 'guardianId');
    const result = await this.handler.handle(
      guardianshipDecider,
      guardianshipStream(ctx.tenantId, studentId),
      { type: 'LinkGuardian', studentId, guardianId, actor: ctx.actor, linkedAt: this.clock().toISOString() },
      ctx,
      { commandType: 'LinkGuardian', payloadHash: stableHash({ op: 'linkGuardian', studentId, guardianId }) },
    );
    return {
      position: result.position,
      view: guardiansView(studentId, result.state.guardians),
      linked: result.events.length > 0,
    };
  }

  async unlinkGuardian(
    ctx: CommandContext,
    input: { studentId: string; guardianId: string },
  ): Promise<CommandResult & { view: GuardiansView }> {
    const studentId = requireEntityId(input.studentId, 'studentId');
    const guardianId = requireEntityId(input.guardianId, 'guardianId');
    const result = await this.handler.handle(
      guardianshipDecider,
      guardianshipStream(ctx.tenantId, studentId),
      {
        type: 'UnlinkGuardian',
        studentId,
        guardianId,
        actor: ctx.actor,
        unlinkedAt: this.clock().toISOString(),
      },
      ctx,
      {
        commandType: 'UnlinkGuardian',
        payloadHash: stableHash({ op: 'unlinkGuardian', studentId, guardianId }),
      },
    );
    return { position: result.position, view: guardiansView(studentId, result.state.guardians) };
  }
}

function guardiansView(studentId: string, guardians: ReadonlyMap<string, string>): GuardiansView {
  return {
    studentId,
    guardians: [...guardians].map(([guardianId, linkedAt]) => ({ guardianId, linkedAt })),
  };
}
