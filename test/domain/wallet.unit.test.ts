import { describe, expect, it } from 'vitest';
import {
  type AdjustWallet,
  type CaptureWalletHold,
  type CreditTopUp,
  type PlaceWalletHold,
  type RefundToWallet,
  type RefundWalletToCard,
  type ReleaseWalletHold,
  type ReverseFailedCardRefund,
  type WalletEvent,
  walletAvailable,
  walletDecider,
} from '../../src/domain/wallet.js';
import { BAD_AMOUNTS, FINANCE_ADMIN, uuid } from './fixtures.js';
import { foldEvents, history, spec } from './spec.js';

const S = 's1';

/** The entry of a wallet event that moves money (not WalletSpendingLimitsSet, nor an ended subscription without refund). */
function moneyEntry(event: WalletEvent) {
  if (!('entry' in event.data) || event.data.entry === undefined)
    throw new Error(`${event.type} carries no entry`);
  return event.data.entry;
}
const HOLD = uuid('hold-b1');
const SCHEDULED = '2026-03-10T10:00:00.000Z';
const PLACED = '2026-03-01T09:00:00.000Z';

const topUp = (amount: number, topUpId = 'tu1', currency = 'usd'): CreditTopUp => ({
  type: 'CreditTopUp',
  studentId: S,
  topUpId,
  paymentIntentId: `pi_${topUpId}`,
  amount,
  currency,
  entryId: uuid(`topup-${topUpId}`),
});
const hold = (amount: number, bookingId = 'b1', holdId = HOLD): PlaceWalletHold => ({
  type: 'PlaceWalletHold',
  studentId: S,
  holdId,
  bookingId,
  tutorId: 't1',
  amount,
  currency: 'usd',
  scheduledAt: SCHEDULED,
  placedAt: PLACED,
  timeZone: 'UTC',
  entryId: uuid(`hold-entry-${bookingId}`),
});
const capture = (
  captured: number,
  tutorShare: number,
  commission: number,
  holdId = HOLD,
): CaptureWalletHold => ({
  type: 'CaptureWalletHold',
  studentId: S,
  holdId,
  captured,
  tutorShare,
  commission,
  entryId: uuid(`capture-${holdId}`),
});
const release = (
  fee = 0,
  tutorShare = 0,
  commission = 0,
  reason: 'cancelled' | 'expired' = 'cancelled',
): ReleaseWalletHold => ({
  type: 'ReleaseWalletHold',
  studentId: S,
  holdId: HOLD,
  reason,
  fee,
  tutorShare,
  commission,
  entryId: uuid('release'),
});
const refund = (
  refundId: string,
  amount: number,
  tutorPart: number,
  commissionPart: number,
): RefundToWallet => ({
  type: 'RefundToWallet',
  studentId: S,
  refundId,
  bookingId: 'b1',
  amount,
  tutorPart,
  commissionPart,
  currency: 'usd',
  entryId: uuid(`refund-${refundId}`),
});
const cardRefund = (amount: number, stripeRefundId = 're_1', topUpId = 'tu1'): RefundWalletToCard => ({
  type: 'RefundWalletToCard',
  studentId: S,
  topUpId,
  stripeRefundId,
  amount,
  currency: 'usd',
  entryId: uuid(`card-${stripeRefundId}`),
});
const failCardRefund = (
  amount: number,
  stripeRefundId = 're_1',
  topUpId = 'tu1',
): ReverseFailedCardRefund => ({
  type: 'ReverseFailedCardRefund',
  studentId: S,
  topUpId,
  stripeRefundId,
  amount,
  currency: 'usd',
  failureReason: 'expired_or_canceled_card',
  entryId: uuid(`card-failed-${stripeRefundId}`),
});
const adjust = (direction: 'debit' | 'credit', amount: number, adjustmentId = 'adj1'): AdjustWallet => ({
  type: 'AdjustWallet',
  studentId: S,
  adjustmentId,
  direction,
  amount,
  currency: 'usd',
  reason: 'goodwill credit after outage',
  actor: FINANCE_ADMIN,
  entryId: uuid(`adj-${adjustmentId}`),
});

