import { describe, expect, it } from 'vitest';
import { payableAfter, refundFunding } from '../../src/domain/bookingPrice.js';
import {
  type CreatePromoCode,
  discountFor,
  type PromoCodeEvent,
  promoCodeDecider,
  type ReservePromoRedemption,
} from '../../src/domain/promoCode.js';
import { spec } from './spec.js';

const NOW = '2026-04-01T00:00:00.000Z';
const admin = { id: 'adm', role: 'tenant_admin' };
const create = (patch: Partial<CreatePromoCode> = {}): CreatePromoCode => ({
  type: 'CreatePromoCode',
  code: 'spring',
  currency: 'usd',
  discount: { type: 'percentage', bps: 2_000, maxAmount: 500 },
  appliesTo: ['bookings'],
  validFrom: NOW,
  validUntil: '2026-05-01T00:00:00.000Z',
  maxRedemptions: 2,
  maxRedemptionsPerStudent: 1,
  minimumSpend: 1_000,
  firstPurchaseOnly: false,
  budget: 700,
  actor: admin,
  now: NOW,
  ...patch,
});
const reserve = (id: string, patch: Partial<ReservePromoRedemption> = {}): ReservePromoRedemption => ({
  type: 'ReservePromoRedemption',
  code: 'SPRING',
  purchase: { kind: 'booking', id },
  studentId: `s-${id}`,
  listPrice: 2_000,
  currency: 'usd',
  now: '2026-04-02T00:00:00.000Z',
  ...patch,
});
const history = (...commands: Parameters<typeof promoCodeDecider.decide>[0][]): PromoCodeEvent[] => {
  const events: PromoCodeEvent[] = [];
  let state = promoCodeDecider.initialState();
  for (const c of commands) {
    for (const e of promoCodeDecider.decide(c, state)) {
      events.push(e);
      state = promoCodeDecider.evolve(state, e);
    }
  }
  return events;
};

