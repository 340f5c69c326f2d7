import type { CommandContext } from '../../../src/commands/context.js';
import type { LedgerCommands } from '../../../src/commands/ledgerCommands.js';
import type { BookingView, PayoutAccountView, PayoutView, TopUpView } from '../../../src/contracts/views.js';
import { DomainError } from '../../../src/domain/errors.js';
import {
  decidePeriods,
  evolvePeriods,
  initialPeriodsState,
  type PeriodsState,
} from '../../../src/domain/periods.js';
import type { TenantSettings } from '../../../src/domain/tenantSettings.js';
import type {
  AccountBalance,
  LedgerQueries,
  TutorEarningsView,
  WalletView,
} from '../../../src/projections/ledgerQueries.js';

/**
 * A small, consistent in-memory stand-in for the write and read sides, for testing the HTTP shell
 * (auth, idempotency, validation, errors) independently of the ledger. It keeps balances well enough
 * that insufficient funds and ownership behave like the real thing, counts executions per command,
 * and records every state change so tests can prove a rejected request changed nothing.
 */
interface TenantState {
  wallets: Map<string, WalletView>;
  topUps: Map<string, TopUpView>;
  bookings: Map<string, BookingView>;
  payouts: Map<string, PayoutView>;
  earnings: Map<string, TutorEarningsView>;
  payoutAccounts: Map<string, PayoutAccountView>;
  settings: TenantSettings;
}

const DEFAULT_SETTINGS: TenantSettings = {
  commissionRateBps: 2_000,
  earningsHoldPeriodDays: 7,
  cancellationFreeWindowHours: 24,
  cancellationFeeBps: 5_000,
  holdExpiryDays: 14,
  topUpMin: 100,
  topUpMax: 1_000_000,
  payoutMin: 1_000,
  allowedCurrencies: ['usd', 'eur'],
  adjustmentApprovalThreshold: 1_000_000,
  adjustmentProposalExpiryHours: 72,
  payoutOnboardingReturnUrl: null,
  payoutOnboardingRefreshUrl: null,
  timeZone: 'UTC',
  reconciliationDailyHourUtc: null,
  referralRefereeCredit: 0,
  referralReferrerCredit: 0,
  referralMonthlyCap: 10,
  referralClawbackDays: 30,
};

export class FakeLedger {
  readonly tenants = new Map<string, TenantState>();
  /** Executions (not replays) per command name. */
  readonly executions = new Map<string, number>();
  /** Every state change, in order. */
  readonly changes: string[] = [];
  position = 0n;
  /** When set, commands wait for it before running (to hold a request in flight). */
  gate: Promise<void> | null = null;
  /** Commands currently waiting on the gate. */
  waiting = 0;
  private readonly replays = new Map<string, { input: string; result: unknown }>();

  private readonly closedPeriods = new Map<string, PeriodsState>();
  private periodsOf(tenantId: string): PeriodsState {
    return this.closedPeriods.get(tenantId) ?? initialPeriodsState();
  }

  private tenant(id: string): TenantState {
    let t = this.tenants.get(id);
    if (!t) {
      t = {
        wallets: new Map(),
        topUps: new Map(),
        bookings: new Map(),
        payouts: new Map(),
        earnings: new Map(),
        payoutAccounts: new Map(),
        settings: { ...DEFAULT_SETTINGS },
      };
      this.tenants.set(id, t);
    }
    return t;
  }

  private async idempotent<T>(name: string, ctx: CommandContext, input: unknown, fn: () => T): Promise<T> {
    if (this.gate) {
      this.waiting += 1;
      await this.gate;
      this.waiting -= 1;
    }
    const key = `${ctx.tenantId}|${name}|${ctx.idempotencyKey}`;
    const seen = this.replays.get(key);
    const serialized = JSON.stringify(input);
    if (seen) {
      if (seen.input !== serialized) throw new DomainError('validation_failed', 'key reused');
      return seen.result as T;
    }
    const result = fn();
    this.executions.set(name, (this.executions.get(name) ?? 0) + 1);
    this.replays.set(key, { input: serialized, result });
    return result;
  }

  private change(what: string): bigint {
    this.position += 1n;
    this.changes.push(what);
    return this.position;
  }

