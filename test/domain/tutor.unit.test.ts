import { describe, expect, it } from 'vitest';
import {
  type AdjustTutor,
  type ClearEarnings,
  type PlacePayoutHold,
  type RecordEarnings,
  type ReverseEarnings,
  type TutorCommand,
  tutorAvailable,
  tutorDecider,
} from '../../src/domain/tutor.js';
import { BAD_AMOUNTS, FINANCE_ADMIN, uuid } from './fixtures.js';
import { entryOf, foldEvents, history, spec } from './spec.js';

const T = 't1';
const EARNED = '2026-03-10T11:00:00.000Z';
const CLEARABLE = '2026-03-17T11:00:00.000Z';

const record = (amount: number, bookingId = 'b1', currency = 'usd'): RecordEarnings => ({
  type: 'RecordEarnings',
  tutorId: T,
  bookingId,
  amount,
  currency,
  source: 'completion',
  earnedAt: EARNED,
  clearableAt: CLEARABLE,
});
const clear = (bookingId = 'b1', now = CLEARABLE): ClearEarnings => ({
  type: 'ClearEarnings',
  tutorId: T,
  bookingId,
  now,
  entryId: uuid(`clear-${bookingId}`),
});
const reverse = (refundId: string, amount: number, bookingId = 'b1'): ReverseEarnings => ({
  type: 'ReverseEarnings',
  tutorId: T,
  bookingId,
  refundId,
  amount,
  currency: 'usd',
  entryId: uuid(`reverse-${refundId}`),
});
const payoutHold = (amount: number, payoutId = 'p1', payoutMin = 1000): PlacePayoutHold => ({
  type: 'PlacePayoutHold',
  tutorId: T,
  payoutId,
  holdId: uuid(`payout-hold-${payoutId}`),
  amount,
  currency: 'usd',
  payoutMin,
  entryId: uuid(`payout-${payoutId}`),
});
const postPayout = (payoutId = 'p1'): TutorCommand => ({
  type: 'PostPayoutHold',
  tutorId: T,
  payoutId,
  entryId: uuid(`post-${payoutId}`),
});
const releasePayout = (payoutId = 'p1'): TutorCommand => ({
  type: 'ReleasePayoutHold',
  tutorId: T,
  payoutId,
  reason: 'account closed',
  entryId: uuid(`release-${payoutId}`),
});
const adjust = (
  account: 'available' | 'receivable',
  direction: 'debit' | 'credit',
  amount: number,
  adjustmentId = 'adj1',
): AdjustTutor => ({
  type: 'AdjustTutor',
  tutorId: T,
  adjustmentId,
  account,
  direction,
  amount,
  currency: 'usd',
  reason: 'correction of a mis-keyed rate',
  actor: FINANCE_ADMIN,
  entryId: uuid(`adj-${adjustmentId}`),
});

const recorded = () => history(tutorDecider, [record(3200)]);
const cleared = () => history(tutorDecider, [record(3200), clear()]);
const withHold = () => history(tutorDecider, [record(3200), clear(), payoutHold(2000)]);
const p = (account: string, side: 'debit' | 'credit', amount: number, effect = 'post') => ({
  account,
  side,
  effect,
  amount,
  currency: 'usd',
});

describe('tutor: RecordEarnings', () => {
  it('records pending earnings with their clearing time (no entry: the wallet capture credited pending)', () => {
    spec(tutorDecider)
      .given([])
      .when(record(3200))
      .thenEmits([
        {
          type: 'TutorEarningsRecorded',
          data: {
            tutorId: T,
            bookingId: 'b1',
            amount: 3200,
            currency: 'usd',
            source: 'completion',
            earnedAt: EARNED,
            clearableAt: CLEARABLE,
          },
        },
      ]);
  });
  it.each(BAD_AMOUNTS)('rejects a %s amount', (_why, amount) => {
    spec(tutorDecider)
      .given([])
      .when(record(amount as number))
      .thenFails('validation_failed');
  });
  it('rejects recording a booking twice, another currency, a bad source and a clearing time before earning', () => {
    spec(tutorDecider).given(recorded()).when(record(3200)).thenFails('invalid_state');
    spec(tutorDecider)
      .given(recorded())
      .when(record(100, 'b2', 'eur'))
      .thenFails('currency_mismatch');
    spec(tutorDecider)
      .given([])
      .when({ ...record(100), source: 'gift' as 'completion' })
      .thenFails('validation_failed');
    spec(tutorDecider)
      .given([])
      .when({ ...record(100), clearableAt: '2026-03-01T00:00:00.000Z' })
      .thenFails('validation_failed');
  });
});

