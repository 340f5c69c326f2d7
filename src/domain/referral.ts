import { Type } from '@sinclair/typebox';
import { PersistentMap } from '../lib/persistentMap.js';
import { PLATFORM_EXPENSE_PROMOTIONS, studentCredits } from './accounts.js';
import { type AccountTotals, applyEntryToAccount, available, emptyTotals } from './balances.js';
import { MONTH_KEY_PATTERN } from './calendar.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { deterministicId, isEntityId } from './ids.js';
import { type JournalEntry, JournalEntrySchema, postEntry } from './journal.js';
import { assertOwnedAccountWithinLimit, STEP_VOLUME_LIMIT } from './ledgerLimits.js';
import { assertAmount, assertCurrency } from './money.js';
import {
  type Actor,
  ActorSchema,
  AmountSchema,
  CountSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  PositiveAmountSchema,
  strictObject,
} from './schema.js';
import {
  parseInstant,
  requireActor,
  requireEntityId,
  requireIntegerInRange,
  requireUuid,
  toIso,
  validationFailed,
} from './validate.js';

/**
 * A student's referrals (docs/ledger-flows.md, "Referral credits"): stream `referral-{t}.{studentId}`,
 * the only owner of `student:{id}:credits`. It holds both sides of the programme for one student:
 *
 * - as a *referee*: the one link to a referrer (`ReferralLinked`, once, before the first completed
 *   booking) and the one qualification (`ReferralQualified`, at the first paid capture after the link),
 *   which credits the referee. "One reward per referee" is this stream's state: a second qualification
 *   appends nothing, however many bookings complete at once.
 * - as a *referrer*: one reward per referee (`ReferralRewardGranted`), at most the tenant's monthly cap
 *   of them per calendar month of the tenant's time zone; one over the cap is recorded as
 *   `ReferralRewardCapped` (a fact, so a retried step gets the same answer). Both are decided against
 *   this stream under its expected revision, so referees qualifying at the same moment through any
 *   number of processes can never take the referrer past the cap.
 *
 * Credits are funded by `platform:expense:promotions` (the promo codes' expense account). A full refund
 * of the qualifying booking within the clawback window takes both rewards back (what is still there:
 * credits cannot be spent yet, so that is all of it).
 */

/** The most rewards (granted or capped) one referrer's state remembers: the bound on its state. */
export const MAX_REFERRAL_REWARDS = 100_000;
/** Bounds of the tenant settings (tenantSettings.ts). */
export const MAX_REFERRAL_CREDIT = 1_000_000_000;
export const MAX_REFERRAL_MONTHLY_CAP = 1_000;
export const MAX_REFERRAL_CLAWBACK_DAYS = 365;

/** Why a referral code cannot be used (details.reason of referral_rejected). */
export type ReferralRejection =
  | 'unknown_code'
  | 'self_referral'
  | 'already_referred'
  | 'not_new'
  | 'program_inactive';

export function referralRejected(
  reason: ReferralRejection,
  message: string,
  details: Record<string, unknown> = {},
): never {
  throw new DomainError('referral_rejected', message, { reason, ...details });
}

// ---------------------------------------------------------------------------------------------------
// Codes

const CHECK_CHARS = 6;
const CODE_PATTERN = new RegExp(`^([A-Za-z0-9_-]{1,64})-([0-9A-F]{${CHECK_CHARS}})$`);

/**
 * A student's referral code: `{studentId}-{check}`, the check being the first hex digits of a v5 id of
 * tenant and student. It needs no lookup table: the code names its referrer, so linking is decided on
 * the referee's stream alone (no read model that could lag behind a code handed out a second ago), and
 * the check turns a mistyped code into `unknown_code` rather than someone else's referral.
 */
export function referralCodeOf(tenantId: string, studentId: string): string {
  const id = requireEntityId(studentId, 'studentId');
  const check = deterministicId('referral-code', tenantId, id).replaceAll('-', '').slice(0, CHECK_CHARS);
  return `${id}-${check.toUpperCase()}`;
}