  private wallet(t: TenantState, studentId: string, currency: string): WalletView {
    let w = t.wallets.get(studentId);
    if (!w) {
      w = { studentId, currency, available: 0, pending: 0, posted: 0, version: 0 };
      t.wallets.set(studentId, w);
    }
    if (w.currency !== currency) throw new DomainError('currency_mismatch', 'wallet currency differs');
    return w;
  }

  private earningsOf(t: TenantState, tutorId: string, currency: string): TutorEarningsView {
    let e = t.earnings.get(tutorId);
    if (!e) {
      e = { tutorId, currency, pending: 0, available: 0, receivable: 0, paidOut: 0 };
      t.earnings.set(tutorId, e);
    }
    return e;
  }

  /** Seeds money without going through HTTP (as a succeeded top-up would). */
  /** The booking, which must exist and be `status`. */
  private bookingIn(t: TenantState, bookingId: string, status: BookingView['status']): BookingView {
    const b = t.bookings.get(bookingId);
    if (!b) throw new DomainError('not_found', 'no such booking');
    if (b.status !== status) throw new DomainError('invalid_state', `booking is ${b.status}`);
    return b;
  }

  /** The booking's hold leaves pending: captured (it leaves the wallet) or released (available again). */
  private resolveHold(t: TenantState, b: BookingView, outcome: 'captured' | 'released'): void {
    const w = this.wallet(t, b.studentId, b.price.currency);
    w.pending -= b.price.amount;
    if (outcome === 'captured') w.posted -= b.price.amount;
    else w.available += b.price.amount;
    w.version += 1;
  }

  credit(tenantId: string, studentId: string, amount: number, currency = 'usd'): void {
    const w = this.wallet(this.tenant(tenantId), studentId, currency);
    w.available += amount;
    w.posted += amount;
    w.version += 1;
    this.change(`credit ${studentId}`);
  }

  seedEarnings(tenantId: string, tutorId: string, available: number, currency = 'usd'): void {
    this.earningsOf(this.tenant(tenantId), tutorId, currency).available += available;
    this.change(`earnings ${tutorId}`);
  }