const funded = (amount = 10_000) => history(walletDecider, [topUp(amount)]);
const held = (balance = 10_000, amount = 4000) => history(walletDecider, [topUp(balance), hold(amount)]);
const captured = () => history(walletDecider, [topUp(10_000), hold(4000), capture(4000, 3200, 800)]);

describe('wallet: CreditTopUp', () => {
  it('credits the wallet from the Stripe balance', () => {
    spec(walletDecider)
      .given([])
      .when(topUp(2500))
      .thenEmits([
        {
          type: 'WalletToppedUp',
          data: {
            studentId: S,
            topUpId: 'tu1',
            paymentIntentId: 'pi_tu1',
            amount: 2500,
            currency: 'usd',
            entry: {
              entryId: uuid('topup-tu1'),
              description: 'Top-up tu1: 25.00 USD into the wallet',
              postings: [
                { account: 'stripe:balance', side: 'debit', effect: 'post', amount: 2500, currency: 'usd' },
                {
                  account: 'student:s1:wallet',
                  side: 'credit',
                  effect: 'post',
                  amount: 2500,
                  currency: 'usd',
                },
              ],
            },
          },
        },
      ]);
  });
  it.each(BAD_AMOUNTS)('rejects a %s amount', (_why, amount) => {
    spec(walletDecider)
      .given([])
      .when({ ...topUp(1), amount: amount as number })
      .thenFails('validation_failed');
  });
  it('rejects an unknown currency', () => {
    spec(walletDecider)
      .given([])
      .when(topUp(100, 'tu1', 'xyz'))
      .thenFails('validation_failed');
  });
  it('rejects a currency other than the wallet currency', () => {
    spec(walletDecider)
      .given(funded())
      .when(topUp(100, 'tu2', 'eur'))
      .thenFails('currency_mismatch');
  });
  it('rejects crediting the same top-up twice', () => {
    spec(walletDecider).given(funded()).when(topUp(10_000)).thenFails('invalid_state');
  });
  it('rejects a command for another student', () => {
    spec(walletDecider)
      .given(funded())
      .when({ ...topUp(100, 'tu2'), studentId: 's2' })
      .thenFails('validation_failed');
  });
  it('rejects a missing entry id and a bad top-up id', () => {
    spec(walletDecider)
      .given([])
      .when({ ...topUp(100), entryId: 'nope' })
      .thenFails('validation_failed');
    spec(walletDecider)
      .given([])
      .when({ ...topUp(100), topUpId: 'a.b' })
      .thenFails('validation_failed');
  });
});

describe('wallet: PlaceWalletHold', () => {
  it('holds the amount: pending debit on the wallet, pending credit on the booking clearing account', () => {
    const [event] = spec(walletDecider)
      .given(funded())
      .when(hold(4000))
      .thenEmits((events) => {
        expect(events).toHaveLength(1);
      });
    expect(event).toMatchObject({
      type: 'WalletHoldPlaced',
      data: {
        studentId: S,
        holdId: HOLD,
        bookingId: 'b1',
        tutorId: 't1',
        amount: 4000,
        scheduledAt: SCHEDULED,
      },
    });
    expect(moneyEntry(event!)).toEqual({
      entryId: uuid('hold-entry-b1'),
      holdId: HOLD,
      description: 'Hold for booking b1: 40.00 USD',
      postings: [
        { account: 'student:s1:wallet', side: 'debit', effect: 'hold', amount: 4000, currency: 'usd' },
        { account: 'clearing:booking:b1', side: 'credit', effect: 'hold', amount: 4000, currency: 'usd' },
      ],
    });
    const state = foldEvents(walletDecider, [...funded(), event!]);
    expect(walletAvailable(state)).toBe(6000);
  });
  it('allows holding exactly the available balance', () => {
    spec(walletDecider)
      .given(funded(4000))
      .when(hold(4000))
      .thenEmits((events) => expect(events).toHaveLength(1));
  });
  it('rejects a hold above the available balance with insufficient_funds', () => {
    spec(walletDecider).given(funded(3999)).when(hold(4000)).thenFails('insufficient_funds');
  });
  it('counts existing holds against the balance', () => {
    spec(walletDecider)
      .given(held(10_000, 7000))
      .when(hold(3001, 'b2', uuid('hold-b2')))
      .thenFails('insufficient_funds');
  });
  it('rejects a hold on an empty wallet with insufficient_funds', () => {
    spec(walletDecider).given([]).when(hold(1)).thenFails('insufficient_funds');
  });
  it('rejects a hold in another currency', () => {
    spec(walletDecider)
      .given(funded())
      .when({ ...hold(100), currency: 'gbp' })
      .thenFails('currency_mismatch');
  });
  it('rejects a second hold for the same booking or hold id', () => {
    spec(walletDecider).given(held()).when(hold(100)).thenFails('invalid_state');
    spec(walletDecider)
      .given(held())
      .when(hold(100, 'b1', uuid('other')))
      .thenFails('invalid_state');
  });
  it.each(BAD_AMOUNTS)('rejects a %s amount', (_why, amount) => {
    spec(walletDecider)
      .given(funded())
      .when({ ...hold(1), amount: amount as number })
      .thenFails('validation_failed');
  });
  it('rejects a bad scheduledAt', () => {
    spec(walletDecider)
      .given(funded())
      .when({ ...hold(1), scheduledAt: '2026-03-10 10:00' })
      .thenFails('validation_failed');
  });
});