/** The referrer a code names, or referral_rejected `unknown_code`. */
export function referrerOfCode(tenantId: string, code: unknown): string {
  const match = typeof code === 'string' ? CODE_PATTERN.exec(code) : null;
  const referrerId = match?.[1];
  if (referrerId === undefined || !isEntityId(referrerId) || referralCodeOf(tenantId, referrerId) !== code) {
    return referralRejected('unknown_code', 'no student has this referral code', { field: 'code' });
  }
  return referrerId;
}

// ---------------------------------------------------------------------------------------------------
// Events

const MonthSchema = Type.String({ pattern: MONTH_KEY_PATTERN.source });
const OptionalEntry = Type.Optional(JournalEntrySchema);

export const REFERRAL_EVENTS = {
  /** The referee (studentId) signed up with the referrer's code. */
  ReferralLinked: strictObject({
    studentId: EntityIdSchema,
    referrerId: EntityIdSchema,
    code: Type.String({ minLength: 3, maxLength: 80 }),
    actor: ActorSchema,
    linkedAt: InstantSchema,
  }),
  /**
   * The referee's first paid booking after the link was captured: the programme's terms as of then
   * (credits, the referrer's monthly cap, the month it counts in, the end of the clawback window), and
   * the referee's credit (Dr platform:expense:promotions, Cr student:{id}:credits; no entry when 0).
   */
  ReferralQualified: strictObject({
    studentId: EntityIdSchema,
    referrerId: EntityIdSchema,
    bookingId: EntityIdSchema,
    currency: CurrencySchema,
    /** The booking's list price: a refund of all of it within the window claws the rewards back. */
    bookingAmount: PositiveAmountSchema,
    refereeCredit: AmountSchema,
    referrerCredit: AmountSchema,
    referrerMonthlyCap: CountSchema,
    /** The tenant's calendar month (its time zone) the referrer's reward counts in. */
    month: MonthSchema,
    qualifiedAt: InstantSchema,
    clawbackUntil: InstantSchema,
    entry: OptionalEntry,
  }),
  /** The referrer's (studentId) reward for a referee: Dr platform:expense:promotions, Cr its credits. */
  ReferralRewardGranted: strictObject({
    studentId: EntityIdSchema,
    refereeId: EntityIdSchema,
    bookingId: EntityIdSchema,
    currency: CurrencySchema,
    amount: PositiveAmountSchema,
    month: MonthSchema,
    /** Rewards granted in `month` including this one (<= the cap). */
    monthCount: Type.Integer({ minimum: 1, maximum: MAX_REFERRAL_MONTHLY_CAP }),
    grantedAt: InstantSchema,
    entry: JournalEntrySchema,
  }),
  /** The referrer had reached the monthly cap (or its bound): no reward for this referee, for good. */
  ReferralRewardCapped: strictObject({
    studentId: EntityIdSchema,
    refereeId: EntityIdSchema,
    bookingId: EntityIdSchema,
    currency: CurrencySchema,
    amount: PositiveAmountSchema,
    month: MonthSchema,
    cap: CountSchema,
    cappedAt: InstantSchema,
  }),
  /** The qualifying booking was refunded in full within the window: the referee's credit taken back. */
  ReferralClawedBack: strictObject({
    studentId: EntityIdSchema,
    referrerId: EntityIdSchema,
    bookingId: EntityIdSchema,
    currency: CurrencySchema,
    amount: AmountSchema,
    /** What the credits still held of it (Dr credits, Cr promotions); the rest stays an expense. */
    recovered: AmountSchema,
    clawedBackAt: InstantSchema,
    entry: OptionalEntry,
  }),
  /** The referrer's reward for that referee taken back likewise. */
  ReferralRewardClawedBack: strictObject({
    studentId: EntityIdSchema,
    refereeId: EntityIdSchema,
    bookingId: EntityIdSchema,
    currency: CurrencySchema,
    amount: PositiveAmountSchema,
    recovered: AmountSchema,
    clawedBackAt: InstantSchema,
    entry: OptionalEntry,
  }),
} as const satisfies EventSchemas;

export type ReferralEvent = EventsOf<typeof REFERRAL_EVENTS>;
export type ReferralQualified = EventOf<typeof REFERRAL_EVENTS, 'ReferralQualified'>;

// ---------------------------------------------------------------------------------------------------
// Commands