  readonly commands: LedgerCommands = {
    initiateTopUp: (ctx, input) =>
      this.idempotent('initiateTopUp', ctx, input, () => {
        const t = this.tenant(ctx.tenantId);
        if (input.amount.amount < t.settings.topUpMin)
          throw new DomainError('limit_exceeded', 'below minimum');
        const topUp: TopUpView = {
          topUpId: input.topUpId,
          studentId: input.studentId,
          status: 'pending',
          amount: input.amount,
          paymentIntentId: `pi_${input.topUpId.slice(0, 8)}`,
          clientSecret: `pi_${input.topUpId.slice(0, 8)}_secret`,
          failureReason: null,
        };
        t.topUps.set(input.topUpId, topUp);
        return { position: this.change(`topup ${input.topUpId}`), topUp: { ...topUp } };
      }),
    succeedTopUp: (ctx, input) =>
      this.idempotent('succeedTopUp', ctx, input, () => {
        const t = this.tenant(ctx.tenantId);
        const topUp = t.topUps.get(input.topUpId);
        if (!topUp) throw new DomainError('not_found', 'no such top-up');
        topUp.status = 'succeeded';
        this.credit(ctx.tenantId, topUp.studentId, input.amountReceived, input.currency);
        return { position: this.position };
      }),
    failTopUp: (ctx, input) =>
      this.idempotent('failTopUp', ctx, input, () => ({ position: this.change(`fail ${input.topUpId}`) })),
    refundTopUpToCard: (ctx, input) =>
      this.idempotent('refundTopUpToCard', ctx, input, () => ({
        position: this.change(`rtc ${input.topUpId}`),
      })),
    reverseFailedCardRefund: (ctx, input) =>
      this.idempotent('reverseFailedCardRefund', ctx, input, () => ({
        position: this.change(`rfcr ${input.topUpId}`),
      })),
    placeBooking: (ctx, input) =>
      this.idempotent('placeBooking', ctx, input, () => {
        const t = this.tenant(ctx.tenantId);
        if (t.bookings.has(input.bookingId)) throw new DomainError('invalid_state', 'booking exists');
        const w = this.wallet(t, input.studentId, input.price.currency);
        if (w.available < input.price.amount) {
          throw new DomainError('insufficient_funds', 'not enough money', {
            available: w.available,
            requested: input.price.amount,
          });
        }
        w.available -= input.price.amount;
        w.pending += input.price.amount;
        w.version += 1;
        const booking: BookingView = {
          bookingId: input.bookingId,
          studentId: input.studentId,
          tutorId: input.tutorId,
          price: input.price,
          scheduledAt: input.scheduledAt,
          status: 'held',
          holdId: `hold_${input.bookingId}`,
          captured: 0,
          refunded: 0,
          tutorShare: 0,
          commission: 0,
          cancellationFee: 0,
          discounts: [],
        };
        t.bookings.set(input.bookingId, booking);
        return { position: this.change(`book ${input.bookingId}`), booking: { ...booking } };
      }),
    completeBooking: (ctx, input) =>
      this.idempotent('completeBooking', ctx, input, () => {
        const t = this.tenant(ctx.tenantId);
        const b = this.bookingIn(t, input.bookingId, 'held');
        this.resolveHold(t, b, 'captured');
        b.status = 'completed';
        b.captured = b.price.amount;
        b.commission = Math.floor((b.price.amount * t.settings.commissionRateBps) / 10_000);
        b.tutorShare = b.captured - b.commission;
        this.earningsOf(t, b.tutorId, b.price.currency).pending += b.tutorShare;
        return { position: this.change(`complete ${b.bookingId}`), booking: { ...b } };
      }),
    cancelBooking: (ctx, input) =>
      this.idempotent('cancelBooking', ctx, input, () => {
        const t = this.tenant(ctx.tenantId);
        const b = this.bookingIn(t, input.bookingId, 'held');
        this.resolveHold(t, b, 'released');
        b.status = 'cancelled';
        return { position: this.change(`cancel ${b.bookingId}`), booking: { ...b } };
      }),
    refundBooking: (ctx, input) =>
      this.idempotent('refundBooking', ctx, input, () => {
        const b = this.bookingIn(this.tenant(ctx.tenantId), input.bookingId, 'completed');
        const amount = input.amount ?? b.captured - b.refunded;
        if (amount <= 0 || b.refunded + amount > b.captured) {
          throw new DomainError('validation_failed', 'refund exceeds captured');
        }
        b.refunded += amount;
        this.credit(ctx.tenantId, b.studentId, amount, b.price.currency);
        return { position: this.position, booking: { ...b }, refundId: `refund_${this.position}` };
      }),
    requestPayout: (ctx, input) =>
      this.idempotent('requestPayout', ctx, input, () => {
        const t = this.tenant(ctx.tenantId);
        const e = this.earningsOf(t, input.tutorId, input.amount.currency);
        if (e.available < input.amount.amount)
          throw new DomainError('insufficient_funds', 'not enough earnings');
        e.available -= input.amount.amount;
        const payout: PayoutView = {
          payoutId: input.payoutId,
          tutorId: input.tutorId,
          amount: input.amount,
          status: 'requested',
          stripeTransferId: null,
          stripePayoutId: null,
          failureReason: null,
        };
        t.payouts.set(input.payoutId, payout);
        return { position: this.change(`payout ${input.payoutId}`), payout: { ...payout } };
      }),
    openPayoutAccount: (ctx, input) =>
      this.idempotent('openPayoutAccount', ctx, input, () => {
        const t = this.tenant(ctx.tenantId);
        let account = t.payoutAccounts.get(input.tutorId);
        if (!account) {
          account = {
            tutorId: input.tutorId,
            stripeAccountId: `acct_fake${t.payoutAccounts.size + 1}`,
            chargesEnabled: false,
            payoutsEnabled: false,
            detailsSubmitted: false,
            requirements: { currentlyDue: ['external_account'], pastDue: [], disabledReason: null },
            missing: ['external_account'],
          };
          t.payoutAccounts.set(input.tutorId, account);
        }
        return {
          position: this.change(`payout account ${input.tutorId}`),
          account: structuredClone(account),
          onboarding: {
            url: 'https://connect.stripe.com/setup/e/fake',
            expiresAt: '2030-01-01T00:00:00.000Z',
          },
        };
      }),
    getPayoutAccount: async (tenantId, tutorId) => {
      const account = this.tenant(tenantId).payoutAccounts.get(tutorId);
      return account ? structuredClone(account) : null;
    },
    syncPayoutAccount: (ctx, input) =>
      this.idempotent('syncPayoutAccount', ctx, input, () => ({
        position: this.change(`payout account sync ${input.tutorId}`),
      })),
    markPayoutPaid: (ctx, input) =>
      this.idempotent('markPayoutPaid', ctx, input, () => ({
        position: this.change(`paid ${input.payoutId}`),
      })),
    markPayoutFailed: (ctx, input) =>
      this.idempotent('markPayoutFailed', ctx, input, () => ({
        position: this.change(`fail ${input.payoutId}`),
      })),
    adjust: (ctx, input) =>
      this.idempotent('adjust', ctx, input, () => ({
        position: this.change(`adjust ${input.account}`),
        entryId: `entry_${this.position}`,
      })),
    recordStripeCharge: (ctx, input) =>
      this.idempotent('recordStripeCharge', ctx, input, () => ({
        position: this.change(`charge ${input.stripeObjectId}`),
        entryId: `entry_${this.position}`,
      })),
    closePeriod: (ctx, input) =>
      this.idempotent('closePeriod', ctx, input, () => {
        const periods = this.periodsOf(ctx.tenantId);
        const state = { ...periods, closes: [...periods.closes] };
        const [closed] = decidePeriods(
          { type: 'ClosePeriod', period: input.period, actor: ctx.actor, now: new Date().toISOString() },
          state,
        );
        this.closedPeriods.set(ctx.tenantId, evolvePeriods(state, closed!));
        return { position: this.change(`close ${input.period}`) };
      }),
    periods: async (tenantId) => structuredClone(this.periodsOf(tenantId)),
    getSettings: async (tenantId) => ({ ...this.tenant(tenantId).settings }),
    updateSettings: (ctx, patch) =>
      this.idempotent('updateSettings', ctx, patch, () => {
        const t = this.tenant(ctx.tenantId);
        t.settings = { ...t.settings, ...patch };
        return { position: this.change('settings'), settings: { ...t.settings } };
      }),
    runDueTasks: async () => ({ expiredHolds: 0, clearedEarnings: 0 }),
  };

