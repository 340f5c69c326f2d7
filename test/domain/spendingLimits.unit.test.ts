import { describe, expect, it } from 'vitest';
import { calendarPeriods, isoWeek, knownTimeZone } from '../../src/domain/calendar.js';
import type { DomainError } from '../../src/domain/errors.js';
import { NO_LIMITS, type SpendingLimits } from '../../src/domain/spendingLimits.js';
import {
  type CreditTopUp,
  type PlaceWalletHold,
  type ReleaseWalletHold,
  type SetSpendingLimits,
  type WalletCommand,
  walletDecider,
} from '../../src/domain/wallet.js';
import { uuid } from './fixtures.js';
import { history, spec } from './spec.js';

const S = 's1';
const ms = (iso: string) => Date.parse(iso);

describe('calendar periods in a time zone', () => {
  it('ISO weeks: Monday starts the week, the week belongs to the year of its Thursday', () => {
    expect(isoWeek(2026, 12, 4)).toEqual({ year: 2026, week: 49 });
    expect(isoWeek(2026, 12, 28)).toEqual({ year: 2026, week: 53 });
    expect(isoWeek(2027, 1, 3)).toEqual({ year: 2026, week: 53 });
    expect(isoWeek(2027, 1, 4)).toEqual({ year: 2027, week: 1 });
    expect(isoWeek(2024, 12, 30)).toEqual({ year: 2025, week: 1 });
    expect(isoWeek(2021, 1, 3)).toEqual({ year: 2020, week: 53 });
  });

  it('the local day, week and month of an instant', () => {
    // 23:30 UTC on New Year's Eve is already 2027 in Berlin and still 2026 in Los Angeles.
    const t = ms('2026-12-31T23:30:00Z');
    expect(calendarPeriods(t, 'UTC')).toEqual({ day: '2026-12-31', week: '2026-W53', month: '2026-12' });
    expect(calendarPeriods(t, 'Europe/Berlin')).toEqual({
      day: '2027-01-01',
      week: '2026-W53',
      month: '2027-01',
    });
    expect(calendarPeriods(ms('2026-12-06T22:59:59Z'), 'Europe/Berlin').week).toBe('2026-W49'); // Sunday 23:59
    expect(calendarPeriods(ms('2026-12-06T23:00:00Z'), 'Europe/Berlin').week).toBe('2026-W50'); // Monday 00:00
    // Across a daylight-saving change (Berlin, 29 March 2026: 02:00 -> 03:00).
    expect(calendarPeriods(ms('2026-03-29T21:59:00Z'), 'Europe/Berlin').day).toBe('2026-03-29');
    expect(calendarPeriods(ms('2026-03-29T22:00:00Z'), 'Europe/Berlin').day).toBe('2026-03-30');
    expect(calendarPeriods(ms('2026-06-30T12:30:00Z'), 'Pacific/Kiritimati').month).toBe('2026-07');
  });

  it('time zones: IANA names the runtime knows, nothing else', () => {
    expect(knownTimeZone('Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(knownTimeZone('UTC')).toBe('UTC');
    for (const bad of ['Mars/Base', '+02:00', 'EST', 'utc', 'Europe/Berlin ', '', null, 7]) {
      expect(knownTimeZone(bad), String(bad)).toBeNull();
    }
  });
});

const topUp = (amount: number): CreditTopUp => ({
  type: 'CreditTopUp',
  studentId: S,
  topUpId: 'tu1',
  paymentIntentId: 'pi_1',
  amount,
  currency: 'usd',
  entryId: uuid('topup'),
});
const limitsOf = (limits: Partial<SpendingLimits>, currency = 'usd'): SetSpendingLimits => ({
  type: 'SetSpendingLimits',
  studentId: S,
  currency,
  limits: { ...NO_LIMITS, ...limits },
  actor: { id: 'parent', role: 'tenant_admin' },
  setAt: '2026-12-01T08:00:00.000Z',
  guardianLinked: false,
});
const byStudent = (limits: Partial<SpendingLimits>, guardianLinked: boolean): SetSpendingLimits => ({
  ...limitsOf(limits),
  actor: { id: S, role: 'student' },
  guardianLinked,
});
const hold = (bookingId: string, amount: number, placedAt: string, timeZone = 'UTC'): PlaceWalletHold => ({
  type: 'PlaceWalletHold',
  studentId: S,
  holdId: uuid(`hold-${bookingId}`),
  bookingId,
  tutorId: 't1',
  amount,
  currency: 'usd',
  scheduledAt: '2027-02-01T10:00:00.000Z',
  placedAt,
  timeZone,
  entryId: uuid(`hold-entry-${bookingId}`),
});
const release = (bookingId: string, fee = 0): ReleaseWalletHold => ({
  type: 'ReleaseWalletHold',
  studentId: S,
  holdId: uuid(`hold-${bookingId}`),
  reason: 'cancelled',
  fee,
  tutorShare: fee - Math.floor(fee / 5),
  commission: Math.floor(fee / 5),
  entryId: uuid(`release-${bookingId}`),
});
const capture = (bookingId: string, captured: number): WalletCommand => ({
  type: 'CaptureWalletHold',
  studentId: S,
  holdId: uuid(`hold-${bookingId}`),
  captured,
  tutorShare: captured - Math.floor(captured / 5),
  commission: Math.floor(captured / 5),
  entryId: uuid(`capture-${bookingId}`),
});

const FRI = '2026-12-04T10:00:00.000Z';
const FRI_LATE = '2026-12-04T23:00:00.000Z';
const SAT = '2026-12-05T10:00:00.000Z';
const NEXT_MON = '2026-12-07T10:00:00.000Z';
const JAN = '2027-01-04T10:00:00.000Z';

const given = (...commands: WalletCommand[]) => history(walletDecider, [topUp(1_000_000), ...commands]);

describe('wallet: spending limits', () => {
  it('SetSpendingLimits records the limits (no postings); the same limits again append nothing', () => {
    spec(walletDecider)
      .given(given())
      .when(limitsOf({ perDay: 5000 }))
      .thenEmits([
        {
          type: 'WalletSpendingLimitsSet',
          data: {
            studentId: S,
            currency: 'usd',
            limits: { perBooking: null, perDay: 5000, perWeek: null, perMonth: null },
            actor: { id: 'parent', role: 'tenant_admin' },
            setAt: '2026-12-01T08:00:00.000Z',
          },
        },
      ]);
    spec(walletDecider)
      .given(given(limitsOf({ perDay: 5000 })))
      .when(limitsOf({ perDay: 5000 }))
      .thenEmits([]);
    // No limits on a fresh wallet is what it has: nothing appended, no currency fixed.
    spec(walletDecider).given([]).when(limitsOf({})).thenEmits([]);
  });

  it('limits fix the currency of a wallet without money, and must be in the wallet currency', () => {
    const events = history(walletDecider, [limitsOf({ perDay: 100 }, 'eur')]);
    spec(walletDecider).given(events).when(topUp(500)).thenFails('currency_mismatch');
    spec(walletDecider)
      .given(given())
      .when(limitsOf({ perDay: 100 }, 'eur'))
      .thenFails('currency_mismatch');
  });

  it('refuses bad limits', () => {
    for (const bad of [0, -1, 1.5, '100', Number.MAX_SAFE_INTEGER + 1]) {
      spec(walletDecider)
        .given(given())
        .when({ ...limitsOf({}), limits: { ...NO_LIMITS, perWeek: bad as number } })
        .thenFails('validation_failed', /limits\.perWeek/);
    }
    spec(walletDecider)
      .given(given())
      .when({ ...limitsOf({}), limits: { ...NO_LIMITS, perYear: 5 } as SpendingLimits })
      .thenFails('validation_failed', /unknown limits: perYear/);
  });

  it('every hold records the periods it counts in, limits or not', () => {
    const [event] = spec(walletDecider)
      .given(given())
      .when(hold('b1', 100, FRI_LATE, 'Europe/Berlin'))
      .thenEmits(() => {});
    expect(event!.data).toMatchObject({
      spendingPeriods: { day: '2026-12-05', week: '2026-W49', month: '2026-12' },
    });
  });

  it('per booking: a booking above it is refused, one at it is held', () => {
    const error = spec(walletDecider)
      .given(given(limitsOf({ perBooking: 3000 })))
      .when(hold('b1', 3001, FRI))
      .thenFails('spending_limit_exceeded', /limit per booking is 30\.00 USD/);
    expect(error.details).toEqual({
      limit: 'perBooking',
      limitAmount: 3000,
      remaining: 3000,
      requested: 3001,
      currency: 'usd',
      exceeded: ['perBooking'],
    });
    spec(walletDecider)
      .given(given(limitsOf({ perBooking: 3000 })))
      .when(hold('b1', 3000, FRI))
      .thenEmits(() => {});
  });

  it('per day: holds of the day add up, the refusal says what is left; the next day starts afresh', () => {
    const day = given(limitsOf({ perDay: 5000 }), hold('b1', 3000, FRI));
    const error = spec(walletDecider)
      .given(day)
      .when(hold('b2', 2001, FRI_LATE))
      .thenFails('spending_limit_exceeded', /perDay is 50\.00 USD, 20\.00 USD left in 2026-12-04/);
    expect(error.details).toMatchObject({
      limit: 'perDay',
      limitAmount: 5000,
      spent: 3000,
      remaining: 2000,
      period: '2026-12-04',
      requested: 2001,
    });
    spec(walletDecider)
      .given(day)
      .when(hold('b2', 2000, FRI_LATE))
      .thenEmits(() => {});
    spec(walletDecider)
      .given(day)
      .when(hold('b2', 5000, SAT))
      .thenEmits(() => {});
  });

  it('a release without a fee gives the room back; a late-cancellation fee and a capture keep theirs', () => {
    const limits = limitsOf({ perDay: 5000 });
    spec(walletDecider)
      .given(given(limits, hold('b1', 5000, FRI), release('b1')))
      .when(hold('b2', 5000, FRI))
      .thenEmits(() => {});
    const fee = given(limits, hold('b1', 5000, FRI), release('b1', 2500));
    spec(walletDecider)
      .given(fee)
      .when(hold('b2', 2501, FRI))
      .thenFails('spending_limit_exceeded');
    spec(walletDecider)
      .given(fee)
      .when(hold('b2', 2500, FRI))
      .thenEmits(() => {});
    const partial = given(limits, hold('b1', 5000, FRI), capture('b1', 4000));
    spec(walletDecider)
      .given(partial)
      .when(hold('b2', 1001, FRI))
      .thenFails('spending_limit_exceeded');
    spec(walletDecider)
      .given(partial)
      .when(hold('b2', 1000, FRI))
      .thenEmits(() => {});
  });

  it('per week and per month across days; the first limit exceeded is named, every one listed', () => {
    const limits = limitsOf({ perDay: 4000, perWeek: 6000, perMonth: 9000 });
    const week = given(limits, hold('b1', 4000, FRI));
    const error = spec(walletDecider)
      .given(week)
      .when(hold('b2', 4000, SAT))
      .thenFails('spending_limit_exceeded', /perWeek/);
    expect(error.details).toMatchObject({ limit: 'perWeek', remaining: 2000, period: '2026-W49' });
    const month = given(limits, hold('b1', 4000, FRI), hold('b2', 2000, SAT), hold('b3', 3000, NEXT_MON));
    const over = spec(walletDecider)
      .given(month)
      .when(hold('b4', 4000, NEXT_MON))
      .thenFails('spending_limit_exceeded', /perDay/) as DomainError;
    expect(over.details.exceeded).toEqual(['perDay', 'perWeek', 'perMonth']);
    spec(walletDecider)
      .given(month)
      .when(hold('b4', 4000, JAN))
      .thenEmits(() => {});
  });

  it('a release of an earlier day gives back to the week it shares with today, not to today', () => {
    const limits = limitsOf({ perDay: 4000, perWeek: 6000 });
    const events = given(limits, hold('b1', 4000, FRI), hold('b2', 2000, SAT), release('b1'));
    // Saturday: 2,000 spent today, the week has 4,000 back.
    spec(walletDecider)
      .given(events)
      .when(hold('b3', 2001, SAT))
      .thenFails('spending_limit_exceeded', /perDay/);
    spec(walletDecider)
      .given(events)
      .when(hold('b3', 2000, SAT))
      .thenEmits(() => {});
  });

  it('a clock behind the wallet counts into the later period it has already seen, never a fresh one', () => {
    const events = given(limitsOf({ perDay: 5000 }), hold('b1', 5000, SAT));
    spec(walletDecider)
      .given(events)
      .when(hold('b2', 1, FRI))
      .thenFails('spending_limit_exceeded');
  });

  it('lowering a limit below what was spent leaves nothing for the period', () => {
    const events = given(limitsOf({ perDay: 5000 }), hold('b1', 4000, FRI), limitsOf({ perDay: 3000 }));
    const error = spec(walletDecider)
      .given(events)
      .when(hold('b2', 1, FRI))
      .thenFails('spending_limit_exceeded');
    expect(error.details).toMatchObject({ remaining: 0, spent: 4000 });
  });

  it('with a guardian linked, the student may lower and add limits but not raise or remove one', () => {
    const events = given(limitsOf({ perDay: 5000, perWeek: 9000 }));
    for (const raise of [{ perDay: 5001, perWeek: 9000 }, { perWeek: 9000 }, { perDay: 5000 }]) {
      const error = spec(walletDecider).given(events).when(byStudent(raise, true)).thenFails('forbidden');
      expect(error.message).toMatch(/only they may raise its limits/);
    }
    spec(walletDecider)
      .given(events)
      .when(byStudent({ perDay: 4000, perWeek: 9000, perMonth: 20_000 }, true))
      .thenEmits(() => {});
    // Without a guardian the student decides; a guardian (or a tenant admin) may always raise.
    spec(walletDecider)
      .given(events)
      .when(byStudent({}, false))
      .thenEmits(() => {});
    spec(walletDecider)
      .given(events)
      .when({ ...limitsOf({}), actor: { id: 'grd_1', role: 'guardian' }, guardianLinked: true })
      .thenEmits(() => {});
  });

  it('refuses a placement without a known time zone or instant', () => {
    spec(walletDecider)
      .given(given())
      .when(hold('b1', 1, FRI, 'Nowhere/Else'))
      .thenFails('validation_failed', /timeZone/);
    spec(walletDecider)
      .given(given())
      .when(hold('b1', 1, 'yesterday'))
      .thenFails('validation_failed', /placedAt/);
  });
});