export interface LinkReferral {
  type: 'LinkReferral';
  tenantId: string;
  studentId: string;
  code: string;
  actor: Actor;
  linkedAt: string;
  /** Read from the student's wallet just before: a student with a completed booking is not new. */
  hasCompletedBooking: boolean;
  /** The tenant's programme pays something (tenantSettings.ts). */
  programActive: boolean;
}

/** From the referee's paid capture (a flow step): the terms are the tenant's as of the capture. */
export interface QualifyReferral {
  type: 'QualifyReferral';
  studentId: string;
  bookingId: string;
  bookingAmount: number;
  currency: string;
  refereeCredit: number;
  referrerCredit: number;
  referrerMonthlyCap: number;
  month: string;
  qualifiedAt: string;
  clawbackUntil: string;
  entryId: string;
}

/** From ReferralQualified, on the referrer's stream. */
export interface GrantReferrerReward {
  type: 'GrantReferrerReward';
  studentId: string;
  refereeId: string;
  bookingId: string;
  currency: string;
  amount: number;
  month: string;
  cap: number;
  grantedAt: string;
  entryId: string;
}

/** From BookingRefunded, on the referee's stream. */
export interface ClawBackReferral {
  type: 'ClawBackReferral';
  studentId: string;
  bookingId: string;
  /** Refunds of the booking so far, of its list price. */
  refundedTotal: number;
  refundedAt: string;
  entryId: string;
}

/** From ReferralClawedBack, on the referrer's stream. */
export interface ClawBackReferrerReward {
  type: 'ClawBackReferrerReward';
  studentId: string;
  refereeId: string;
  bookingId: string;
  clawedBackAt: string;
  entryId: string;
}

export type ReferralCommand =
  | LinkReferral
  | QualifyReferral
  | GrantReferrerReward
  | ClawBackReferral
  | ClawBackReferrerReward;

// ---------------------------------------------------------------------------------------------------
// State

export interface ReferralLink {
  referrerId: string;
  code: string;
  linkedAt: string;
}

export interface ReferralQualification {
  referrerId: string;
  bookingId: string;
  currency: string;
  bookingAmount: number;
  refereeCredit: number;
  referrerCredit: number;
  qualifiedAt: string;
  clawbackUntil: string;
  clawedBack: boolean;
}

export interface ReferrerReward {
  bookingId: string;
  currency: string;
  amount: number;
  month: string;
  status: 'granted' | 'capped' | 'clawed_back';
}

export interface ReferralState {
  studentId: string | null;
  referredBy: ReferralLink | null;
  qualification: ReferralQualification | null;
  /** As a referrer: refereeId -> its reward (or the record that it was capped). */
  rewards: PersistentMap<ReferrerReward>;
  /** Rewards granted in the latest month this stream counted in (the cap's counter). */
  monthCount: { month: string; count: number } | null;
  /** student:{id}:credits per currency. */
  credits: ReadonlyMap<string, AccountTotals>;
  version: number;
}

export const initialReferralState = (): ReferralState => ({
  studentId: null,
  referredBy: null,
  qualification: null,
  rewards: PersistentMap.empty(),
  monthCount: null,
  credits: new Map(),
  version: 0,
});

/** Credits available in a currency. */
export const creditsAvailable = (state: ReferralState, currency: string): number =>
  available(state.credits.get(currency) ?? emptyTotals(), 'credit');

/**
 * The month a reward decided now counts in: the command's, or the later month the counter already has
 * (a process whose clock runs behind never opens a fresh month's room; as spendingLimits.ts does).
 */
export function countingMonth(state: ReferralState, month: string): { month: string; count: number } {
  const counter = state.monthCount;
  if (counter === null || counter.month < month) return { month, count: 0 };
  return counter;
}

// ---------------------------------------------------------------------------------------------------
// decide

function checkStudent(state: ReferralState, value: unknown): string {
  const id = requireEntityId(value, 'studentId');
  if (state.studentId !== null && state.studentId !== id) {
    validationFailed(`command for student ${id} sent to the referrals of ${state.studentId}`, {
      field: 'studentId',
    });
  }
  return id;
}