describe('tutor: ClearEarnings', () => {
  it('moves the earnings from pending to available after the hold period', () => {
    const [event] = spec(tutorDecider)
      .given(recorded())
      .when(clear())
      .thenEmits(() => {});
    expect(event).toMatchObject({ type: 'TutorEarningsCleared', data: { amount: 3200, recovered: 0 } });
    expect(entryOf(event)?.postings).toEqual([
      p('tutor:t1:earnings:pending', 'debit', 3200),
      p('tutor:t1:earnings:available', 'credit', 3200),
    ]);
    const state = foldEvents(tutorDecider, [...recorded(), event!]);
    expect(tutorAvailable(state)).toBe(3200);
    expect(state.pending).toBe(0);
  });
  it('recovers an outstanding receivable first', () => {
    // b1 cleared, then refunded 1000 -> receivable 1000; b2's clearing pays it back.
    const events = history(tutorDecider, [record(3200), clear(), reverse('r1', 1000), record(500, 'b2')]);
    const [event] = spec(tutorDecider)
      .given(events)
      .when(clear('b2'))
      .thenEmits(() => {});
    expect(event!.data).toMatchObject({ amount: 500, recovered: 500 });
    expect(entryOf(event)?.postings).toEqual([
      p('tutor:t1:earnings:pending', 'debit', 500),
      p('tutor:t1:receivable', 'credit', 500),
    ]);
    const state = foldEvents(tutorDecider, [...events, event!]);
    expect(state.receivable).toBe(500);
    expect(tutorAvailable(state)).toBe(3200);
  });
  it('clears only what refunds left, and with nothing left clears without an entry', () => {
    const partly = history(tutorDecider, [record(3200), reverse('r1', 1200)]);
    spec(tutorDecider)
      .given(partly)
      .when(clear())
      .thenEmits((e) => expect(e[0]!.data).toMatchObject({ amount: 2000 }));
    const fully = history(tutorDecider, [record(3200), reverse('r1', 3200)]);
    spec(tutorDecider)
      .given(fully)
      .when(clear())
      .thenEmits((e) => {
        expect(e[0]!.data).toMatchObject({ amount: 0, recovered: 0 });
        expect('entry' in e[0]!.data).toBe(false);
      });
  });
  it('rejects clearing early, twice, or unknown earnings', () => {
    spec(tutorDecider)
      .given(recorded())
      .when(clear('b1', '2026-03-17T10:59:59.999Z'))
      .thenFails('invalid_state');
    spec(tutorDecider).given(cleared()).when(clear()).thenFails('invalid_state');
    spec(tutorDecider).given(recorded()).when(clear('b9')).thenFails('not_found');
    spec(tutorDecider).given(recorded()).when(clear('b1', '17 March')).thenFails('validation_failed');
    spec(tutorDecider)
      .given(recorded())
      .when({ ...clear(), entryId: 'x' })
      .thenFails('validation_failed');
  });
});