describe('wallet: CaptureWalletHold', () => {
  it('releases the hold and posts the split: tutor pending and commission', () => {
    const [event] = spec(walletDecider)
      .given(held())
      .when(capture(4000, 3200, 800))
      .thenEmits(() => {});
    expect(event!.type).toBe('WalletHoldCaptured');
    expect(event!.data).toMatchObject({ held: 4000, captured: 4000, tutorShare: 3200, commission: 800 });
    expect(moneyEntry(event!).holdId).toBe(HOLD);
    expect(moneyEntry(event!).postings).toEqual([
      { account: 'student:s1:wallet', side: 'debit', effect: 'release', amount: 4000, currency: 'usd' },
      { account: 'clearing:booking:b1', side: 'credit', effect: 'release', amount: 4000, currency: 'usd' },
      { account: 'student:s1:wallet', side: 'debit', effect: 'post', amount: 4000, currency: 'usd' },
      { account: 'tutor:t1:earnings:pending', side: 'credit', effect: 'post', amount: 3200, currency: 'usd' },
      {
        account: 'platform:revenue:commission',
        side: 'credit',
        effect: 'post',
        amount: 800,
        currency: 'usd',
      },
    ]);
    const state = foldEvents(walletDecider, [...held(), event!]);
    expect(walletAvailable(state)).toBe(6000);
    expect(state.totals.debitsPending).toBe(0);
  });
  it('captures less than the hold, releasing the rest', () => {
    const [event] = spec(walletDecider)
      .given(held())
      .when(capture(3000, 2400, 600))
      .thenEmits(() => {});
    expect(walletAvailable(foldEvents(walletDecider, [...held(), event!]))).toBe(7000);
  });
  it('rejects capturing more than the hold with limit_exceeded', () => {
    spec(walletDecider)
      .given(held())
      .when(capture(4001, 3201, 800))
      .thenFails('limit_exceeded');
  });
  it('rejects a split that does not sum to the capture', () => {
    spec(walletDecider)
      .given(held())
      .when(capture(4000, 3200, 799))
      .thenFails('validation_failed');
  });
  it('rejects an unknown hold with not_found', () => {
    spec(walletDecider)
      .given(held())
      .when(capture(10, 8, 2, uuid('nope')))
      .thenFails('not_found');
  });
  it('rejects resolving a hold twice with invalid_state', () => {
    spec(walletDecider)
      .given(captured())
      .when(capture(4000, 3200, 800))
      .thenFails('invalid_state');
    spec(walletDecider).given(captured()).when(release()).thenFails('invalid_state');
  });
});