function requireMonth(value: unknown): string {
  if (typeof value !== 'string' || !MONTH_KEY_PATTERN.test(value)) {
    validationFailed('month must be YYYY-MM', { field: 'month' });
  }
  return value;
}

const creditAmount = (value: unknown, field: string) =>
  requireIntegerInRange(value, field, 0, MAX_REFERRAL_CREDIT);

function creditEntry(
  state: ReferralState,
  studentId: string,
  input: { entryId: string; currency: string; amount: number; description: string; direction: 'in' | 'out' },
): JournalEntry {
  const credits = studentCredits(studentId);
  const entry = postEntry({
    entryId: input.entryId,
    description: input.description,
    currency: input.currency,
    lines:
      input.direction === 'in'
        ? [
            { account: PLATFORM_EXPENSE_PROMOTIONS, side: 'debit', amount: input.amount },
            { account: credits, side: 'credit', amount: input.amount },
          ]
        : [
            { account: credits, side: 'debit', amount: input.amount },
            { account: PLATFORM_EXPENSE_PROMOTIONS, side: 'credit', amount: input.amount },
          ],
  });
  assertOwnedAccountWithinLimit(
    state.credits.get(input.currency) ?? emptyTotals(),
    credits,
    input.currency,
    [entry],
    STEP_VOLUME_LIMIT,
  );
  return entry;
}

