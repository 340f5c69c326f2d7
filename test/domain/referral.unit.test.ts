import { describe, expect, it } from 'vitest';
import { PLATFORM_EXPENSE_PROMOTIONS, studentCredits } from '../../src/domain/accounts.js';
import { DomainError } from '../../src/domain/errors.js';
import { deterministicId } from '../../src/domain/ids.js';
import {
  creditsAvailable,
  type ReferralCommand,
  referralCodeOf,
  referralDecider,
  referrerOfCode,
} from '../../src/domain/referral.js';
import { foldEvents, history, spec } from './spec.js';

const T = 'acme';
const STUDENT = { id: 'new_1', role: 'student' };
const id = (n: string) => deterministicId('test-entry', n);

const link = (studentId: string, code: string, over: Partial<ReferralCommand> = {}): ReferralCommand =>
  ({
    type: 'LinkReferral',
    tenantId: T,
    studentId,
    code,
    actor: STUDENT,
    linkedAt: '2026-12-01T10:00:00.000Z',
    hasCompletedBooking: false,
    programActive: true,
    ...over,
  }) as ReferralCommand;

const qualify = (
  studentId: string,
  bookingId: string,
  over: Partial<ReferralCommand> = {},
): ReferralCommand =>
  ({
    type: 'QualifyReferral',
    studentId,
    bookingId,
    bookingAmount: 5_000,
    currency: 'usd',
    refereeCredit: 500,
    referrerCredit: 1_000,
    referrerMonthlyCap: 2,
    month: '2026-12',
    qualifiedAt: '2026-12-02T10:00:00.000Z',
    clawbackUntil: '2027-01-01T10:00:00.000Z',
    entryId: id(`q-${studentId}-${bookingId}`),
    ...over,
  }) as ReferralCommand;

const grant = (referrerId: string, refereeId: string, over: Partial<ReferralCommand> = {}): ReferralCommand =>
  ({
    type: 'GrantReferrerReward',
    studentId: referrerId,
    refereeId,
    bookingId: `bk_${refereeId}`,
    currency: 'usd',
    amount: 1_000,
    month: '2026-12',
    cap: 2,
    grantedAt: '2026-12-02T10:00:00.000Z',
    entryId: id(`g-${refereeId}`),
    ...over,
  }) as ReferralCommand;

const clawBack = (
  studentId: string,
  bookingId: string,
  over: Partial<ReferralCommand> = {},
): ReferralCommand =>
  ({
    type: 'ClawBackReferral',
    studentId,
    bookingId,
    refundedTotal: 5_000,
    refundedAt: '2026-12-10T10:00:00.000Z',
    entryId: id(`c-${bookingId}`),
    ...over,
  }) as ReferralCommand;

const REF_CODE = referralCodeOf(T, 'ref_1');

describe('referral codes', () => {
  it('name their referrer with a check: a mistyped or foreign code is unknown_code', () => {
    expect(REF_CODE).toMatch(/^ref_1-[0-9A-F]{6}$/);
    expect(referrerOfCode(T, REF_CODE)).toBe('ref_1');
    // Student ids may contain dashes: the check is after the last one.
    expect(referrerOfCode(T, referralCodeOf(T, 'a-b-c'))).toBe('a-b-c');
    const reason = (code: unknown) => {
      try {
        referrerOfCode(T, code);
      } catch (error) {
        return error instanceof DomainError ? `${error.code}:${String(error.details.reason)}` : 'other';
      }
      return 'accepted';
    };
    for (const bad of [
      'ref_1',
      `ref_2${REF_CODE.slice(5)}`,
      REF_CODE.toLowerCase(),
      `${REF_CODE}0`,
      referralCodeOf('other', 'ref_1'),
      '',
      42,
    ]) {
      expect(reason(bad), String(bad)).toBe('referral_rejected:unknown_code');
    }
  });
});