describe('wallet: ReleaseWalletHold', () => {
  it('releases a free cancellation completely', () => {
    const [event] = spec(walletDecider)
      .given(held())
      .when(release())
      .thenEmits(() => {});
    expect(event!.data).toMatchObject({ reason: 'cancelled', held: 4000, fee: 0 });
    expect(moneyEntry(event!).postings).toHaveLength(2);
    expect(walletAvailable(foldEvents(walletDecider, [...held(), event!]))).toBe(10_000);
  });
  it('keeps a late-cancellation fee: tutor pending and commission', () => {
    const [event] = spec(walletDecider)
      .given(held())
      .when(release(2000, 1600, 400))
      .thenEmits(() => {});
    expect(moneyEntry(event!).postings.slice(2)).toEqual([
      { account: 'student:s1:wallet', side: 'debit', effect: 'post', amount: 2000, currency: 'usd' },
      { account: 'tutor:t1:earnings:pending', side: 'credit', effect: 'post', amount: 1600, currency: 'usd' },
      {
        account: 'platform:revenue:commission',
        side: 'credit',
        effect: 'post',
        amount: 400,
        currency: 'usd',
      },
    ]);
    expect(walletAvailable(foldEvents(walletDecider, [...held(), event!]))).toBe(8000);
  });
  it('releases an expired hold', () => {
    spec(walletDecider)
      .given(held())
      .when(release(0, 0, 0, 'expired'))
      .thenEmits((events) => expect(events[0]!.data).toMatchObject({ reason: 'expired' }));
  });
  it('rejects a fee on an expired hold, a fee above the hold, a bad split and a bad reason', () => {
    spec(walletDecider)
      .given(held())
      .when(release(10, 8, 2, 'expired'))
      .thenFails('validation_failed');
    spec(walletDecider)
      .given(held())
      .when(release(4001, 4001, 0))
      .thenFails('limit_exceeded');
    spec(walletDecider)
      .given(held())
      .when(release(100, 10, 10))
      .thenFails('validation_failed');
    spec(walletDecider)
      .given(held())
      .when({ ...release(), reason: 'bored' as 'expired' })
      .thenFails('validation_failed');
  });
  it('rejects an unknown hold and a hold released twice', () => {
    spec(walletDecider).given(funded()).when(release()).thenFails('not_found');
    const released = history(walletDecider, [topUp(10_000), hold(4000), release()]);
    spec(walletDecider).given(released).when(release()).thenFails('invalid_state');
    spec(walletDecider)
      .given(released)
      .when(capture(4000, 3200, 800))
      .thenFails('invalid_state');
  });
});

describe('wallet: RefundToWallet', () => {
  it('credits the wallet, reversing commission and routing the tutor part through a refund clearing account', () => {
    const [event] = spec(walletDecider)
      .given(captured())
      .when(refund('r1', 1000, 800, 200))
      .thenEmits(() => {});
    expect(moneyEntry(event!).postings).toEqual([
      { account: 'clearing:refund:r1', side: 'debit', effect: 'post', amount: 800, currency: 'usd' },
      { account: 'platform:revenue:commission', side: 'debit', effect: 'post', amount: 200, currency: 'usd' },
      { account: 'student:s1:wallet', side: 'credit', effect: 'post', amount: 1000, currency: 'usd' },
    ]);
    expect(event!.data).toMatchObject({ bookingId: 'b1', tutorId: 't1', refundId: 'r1' });
  });
  it('allows several partial refunds up to the capture', () => {
    const partial = captured();
    const first = walletDecider.decide(refund('r1', 3000, 2400, 600), foldEvents(walletDecider, partial));
    spec(walletDecider)
      .given([...partial, ...first])
      .when(refund('r2', 1000, 800, 200))
      .thenEmits((events) => expect(events).toHaveLength(1));
    spec(walletDecider)
      .given([...partial, ...first])
      .when(refund('r2', 1001, 801, 200))
      .thenFails('limit_exceeded');
  });
  it('rejects refunding more than captured, a reused refund id, and a split that does not sum', () => {
    spec(walletDecider)
      .given(captured())
      .when(refund('r1', 4001, 3201, 800))
      .thenFails('limit_exceeded');
    const once = [
      ...captured(),
      ...walletDecider.decide(refund('r1', 100, 80, 20), foldEvents(walletDecider, captured())),
    ];
    spec(walletDecider)
      .given(once)
      .when(refund('r1', 100, 80, 20))
      .thenFails('invalid_state');
    spec(walletDecider)
      .given(captured())
      .when(refund('r1', 100, 80, 10))
      .thenFails('validation_failed');
  });
  it('rejects a refund of a booking that was not captured, or is unknown, or in another currency', () => {
    spec(walletDecider)
      .given(held())
      .when(refund('r1', 100, 80, 20))
      .thenFails('invalid_state');
    spec(walletDecider)
      .given(captured())
      .when({ ...refund('r1', 100, 80, 20), bookingId: 'b9' })
      .thenFails('not_found');
    spec(walletDecider)
      .given(captured())
      .when({ ...refund('r1', 100, 80, 20), currency: 'eur' })
      .thenFails('currency_mismatch');
  });
});