export function decideReferral(command: ReferralCommand, state: ReferralState): ReferralEvent[] {
  switch (command.type) {
    case 'LinkReferral': {
      const studentId = checkStudent(state, command.studentId);
      const actor = requireActor(command.actor);
      const linkedAt = toIso(parseInstant(command.linkedAt, 'linkedAt'));
      const referrerId = referrerOfCode(command.tenantId, command.code);
      if (referrerId === studentId) {
        referralRejected('self_referral', 'a student cannot use their own referral code', { field: 'code' });
      }
      if (state.referredBy !== null) {
        if (state.referredBy.referrerId === referrerId) return []; // the same link again: nothing changes
        referralRejected('already_referred', `student ${studentId} was already referred by someone else`);
      }
      if (!command.programActive) {
        referralRejected('program_inactive', 'the tenant has no referral programme running');
      }
      if (command.hasCompletedBooking) {
        referralRejected('not_new', `student ${studentId} has completed a booking already`);
      }
      return [
        {
          type: 'ReferralLinked',
          data: { studentId, referrerId, code: command.code, actor, linkedAt },
        },
      ];
    }

    case 'QualifyReferral': {
      const studentId = checkStudent(state, command.studentId);
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const bookingAmount = assertAmount(command.bookingAmount, { field: 'bookingAmount' });
      const currency = assertCurrency(command.currency);
      const refereeCredit = creditAmount(command.refereeCredit, 'refereeCredit');
      const referrerCredit = creditAmount(command.referrerCredit, 'referrerCredit');
      const referrerMonthlyCap = requireIntegerInRange(
        command.referrerMonthlyCap,
        'referrerMonthlyCap',
        0,
        MAX_REFERRAL_MONTHLY_CAP,
      );
      const month = requireMonth(command.month);
      const qualifiedAt = toIso(parseInstant(command.qualifiedAt, 'qualifiedAt'));
      const clawbackUntil = toIso(parseInstant(command.clawbackUntil, 'clawbackUntil'));
      const entryId = requireUuid(command.entryId, 'entryId');
      // Not referred, or rewarded already (one reward per referee): nothing to do.
      if (state.referredBy === null || state.qualification !== null) return [];
      const { referrerId } = state.referredBy;
      const entry =
        refereeCredit > 0
          ? creditEntry(state, studentId, {
              entryId,
              currency,
              amount: refereeCredit,
              direction: 'in',
              description: `referral credit: ${studentId} referred by ${referrerId}, booking ${bookingId}`,
            })
          : undefined;
      return [
        {
          type: 'ReferralQualified',
          data: {
            studentId,
            referrerId,
            bookingId,
            currency,
            bookingAmount,
            refereeCredit,
            referrerCredit,
            referrerMonthlyCap,
            month,
            qualifiedAt,
            clawbackUntil,
            ...(entry ? { entry } : {}),
          },
        },
      ];
    }

    case 'GrantReferrerReward': {
      const studentId = checkStudent(state, command.studentId);
      const refereeId = requireEntityId(command.refereeId, 'refereeId');
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const currency = assertCurrency(command.currency);
      const amount = requireIntegerInRange(command.amount, 'amount', 1, MAX_REFERRAL_CREDIT);
      const cap = requireIntegerInRange(command.cap, 'cap', 0, MAX_REFERRAL_MONTHLY_CAP);
      const month = requireMonth(command.month);
      const at = toIso(parseInstant(command.grantedAt, 'grantedAt'));
      const entryId = requireUuid(command.entryId, 'entryId');
      if (refereeId === studentId)
        validationFailed('a student cannot refer themselves', { field: 'refereeId' });
      if (state.rewards.has(refereeId)) return []; // one reward per referee
      const counter = countingMonth(state, month);
      if (counter.count >= cap || state.rewards.size >= MAX_REFERRAL_REWARDS) {
        return [
          {
            type: 'ReferralRewardCapped',
            data: {
              studentId,
              refereeId,
              bookingId,
              currency,
              amount,
              month: counter.month,
              cap,
              cappedAt: at,
            },
          },
        ];
      }
      const entry = creditEntry(state, studentId, {
        entryId,
        currency,
        amount,
        direction: 'in',
        description: `referral reward: ${studentId} referred ${refereeId}, booking ${bookingId}`,
      });
      return [
        {
          type: 'ReferralRewardGranted',
          data: {
            studentId,
            refereeId,
            bookingId,
            currency,
            amount,
            month: counter.month,
            monthCount: counter.count + 1,
            grantedAt: at,
            entry,
          },
        },
      ];
    }

    case 'ClawBackReferral': {
      const studentId = checkStudent(state, command.studentId);
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const refundedTotal = assertAmount(command.refundedTotal, { field: 'refundedTotal' });
      const refundedAtMs = parseInstant(command.refundedAt, 'refundedAt');
      const entryId = requireUuid(command.entryId, 'entryId');
      const q = state.qualification;
      // Only the qualifying booking, refunded in full, within the window, once.
      if (q === null || q.bookingId !== bookingId || q.clawedBack) return [];
      if (refundedTotal < q.bookingAmount || refundedAtMs > Date.parse(q.clawbackUntil)) return [];
      const recovered = Math.min(q.refereeCredit, creditsAvailable(state, q.currency));
      const entry =
        recovered > 0
          ? creditEntry(state, studentId, {
              entryId,
              currency: q.currency,
              amount: recovered,
              direction: 'out',
              description: `referral credit clawed back: booking ${bookingId} refunded`,
            })
          : undefined;
      return [
        {
          type: 'ReferralClawedBack',
          data: {
            studentId,
            referrerId: q.referrerId,
            bookingId,
            currency: q.currency,
            amount: q.refereeCredit,
            recovered,
            clawedBackAt: toIso(refundedAtMs),
            ...(entry ? { entry } : {}),
          },
        },
      ];
    }

    case 'ClawBackReferrerReward': {
      const studentId = checkStudent(state, command.studentId);
      const refereeId = requireEntityId(command.refereeId, 'refereeId');
      const bookingId = requireEntityId(command.bookingId, 'bookingId');
      const clawedBackAt = toIso(parseInstant(command.clawedBackAt, 'clawedBackAt'));
      const entryId = requireUuid(command.entryId, 'entryId');
      const reward = state.rewards.get(refereeId);
      if (reward === undefined || reward.status !== 'granted' || reward.bookingId !== bookingId) return [];
      const recovered = Math.min(reward.amount, creditsAvailable(state, reward.currency));
      const entry =
        recovered > 0
          ? creditEntry(state, studentId, {
              entryId,
              currency: reward.currency,
              amount: recovered,
              direction: 'out',
              description: `referral reward clawed back: ${refereeId}'s booking ${bookingId} refunded`,
            })
          : undefined;
      return [
        {
          type: 'ReferralRewardClawedBack',
          data: {
            studentId,
            refereeId,
            bookingId,
            currency: reward.currency,
            amount: reward.amount,
            recovered,
            clawedBackAt,
            ...(entry ? { entry } : {}),
          },
        },
      ];
    }
    default:
      throw new DomainError('validation_failed', 'unknown referral command');
  }
}