describe('tutor: ReverseEarnings', () => {
  it('reverses from pending while the earnings are pending', () => {
    const [event] = spec(tutorDecider)
      .given(recorded())
      .when(reverse('r1', 800))
      .thenEmits(() => {});
    expect(event!.data).toMatchObject({ from: 'pending', amount: 800 });
    expect(entryOf(event)?.postings).toEqual([
      p('tutor:t1:earnings:pending', 'debit', 800),
      p('clearing:refund:r1', 'credit', 800),
    ]);
  });
  it('turns an already cleared share into a receivable', () => {
    const [event] = spec(tutorDecider)
      .given(cleared())
      .when(reverse('r1', 800))
      .thenEmits(() => {});
    expect(event!.data).toMatchObject({ from: 'cleared' });
    expect(entryOf(event)?.postings).toEqual([
      p('tutor:t1:receivable', 'debit', 800),
      p('clearing:refund:r1', 'credit', 800),
    ]);
    const state = foldEvents(tutorDecider, [...cleared(), event!]);
    expect(state.receivable).toBe(800);
    expect(tutorAvailable(state)).toBe(3200);
  });
  it('rejects reversing more than was earned, a reused refund, unknown earnings and another currency', () => {
    spec(tutorDecider).given(recorded()).when(reverse('r1', 3201)).thenFails('limit_exceeded');
    const once = history(tutorDecider, [record(3200), reverse('r1', 3000)]);
    spec(tutorDecider).given(once).when(reverse('r2', 201)).thenFails('limit_exceeded');
    spec(tutorDecider).given(once).when(reverse('r1', 100)).thenFails('invalid_state');
    spec(tutorDecider)
      .given(recorded())
      .when(reverse('r1', 100, 'b9'))
      .thenFails('not_found');
    spec(tutorDecider)
      .given(recorded())
      .when({ ...reverse('r1', 100), currency: 'gbp' })
      .thenFails('currency_mismatch');
    spec(tutorDecider).given(recorded()).when(reverse('r1', 0)).thenFails('validation_failed');
  });
});

describe('tutor: payout holds', () => {
  it('holds available earnings for a payout', () => {
    const [event] = spec(tutorDecider)
      .given(cleared())
      .when(payoutHold(2000))
      .thenEmits(() => {});
    expect(entryOf(event)).toMatchObject({ holdId: uuid('payout-hold-p1') });
    expect(entryOf(event)?.postings).toEqual([
      p('tutor:t1:earnings:available', 'debit', 2000, 'hold'),
      p('clearing:payout:p1', 'credit', 2000, 'hold'),
    ]);
    expect(tutorAvailable(foldEvents(tutorDecider, [...cleared(), event!]))).toBe(1200);
  });
  it('never pays out more than available, nor pending earnings', () => {
    spec(tutorDecider).given(cleared()).when(payoutHold(3201)).thenFails('insufficient_funds');
    spec(tutorDecider).given(recorded()).when(payoutHold(1000)).thenFails('insufficient_funds');
    spec(tutorDecider).given(withHold()).when(payoutHold(1201, 'p2')).thenFails('insufficient_funds');
    spec(tutorDecider).given([]).when(payoutHold(1000)).thenFails('insufficient_funds');
  });
  it('rejects a payout below the minimum, a reused payout id and another currency', () => {
    spec(tutorDecider).given(cleared()).when(payoutHold(999)).thenFails('limit_exceeded');
    spec(tutorDecider).given(withHold()).when(payoutHold(1000)).thenFails('invalid_state');
    spec(tutorDecider)
      .given(cleared())
      .when({ ...payoutHold(1000), currency: 'eur' })
      .thenFails('currency_mismatch');
  });
  it('posts a paid payout: release the hold, Dr available, Cr stripe:balance', () => {
    const [event] = spec(tutorDecider)
      .given(withHold())
      .when(postPayout())
      .thenEmits(() => {});
    expect(entryOf(event)?.postings).toEqual([
      p('tutor:t1:earnings:available', 'debit', 2000, 'release'),
      p('clearing:payout:p1', 'credit', 2000, 'release'),
      p('tutor:t1:earnings:available', 'debit', 2000),
      p('stripe:balance', 'credit', 2000),
    ]);
    const state = foldEvents(tutorDecider, [...withHold(), event!]);
    expect(tutorAvailable(state)).toBe(1200);
    expect(state.paidOut).toBe(2000);
  });
  it('releases a failed payout back to available', () => {
    const [event] = spec(tutorDecider)
      .given(withHold())
      .when(releasePayout())
      .thenEmits(() => {});
    expect(entryOf(event)?.postings).toHaveLength(2);
    expect(tutorAvailable(foldEvents(tutorDecider, [...withHold(), event!]))).toBe(3200);
  });
  it('resolves a payout hold exactly once; unknown payouts are not_found', () => {
    const paid = history(tutorDecider, [record(3200), clear(), payoutHold(2000), postPayout()]);
    spec(tutorDecider).given(paid).when(postPayout()).thenFails('invalid_state');
    spec(tutorDecider).given(paid).when(releasePayout()).thenFails('invalid_state');
    const failed = history(tutorDecider, [record(3200), clear(), payoutHold(2000), releasePayout()]);
    spec(tutorDecider).given(failed).when(postPayout()).thenFails('invalid_state');
    spec(tutorDecider).given(cleared()).when(postPayout('p9')).thenFails('not_found');
    spec(tutorDecider).given(cleared()).when(releasePayout('p9')).thenFails('not_found');
    spec(tutorDecider)
      .given(withHold())
      .when({ ...releasePayout(), reason: '' } as TutorCommand)
      .thenFails('validation_failed');
  });
});