describe('wallet: RefundWalletToCard', () => {
  it('moves unspent money back to the card: Dr wallet, Cr stripe:balance', () => {
    spec(walletDecider)
      .given(funded())
      .when(cardRefund(2500))
      .thenEmits((events) => {
        expect(moneyEntry(events[0]!).postings).toEqual([
          { account: 'student:s1:wallet', side: 'debit', effect: 'post', amount: 2500, currency: 'usd' },
          { account: 'stripe:balance', side: 'credit', effect: 'post', amount: 2500, currency: 'usd' },
        ]);
      });
  });
  it('never refunds more than the available balance', () => {
    spec(walletDecider).given(held(10_000, 8000)).when(cardRefund(2001)).thenFails('insufficient_funds');
  });
  it('never refunds more than the top-up', () => {
    const twoTopUps = history(walletDecider, [topUp(1000), topUp(5000, 'tu2')]);
    spec(walletDecider).given(twoTopUps).when(cardRefund(1001)).thenFails('limit_exceeded');
  });
  it('rejects an unknown top-up, a reused Stripe refund id and another currency', () => {
    spec(walletDecider)
      .given(funded())
      .when(cardRefund(10, 're_1', 'tu9'))
      .thenFails('not_found');
    const once = history(walletDecider, [topUp(10_000), cardRefund(10)]);
    spec(walletDecider).given(once).when(cardRefund(10)).thenFails('invalid_state');
    spec(walletDecider)
      .given(funded())
      .when({ ...cardRefund(10), currency: 'eur' })
      .thenFails('currency_mismatch');
  });
});

describe('wallet: ReverseFailedCardRefund', () => {
  const refunded = () => history(walletDecider, [topUp(10_000), cardRefund(2500)]);
  it("credits the wallet back exactly the refund's postings reversed: Dr stripe:balance, Cr wallet", () => {
    const events = spec(walletDecider)
      .given(refunded())
      .when(failCardRefund(2500))
      .thenEmits((events) => {
        expect(events.map((e) => e.type)).toEqual(['WalletCardRefundFailed']);
        expect(events[0]!.data).toMatchObject({
          topUpId: 'tu1',
          stripeRefundId: 're_1',
          amount: 2500,
          failureReason: 'expired_or_canceled_card',
        });
        expect(moneyEntry(events[0]!).postings).toEqual([
          { account: 'stripe:balance', side: 'debit', effect: 'post', amount: 2500, currency: 'usd' },
          { account: 'student:s1:wallet', side: 'credit', effect: 'post', amount: 2500, currency: 'usd' },
        ]);
      });
    const state = foldEvents(walletDecider, [...refunded(), ...events]);
    expect(walletAvailable(state)).toBe(10_000);
    expect(state.topUps.get('tu1')).toEqual({ amount: 10_000, refundedToCard: 0 });
  });
  it("reopens the top-up's refundable amount, never the failed refund's id", () => {
    const failed = history(walletDecider, [topUp(1000), cardRefund(1000), failCardRefund(1000)]);
    spec(walletDecider)
      .given(failed)
      .when(cardRefund(1000, 're_2'))
      .thenEmits((events) => expect(events.map((e) => e.type)).toEqual(['WalletRefundedToCard']));
    spec(walletDecider).given(failed).when(cardRefund(1000, 're_1')).thenFails('invalid_state');
  });
  it('fails a refund once: a second failure of it is invalid_state', () => {
    const failed = history(walletDecider, [topUp(10_000), cardRefund(2500), failCardRefund(2500)]);
    spec(walletDecider)
      .given(failed)
      .when(failCardRefund(2500))
      .thenFails('invalid_state', /already failed/);
  });
  it('refuses a refund the wallet never applied (not_found), another amount or top-up, another currency', () => {
    spec(walletDecider).given(funded()).when(failCardRefund(2500)).thenFails('not_found');
    spec(walletDecider).given(refunded()).when(failCardRefund(2500, 're_9')).thenFails('not_found');
    spec(walletDecider).given(refunded()).when(failCardRefund(2499)).thenFails('validation_failed');
    spec(walletDecider)
      .given(refunded())
      .when(failCardRefund(2500, 're_1', 'tu2'))
      .thenFails('validation_failed');
    spec(walletDecider)
      .given(refunded())
      .when({ ...failCardRefund(2500), currency: 'eur' })
      .thenFails('currency_mismatch');
    spec(walletDecider)
      .given(refunded())
      .when({ ...failCardRefund(2500), failureReason: '' })
      .thenFails('validation_failed');
  });
  it('gives the money back even when the wallet spent everything since (the credit needs no balance)', () => {
    const spent = history(walletDecider, [topUp(5000), cardRefund(1000), hold(4000)]);
    spec(walletDecider)
      .given(spent)
      .when(failCardRefund(1000))
      .thenEmits((events) => {
        expect(walletAvailable(foldEvents(walletDecider, [...spent, ...events]))).toBe(1000);
      });
  });
});