describe('promo code decider', () => {
  it('creates a code upper-cased, and refuses a second creation and bad rules', () => {
    spec(promoCodeDecider)
      .given([])
      .when(create())
      .thenEmits((events) => expect(events[0]!.data).toMatchObject({ code: 'SPRING', budget: 700 }));
    spec(promoCodeDecider).given(history(create())).when(create()).thenFails('invalid_state');
    spec(promoCodeDecider)
      .given([])
      .when(create({ code: 'a!' }))
      .thenFails('validation_failed');
    spec(promoCodeDecider)
      .given([])
      .when(create({ appliesTo: [] }))
      .thenFails('validation_failed');
    spec(promoCodeDecider)
      .given([])
      .when(create({ appliesTo: ['bookings', 'bookings'] }))
      .thenFails('validation_failed');
    spec(promoCodeDecider)
      .given([])
      .when(create({ validUntil: NOW }))
      .thenFails('validation_failed');
    spec(promoCodeDecider)
      .given([])
      .when(create({ maxRedemptions: 1, maxRedemptionsPerStudent: 2 }))
      .thenFails('validation_failed');
    spec(promoCodeDecider)
      .given([])
      .when(create({ discount: { type: 'percentage', bps: 0, maxAmount: null } }))
      .thenFails('validation_failed');
  });

  it('reserves within every limit and names the rule that refuses', () => {
    const given = history(create());
    spec(promoCodeDecider)
      .given(given)
      .when(reserve('b1'))
      .thenEmits((events) =>
        expect(events[0]).toMatchObject({
          type: 'PromoRedemptionReserved',
          data: { discount: 400, liveRedemptions: 1, liveDiscount: 400 },
        }),
      );
    const reason = (command: ReservePromoRedemption, events = given) =>
      spec(promoCodeDecider).given(events).when(command).thenFails('promo_code_rejected').details.reason;
    expect(reason(reserve('b1', { listPrice: 999 }))).toBe('minimum_spend');
    expect(reason(reserve('b1', { now: '2026-05-01T00:00:00.000Z' }))).toBe('expired');
    expect(reason(reserve('b1', { now: '2026-03-31T00:00:00.000Z' }))).toBe('not_yet_valid');
    expect(reason(reserve('b1', { purchase: { kind: 'course', id: 'c1' } }))).toBe('not_applicable');
    const one = history(create(), reserve('b1'));
    expect(reason(reserve('b2', { studentId: 's-b1' }), one)).toBe('per_student_limit');
    // 400 reserved of a 700 budget: another 400 does not fit.
    expect(reason(reserve('b2'), one)).toBe('budget_exhausted');
    const two = history(create({ budget: null }), reserve('b1'), reserve('b2'));
    expect(reason(reserve('b3'), two)).toBe('redemption_limit');
    const off = history(create(), { type: 'ChangePromoCode', active: false, actor: admin, now: NOW });
    expect(reason(reserve('b1'), off)).toBe('inactive');
    expect(reason(reserve('b1', { code: 'OTHER' }), [])).toBe('unknown_code');
    spec(promoCodeDecider)
      .given(given)
      .when(reserve('b1', { currency: 'eur' }))
      .thenFails('currency_mismatch');
  });

  it('a flow reservation records its refusal; a release gives the slot and budget back; resolves once', () => {
    const one = history(create(), reserve('b1'));
    spec(promoCodeDecider)
      .given(one)
      .when(reserve('b2', { recordRefusal: true }))
      .thenEmits((events) =>
        expect(events[0]).toMatchObject({
          type: 'PromoRedemptionRefused',
          data: { reason: 'budget_exhausted', purchase: { kind: 'booking', id: 'b2' } },
        }),
      );
    const refused = history(create(), reserve('b1'), reserve('b2', { recordRefusal: true }));
    spec(promoCodeDecider)
      .given(refused)
      .when(reserve('b2', { recordRefusal: true }))
      .thenFails('invalid_state');
    const released = history(create(), reserve('b1'), {
      type: 'ReleasePromoRedemption',
      purchase: { kind: 'booking', id: 'b1' },
      reason: 'cancelled',
      now: NOW,
    });
    spec(promoCodeDecider)
      .given(released)
      .when(reserve('b2'))
      .thenEmits((events) => expect(events).toHaveLength(1));
    // The same student may redeem again once the first redemption was released.
    spec(promoCodeDecider)
      .given(released)
      .when(reserve('b3', { studentId: 's-b1' }))
      .thenEmits((events) => expect(events).toHaveLength(1));
    spec(promoCodeDecider)
      .given(released)
      .when({ type: 'ConfirmPromoRedemption', purchase: { kind: 'booking', id: 'b1' }, now: NOW })
      .thenFails('invalid_state');
    spec(promoCodeDecider)
      .given(one)
      .when({ type: 'ConfirmPromoRedemption', purchase: { kind: 'booking', id: 'b9' }, now: NOW })
      .thenFails('not_found');
  });

  it('changes only extend: validity later, limit and budget higher', () => {
    const given = history(create());
    const change = (patch: object) => ({
      type: 'ChangePromoCode' as const,
      actor: admin,
      now: NOW,
      ...patch,
    });
    spec(promoCodeDecider)
      .given(given)
      .when(change({ validUntil: '2026-06-01T00:00:00Z', maxRedemptions: 5, budget: 900 }))
      .thenEmits((events) =>
        expect(events[0]!.data).toMatchObject({
          validUntil: '2026-06-01T00:00:00.000Z',
          maxRedemptions: 5,
          budget: 900,
        }),
      );
    spec(promoCodeDecider)
      .given(given)
      .when(change({ validUntil: '2026-04-15T00:00:00Z' }))
      .thenFails('validation_failed');
    spec(promoCodeDecider)
      .given(given)
      .when(change({ maxRedemptions: 1 }))
      .thenFails('validation_failed');
    spec(promoCodeDecider)
      .given(given)
      .when(change({ budget: 100 }))
      .thenFails('validation_failed');
    spec(promoCodeDecider).given(given).when(change({})).thenFails('validation_failed');
    spec(promoCodeDecider)
      .given([])
      .when(change({ active: false }))
      .thenFails('not_found');
  });
});

describe('booking price', () => {
  it('discounts: percentage capped, fixed, never the whole price', () => {
    expect(discountFor({ type: 'percentage', bps: 2_500, maxAmount: 300 }, 2_000)).toBe(300);
    expect(discountFor({ type: 'percentage', bps: 2_500, maxAmount: null }, 2_000)).toBe(500);
    expect(discountFor({ type: 'percentage', bps: 10_000, maxAmount: null }, 2_000)).toBe(1_999);
    expect(discountFor({ type: 'fixed', amount: 5_000 }, 2_000)).toBe(1_999);
    expect(discountFor({ type: 'percentage', bps: 1, maxAmount: null }, 99)).toBe(0);
    expect(payableAfter(2_000, [{ kind: 'promo_code', reference: 'A', amount: 300 }])).toBe(1_700);
    expect(() => payableAfter(2_000, [{ kind: 'promo_code', reference: 'A', amount: 2_000 }])).toThrow();
  });

  it('refunds take the discount back cumulatively: the parts of every refund sum to the discount', () => {
    const discounts = [{ kind: 'promo_code' as const, reference: 'A', amount: 333 }];
    let before = 0;
    let discountBack = 0;
    let walletBack = 0;
    for (const amount of [1, 7, 500, 491, 1]) {
      const f = refundFunding(1_000, discounts, before, amount);
      discountBack += f.discounts.reduce((s, d) => s + d.amount, 0);
      walletBack += f.walletPart;
      before += amount;
    }
    expect(discountBack).toBe(333);
    expect(walletBack).toBe(667);
  });
});