  readonly queries: LedgerQueries = {
    waitForPosition: async (position) => position <= this.position,
    projectedPosition: async () => this.position,
    getWallet: async (tenantId, studentId) => {
      const w = this.tenant(tenantId).wallets.get(studentId);
      return w ? { ...w } : null;
    },
    getWalletTransactions: async () => ({ items: [], nextCursor: null }),
    getBooking: async (tenantId, id) => {
      const b = this.tenant(tenantId).bookings.get(id);
      return b ? { ...b } : null;
    },
    getTopUp: async (tenantId, id) => {
      const t = this.tenant(tenantId).topUps.get(id);
      return t ? { ...t } : null;
    },
    getPayout: async (tenantId, id) => {
      const p = this.tenant(tenantId).payouts.get(id);
      return p ? { ...p } : null;
    },
    getTutorEarnings: async (tenantId, tutorId) => {
      const e = this.tenant(tenantId).earnings.get(tutorId);
      return e ? { ...e } : null;
    },
    getAccountBalance: async (tenantId, account): Promise<AccountBalance | null> => {
      const match = /^student:([^:]+):wallet$/.exec(account);
      const w = match ? this.tenant(tenantId).wallets.get(match[1]!) : undefined;
      if (!w) return null;
      return {
        account,
        currency: w.currency,
        debitsPending: w.pending,
        debitsPosted: 0,
        creditsPending: 0,
        creditsPosted: w.posted,
        available: w.available,
        version: w.version,
        position: this.position,
      };
    },
    getAccountEntries: async () => ({ items: [], nextCursor: null }),
    getEntry: async () => null,
    getTrialBalance: async () => [],
    getCurrenciesHeld: async () => [],
    listBookings: async () => ({ items: [], nextCursor: null }),
    listPayouts: async () => ({ items: [], nextCursor: null }),
  };
}