describe('tutor: AdjustTutor', () => {
  it('credits available earnings against platform:adjustments', () => {
    spec(tutorDecider)
      .given([])
      .when(adjust('available', 'credit', 700))
      .thenEmits((e) => {
        expect(entryOf(e[0])?.postings).toEqual([
          p('tutor:t1:earnings:available', 'credit', 700),
          p('platform:adjustments', 'debit', 700),
        ]);
        expect((e[0]!.data as { actor?: unknown }).actor).toEqual(FINANCE_ADMIN);
      });
  });
  it('debits available only down to zero', () => {
    spec(tutorDecider)
      .given(withHold())
      .when(adjust('available', 'debit', 1201))
      .thenFails('insufficient_funds');
    spec(tutorDecider)
      .given(withHold())
      .when(adjust('available', 'debit', 1200))
      .thenEmits((e) => expect(e).toHaveLength(1));
  });
  it('writes off a receivable, never below zero', () => {
    const owing = history(tutorDecider, [record(3200), clear(), reverse('r1', 1000)]);
    spec(tutorDecider)
      .given(owing)
      .when(adjust('receivable', 'credit', 1000))
      .thenEmits((e) => {
        expect(entryOf(e[0])?.postings).toEqual([
          p('tutor:t1:receivable', 'credit', 1000),
          p('platform:adjustments', 'debit', 1000),
        ]);
        expect(foldEvents(tutorDecider, [...owing, ...e]).receivable).toBe(0);
      });
    spec(tutorDecider)
      .given(owing)
      .when(adjust('receivable', 'credit', 1001))
      .thenFails('limit_exceeded');
  });
  it('requires a finance admin, a reason, a known account and a fresh id', () => {
    spec(tutorDecider)
      .given([])
      .when({ ...adjust('available', 'credit', 1), actor: { id: 'x', role: 'tutor' } })
      .thenFails('forbidden');
    spec(tutorDecider)
      .given([])
      .when({ ...adjust('available', 'credit', 1), reason: '' })
      .thenFails('validation_failed');
    spec(tutorDecider)
      .given([])
      .when({ ...adjust('available', 'credit', 1), account: 'pending' as 'available' })
      .thenFails('validation_failed');
    const once = history(tutorDecider, [adjust('available', 'credit', 1)]);
    spec(tutorDecider)
      .given(once)
      .when(adjust('available', 'credit', 1))
      .thenFails('invalid_state');
  });
  it('rejects a command routed to another tutor stream', () => {
    spec(tutorDecider)
      .given(recorded())
      .when({ ...record(100, 'b2'), tutorId: 't2' })
      .thenFails('validation_failed');
  });
});

describe('tutor: evolve asserts invariants', () => {
  it('throws when a payout hold would take available below zero', () => {
    const holdEvent = history(tutorDecider, [record(3200), clear(), payoutHold(3200)])[2]!;
    expect(() => foldEvents(tutorDecider, [...recorded(), holdEvent])).toThrow(/invariant violated/);
  });
});