describe('wallet: AdjustWallet', () => {
  it('credits the wallet against platform:adjustments, with reason and actor', () => {
    spec(walletDecider)
      .given([])
      .when(adjust('credit', 500))
      .thenEmits((events) => {
        expect(events[0]!.data).toMatchObject({
          reason: 'goodwill credit after outage',
          actor: FINANCE_ADMIN,
        });
        expect(moneyEntry(events[0]!).postings).toEqual([
          { account: 'student:s1:wallet', side: 'credit', effect: 'post', amount: 500, currency: 'usd' },
          { account: 'platform:adjustments', side: 'debit', effect: 'post', amount: 500, currency: 'usd' },
        ]);
      });
  });
  it('debits only what is available', () => {
    spec(walletDecider)
      .given(funded(1000))
      .when(adjust('debit', 1000))
      .thenEmits((events) => expect(events).toHaveLength(1));
    spec(walletDecider).given(funded(1000)).when(adjust('debit', 1001)).thenFails('insufficient_funds');
  });
  it('requires a reason, a finance admin, a direction and a fresh adjustment id', () => {
    spec(walletDecider)
      .given([])
      .when({ ...adjust('credit', 5), reason: '   ' })
      .thenFails('validation_failed');
    spec(walletDecider)
      .given([])
      .when({ ...adjust('credit', 5), actor: { id: 'u1', role: 'student' } })
      .thenFails('forbidden');
    spec(walletDecider)
      .given([])
      .when({ ...adjust('credit', 5), direction: 'up' as 'credit' })
      .thenFails('validation_failed');
    const once = history(walletDecider, [adjust('credit', 5)]);
    spec(walletDecider).given(once).when(adjust('credit', 5)).thenFails('invalid_state');
    spec(walletDecider)
      .given(funded())
      .when({ ...adjust('credit', 5), currency: 'eur' })
      .thenFails('currency_mismatch');
  });
});

describe('wallet: evolve asserts invariants', () => {
  it('throws on a hold resolved twice or an overdraft in the stream', () => {
    const events = history(walletDecider, [topUp(10_000), hold(4000), capture(4000, 3200, 800)]);
    const captureEvent = events[2]!;
    expect(() => foldEvents(walletDecider, [...events, captureEvent])).toThrow(/invariant violated/);
    const holdEvent = history(walletDecider, [topUp(5000), hold(5000)])[1]!;
    expect(() => foldEvents(walletDecider, [holdEvent])).toThrow(/invariant violated/);
  });
});