describe('referral decider', () => {
  it('links a new student once; the same code again changes nothing', () => {
    spec(referralDecider)
      .given([])
      .when(link('new_1', REF_CODE))
      .thenEmits([
        {
          type: 'ReferralLinked',
          data: {
            studentId: 'new_1',
            referrerId: 'ref_1',
            code: REF_CODE,
            actor: STUDENT,
            linkedAt: '2026-12-01T10:00:00.000Z',
          },
        },
      ]);
    const linked = history(referralDecider, [link('new_1', REF_CODE)]);
    spec(referralDecider).given(linked).when(link('new_1', REF_CODE)).thenEmits([]);
    const other = spec(referralDecider)
      .given(linked)
      .when(link('new_1', referralCodeOf(T, 'ref_2')))
      .thenFails('referral_rejected');
    expect(other.details.reason).toBe('already_referred');
  });

  it('refuses self-referral, a student with a completed booking and a tenant without a programme', () => {
    const reasons = [
      link('ref_1', REF_CODE),
      link('new_1', REF_CODE, { hasCompletedBooking: true }),
      link('new_1', REF_CODE, { programActive: false }),
      link('new_1', 'nope-ABCDEF'),
    ].map(
      (command) =>
        spec(referralDecider).given([]).when(command).thenFails('referral_rejected').details.reason,
    );
    expect(reasons).toEqual(['self_referral', 'not_new', 'program_inactive', 'unknown_code']);
  });

  it('qualifies once at the first paid capture: Dr promotions, Cr the referee credits', () => {
    const linked = history(referralDecider, [link('new_1', REF_CODE)]);
    // Not referred: nothing.
    spec(referralDecider).given([]).when(qualify('new_1', 'bk_1')).thenEmits([]);
    const [event] = spec(referralDecider)
      .given(linked)
      .when(qualify('new_1', 'bk_1'))
      .thenEmits((events) => {
        expect(events).toHaveLength(1);
        expect(events[0]?.type).toBe('ReferralQualified');
      });
    expect(event?.data).toMatchObject({ referrerId: 'ref_1', refereeCredit: 500, referrerCredit: 1_000 });
    const postings = (event!.data as { entry: { postings: unknown[] } }).entry.postings;
    expect(postings).toEqual([
      { account: PLATFORM_EXPENSE_PROMOTIONS, side: 'debit', effect: 'post', amount: 500, currency: 'usd' },
      { account: studentCredits('new_1'), side: 'credit', effect: 'post', amount: 500, currency: 'usd' },
    ]);
    const qualified = [...linked, event!];
    // One reward per referee: a second booking, or the same again, changes nothing.
    spec(referralDecider).given(qualified).when(qualify('new_1', 'bk_2')).thenEmits([]);
    spec(referralDecider).given(qualified).when(qualify('new_1', 'bk_1')).thenEmits([]);
    expect(creditsAvailable(foldEvents(referralDecider, qualified), 'usd')).toBe(500);
    // A programme paying the referee nothing still records the qualification (the referrer's trigger).
    spec(referralDecider)
      .given(linked)
      .when(qualify('new_1', 'bk_1', { refereeCredit: 0 }))
      .thenEmits((events) => expect(events[0]?.data).not.toHaveProperty('entry'));
  });

  it('grants the referrer one reward per referee, at most the monthly cap, and records the rest as capped', () => {
    const two = history(referralDecider, [grant('ref_1', 'a'), grant('ref_1', 'b')]);
    expect(two.map((e) => [e.type, (e.data as { monthCount?: number }).monthCount])).toEqual([
      ['ReferralRewardGranted', 1],
      ['ReferralRewardGranted', 2],
    ]);
    spec(referralDecider).given(two).when(grant('ref_1', 'a')).thenEmits([]);
    spec(referralDecider)
      .given(two)
      .when(grant('ref_1', 'c'))
      .thenEmits([
        {
          type: 'ReferralRewardCapped',
          data: {
            studentId: 'ref_1',
            refereeId: 'c',
            bookingId: 'bk_c',
            currency: 'usd',
            amount: 1_000,
            month: '2026-12',
            cap: 2,
            cappedAt: '2026-12-02T10:00:00.000Z',
          },
        },
      ]);
    // A capped referee stays capped: the answer is final even in a later month.
    const capped = history(referralDecider, [grant('ref_1', 'a'), grant('ref_1', 'b'), grant('ref_1', 'c')]);
    spec(referralDecider)
      .given(capped)
      .when(grant('ref_1', 'c', { month: '2027-01' }))
      .thenEmits([]);
    // A new month has its own room; an older month counts into the later one the counter has.
    spec(referralDecider)
      .given(capped)
      .when(grant('ref_1', 'd', { month: '2027-01' }))
      .thenEmits((events) =>
        expect(events[0]).toMatchObject({ type: 'ReferralRewardGranted', data: { monthCount: 1 } }),
      );
    const january = history(referralDecider, [grant('ref_1', 'a', { month: '2027-01' })]);
    spec(referralDecider)
      .given(january)
      .when(grant('ref_1', 'b', { month: '2026-12' }))
      .thenEmits((events) =>
        expect(events[0]).toMatchObject({
          type: 'ReferralRewardGranted',
          data: { month: '2027-01', monthCount: 2 },
        }),
      );
    spec(referralDecider).given([]).when(grant('ref_1', 'ref_1')).thenFails('validation_failed');
    spec(referralDecider)
      .given([])
      .when(grant('ref_1', 'a', { cap: 0 }))
      .thenEmits((events) => {
        expect(events[0]?.type).toBe('ReferralRewardCapped');
      });
  });

  it('claws back only a full refund of the qualifying booking within the window, once', () => {
    const qualified = history(referralDecider, [link('new_1', REF_CODE), qualify('new_1', 'bk_1')]);
    spec(referralDecider)
      .given(qualified)
      .when(clawBack('new_1', 'bk_1', { refundedTotal: 4_999 }))
      .thenEmits([]);
    spec(referralDecider).given(qualified).when(clawBack('new_1', 'bk_2')).thenEmits([]);
    spec(referralDecider)
      .given(qualified)
      .when(clawBack('new_1', 'bk_1', { refundedAt: '2027-01-01T10:00:00.001Z' }))
      .thenEmits([]);
    const [event] = spec(referralDecider)
      .given(qualified)
      .when(clawBack('new_1', 'bk_1'))
      .thenEmits((events) =>
        expect(events[0]).toMatchObject({
          type: 'ReferralClawedBack',
          data: { amount: 500, recovered: 500 },
        }),
      );
    const clawed = [...qualified, event!];
    expect(creditsAvailable(foldEvents(referralDecider, clawed), 'usd')).toBe(0);
    spec(referralDecider).given(clawed).when(clawBack('new_1', 'bk_1')).thenEmits([]);
  });

  it("claws back the referrer's reward for that referee, never a capped one", () => {
    const granted = history(referralDecider, [grant('ref_1', 'a'), grant('ref_1', 'b', { cap: 1 })]);
    const back = (refereeId: string): ReferralCommand => ({
      type: 'ClawBackReferrerReward',
      studentId: 'ref_1',
      refereeId,
      bookingId: `bk_${refereeId}`,
      clawedBackAt: '2026-12-10T10:00:00.000Z',
      entryId: id(`cb-${refereeId}`),
    });
    spec(referralDecider).given(granted).when(back('b')).thenEmits([]);
    spec(referralDecider).given(granted).when(back('zzz')).thenEmits([]);
    const [event] = spec(referralDecider)
      .given(granted)
      .when(back('a'))
      .thenEmits((events) =>
        expect(events[0]).toMatchObject({
          type: 'ReferralRewardClawedBack',
          data: { refereeId: 'a', amount: 1_000, recovered: 1_000 },
        }),
      );
    spec(referralDecider)
      .given([...granted, event!])
      .when(back('a'))
      .thenEmits([]);
    // A clawback does not give the month's room back: the cap counts rewards granted.
    spec(referralDecider)
      .given([...granted, event!])
      .when(grant('ref_1', 'c', { cap: 1 }))
      .thenEmits((events) => expect(events[0]?.type).toBe('ReferralRewardCapped'));
  });

  it('refuses commands for another student and bad fields', () => {
    const linked = history(referralDecider, [link('new_1', REF_CODE)]);
    spec(referralDecider).given(linked).when(qualify('new_2', 'bk_1')).thenFails('validation_failed');
    spec(referralDecider)
      .given(linked)
      .when(qualify('new_1', 'bk_1', { refereeCredit: -1 }))
      .thenFails('validation_failed');
    spec(referralDecider)
      .given(linked)
      .when(qualify('new_1', 'bk_1', { month: '2026-13-01' }))
      .thenFails('validation_failed');
    spec(referralDecider)
      .given([])
      .when(grant('ref_1', 'a', { amount: 0 }))
      .thenFails('validation_failed');
  });
});