describe('tutor payout account (Stripe Express account recorded in the tutor stream)', () => {
  const restricted = {
    stripeAccountId: 'acct_1Tutor',
    chargesEnabled: false,
    payoutsEnabled: false,
    detailsSubmitted: false,
    currentlyDue: ['individual.verification.document', 'external_account'],
    pastDue: [],
    disabledReason: 'requirements.past_due',
  };
  const enabled = {
    ...restricted,
    chargesEnabled: true,
    payoutsEnabled: true,
    detailsSubmitted: true,
    currentlyDue: [],
    disabledReason: null,
  };
  const open = (account = restricted): TutorCommand => ({
    type: 'OpenPayoutAccount',
    tutorId: T,
    account,
    openedAt: EARNED,
  });
  const update = (account: typeof restricted | typeof enabled): TutorCommand => ({
    type: 'UpdatePayoutAccount',
    tutorId: T,
    account,
    updatedAt: CLEARABLE,
  });
  const earned = (extra: TutorCommand[] = []) =>
    history(tutorDecider, [
      ...extra,
      {
        type: 'AdjustTutor',
        tutorId: T,
        adjustmentId: 'adj1',
        account: 'available',
        direction: 'credit',
        amount: 5_000,
        currency: 'usd',
        reason: 'earnings',
        actor: FINANCE_ADMIN,
        entryId: uuid('adj1'),
      },
    ]);
  const readyHold = { ...payoutHold(3_000), requireReadyPayoutAccount: true };

  it('opens once (requirements sorted); the same account again appends nothing; another is refused', () => {
    spec(tutorDecider)
      .given([])
      .when(open())
      .thenEmits((e) =>
        expect(e).toEqual([
          {
            type: 'TutorPayoutAccountOpened',
            data: {
              tutorId: T,
              ...restricted,
              currentlyDue: ['external_account', 'individual.verification.document'],
              openedAt: EARNED,
            },
          },
        ]),
      );
    const opened = history(tutorDecider, [open()]);
    spec(tutorDecider).given(opened).when(open()).thenEmits([]);
    spec(tutorDecider)
      .given(opened)
      .when(open({ ...restricted, stripeAccountId: 'acct_2Other' }))
      .thenFails('invalid_state', /already has payout account acct_1Tutor/);
    spec(tutorDecider)
      .given([])
      .when(open({ ...restricted, stripeAccountId: 'po_123' }))
      .thenFails('validation_failed');
  });

  it('updates only the recorded account, and only when something changed', () => {
    spec(tutorDecider).given([]).when(update(enabled)).thenFails('not_found');
    const opened = history(tutorDecider, [open()]);
    spec(tutorDecider)
      .given(opened)
      .when(update({ ...enabled, stripeAccountId: 'acct_2Other' }))
      .thenFails('invalid_state');
    spec(tutorDecider)
      .given(opened)
      .when(update({ ...restricted, currentlyDue: [...restricted.currentlyDue].reverse() }))
      .thenEmits([]);
    spec(tutorDecider)
      .given(opened)
      .when(update(enabled))
      .thenEmits((e) => expect(e[0]).toMatchObject({ type: 'TutorPayoutAccountUpdated', data: enabled }));
    const state = foldEvents(tutorDecider, history(tutorDecider, [open(), update(enabled)]));
    expect(state.payoutAccount).toEqual(enabled);
    // The account carries no money: the tutor's currency and balances stay untouched.
    expect(state.currency).toBeNull();
  });

  it('a payout paid through Stripe needs an account that takes payouts, and says what is missing', () => {
    const none = spec(tutorDecider).given(earned()).when(readyHold).thenFails('payout_account_not_ready');
    expect(none.details).toMatchObject({ missing: ['payout_account'], stripeAccountId: null });
    const stuck = spec(tutorDecider)
      .given(earned([open()]))
      .when(readyHold)
      .thenFails('payout_account_not_ready', /cannot take payouts yet/);
    expect(stuck.details).toMatchObject({
      missing: ['external_account', 'individual.verification.document'],
      stripeAccountId: 'acct_1Tutor',
      disabledReason: 'requirements.past_due',
    });
    spec(tutorDecider)
      .given(earned([open(), update(enabled)]))
      .when(readyHold)
      .thenEmits((e) => expect(e[0]?.type).toBe('TutorPayoutHoldPlaced'));
    // Without Stripe (bookkeeping only) the account is not required.
    spec(tutorDecider)
      .given(earned())
      .when(payoutHold(3_000))
      .thenEmits((e) => expect(e[0]?.type).toBe('TutorPayoutHoldPlaced'));
  });
});