// ---------------------------------------------------------------------------------------------------
// evolve: asserts what decide promised (a violation is a bug or a corrupted stream).

function withCredits(
  state: ReferralState,
  studentId: string,
  entry: JournalEntry | undefined,
): ReferralState {
  if (entry === undefined) return state;
  const credits = new Map(state.credits);
  for (const p of entry.postings) {
    if (p.account !== studentCredits(studentId)) continue;
    const totals = applyEntryToAccount(
      credits.get(p.currency) ?? emptyTotals(),
      { ...entry, postings: [p] },
      p.account,
    );
    invariant(
      available(totals, 'credit') >= 0,
      () => `credits of ${studentId} below 0 after ${entry.entryId}`,
    );
    credits.set(p.currency, totals);
  }
  return { ...state, credits };
}

export function evolveReferral(state: ReferralState, event: ReferralEvent): ReferralState {
  const studentId = event.data.studentId;
  invariant(state.studentId === null || state.studentId === studentId, `referrals of ${studentId} mixed`);
  let next: ReferralState = { ...state, studentId, version: state.version + 1 };
  switch (event.type) {
    case 'ReferralLinked': {
      const e = event.data;
      invariant(state.referredBy === null, `${studentId} linked to a referrer twice`);
      invariant(e.referrerId !== studentId, `${studentId} referred themselves`);
      next = { ...next, referredBy: { referrerId: e.referrerId, code: e.code, linkedAt: e.linkedAt } };
      break;
    }
    case 'ReferralQualified': {
      const e = event.data;
      invariant(state.referredBy?.referrerId === e.referrerId, `${studentId} qualified without its link`);
      invariant(state.qualification === null, `${studentId} qualified twice`);
      next = {
        ...withCredits(next, studentId, e.entry),
        qualification: {
          referrerId: e.referrerId,
          bookingId: e.bookingId,
          currency: e.currency,
          bookingAmount: e.bookingAmount,
          refereeCredit: e.refereeCredit,
          referrerCredit: e.referrerCredit,
          qualifiedAt: e.qualifiedAt,
          clawbackUntil: e.clawbackUntil,
          clawedBack: false,
        },
      };
      break;
    }
    case 'ReferralRewardGranted':
    case 'ReferralRewardCapped': {
      const e = event.data;
      invariant(!state.rewards.has(e.refereeId), `two rewards of ${studentId} for referee ${e.refereeId}`);
      const granted = event.type === 'ReferralRewardGranted';
      if (granted) {
        const counter = countingMonth(state, e.month);
        invariant(
          counter.month === e.month && event.data.monthCount === counter.count + 1,
          `reward of ${studentId} counted as ${event.data.monthCount} in ${e.month}, counter ${JSON.stringify(state.monthCount)}`,
        );
        next = {
          ...withCredits(next, studentId, event.data.entry),
          monthCount: { month: e.month, count: counter.count + 1 },
        };
      }
      next = {
        ...next,
        rewards: state.rewards.set(e.refereeId, {
          bookingId: e.bookingId,
          currency: e.currency,
          amount: e.amount,
          month: e.month,
          status: granted ? 'granted' : 'capped',
        }),
      };
      break;
    }
    case 'ReferralClawedBack': {
      const q = state.qualification;
      invariant(
        q !== null && q.bookingId === event.data.bookingId && !q.clawedBack,
        `clawback of ${studentId} without its qualification`,
      );
      next = { ...withCredits(next, studentId, event.data.entry), qualification: { ...q, clawedBack: true } };
      break;
    }
    case 'ReferralRewardClawedBack': {
      const reward = state.rewards.get(event.data.refereeId);
      invariant(reward?.status === 'granted', `clawback of a reward of ${studentId} not granted`);
      next = {
        ...withCredits(next, studentId, event.data.entry),
        rewards: state.rewards.set(event.data.refereeId, { ...reward, status: 'clawed_back' }),
      };
      break;
    }
  }
  return next;
}

export const referralDecider: Decider<ReferralCommand, ReferralEvent, ReferralState> = {
  initialState: initialReferralState,
  decide: decideReferral,
  evolve: evolveReferral,
};
