import { describe, expect, it } from 'vitest';
import { BALANCE_MONITOR_EVENT_TYPES } from '../../src/domain/balanceMonitor.js';
import { InvariantViolation } from '../../src/domain/errors.js';
import {
  type DecodedEvent,
  decodeEvent,
  decodeEventOf,
  EVENT_SCHEMAS,
  EVENT_TYPES,
  LEDGER_EVENT_TYPES,
  MalformedEventError,
  type StoredEvent,
} from '../../src/domain/events.js';
import { REFERRAL_EVENTS } from '../../src/domain/referral.js';
import { STREAM_CATEGORIES } from '../../src/domain/streams.js';
import { SUBSCRIPTION_EVENTS } from '../../src/domain/subscription.js';
import { PLAN_CATALOG_EVENTS } from '../../src/domain/subscriptionPlans.js';
import { WEBHOOK_ENDPOINT_EVENT_TYPES } from '../../src/domain/webhookEndpoints.js';
import { loadFixture } from '../fixtures/replayFixture.js';

const METADATA = {
  tenantId: 't1',
  correlationId: 'corr-1',
  causationId: 'cause-1',
  actor: { id: 's1', role: 'student' },
  idempotencyKey: 'key-1',
  occurredAt: '2026-03-02T09:00:00.000Z',
  schemaVersion: 1,
  commandType: 'PlaceWalletHold',
  commandHash: 'h',
};

const HOLD = '7b0a4a54-7d4f-5a2b-8f42-0a1b2c3d4e5f';
const ENTRY = '1d3e7a2c-5b6f-5c8d-9e0f-a1b2c3d4e5f6';

/** A valid WalletHoldPlaced as the wallet decider writes it. */
function holdPlaced(overrides: Partial<StoredEvent> & { data?: Record<string, unknown> } = {}): StoredEvent {
  return {
    id: '0b1c2d3e-4f5a-5b6c-8d7e-9f0a1b2c3d4e',
    type: 'WalletHoldPlaced',
    streamName: 'wallet-t1.s1',
    position: 7n,
    metadata: METADATA,
    ...overrides,
    data: {
      studentId: 's1',
      holdId: HOLD,
      bookingId: 'b1',
      tutorId: 'tu1',
      amount: 1500,
      currency: 'usd',
      scheduledAt: '2026-03-05T10:00:00.000Z',
      entry: {
        entryId: ENTRY,
        holdId: HOLD,
        description: 'Hold for booking b1: 15.00 USD',
        postings: [
          { account: 'student:s1:wallet', side: 'debit', effect: 'hold', amount: 1500, currency: 'usd' },
          { account: 'clearing:booking:b1', side: 'credit', effect: 'hold', amount: 1500, currency: 'usd' },
        ],
      },
      ...overrides.data,
    },
  };
}

function problemsOf(stored: StoredEvent): readonly string[] {
  try {
    decodeEvent(stored);
  } catch (error) {
    expect(error).toBeInstanceOf(MalformedEventError);
    expect(error).toBeInstanceOf(InvariantViolation);
    return (error as MalformedEventError).problems;
  }
  throw new Error('expected the event to be refused');
}

describe('event decoder', () => {
  it('decodes a stored event into the typed union: stream, tenant, data and metadata', () => {
    const event = decodeEvent(holdPlaced());
    expect(event.type).toBe('WalletHoldPlaced');
    expect(event.stream).toEqual({ category: 'wallet', tenantId: 't1', id: 's1' });
    expect(event.tenantId).toBe('t1');
    if (event.type !== 'WalletHoldPlaced') throw new Error('narrowing');
    expect(event.data.holdId).toBe(HOLD);
    expect(event.data.entry.postings).toHaveLength(2);
  });

  it('decodes every event of the replay fixture (written by an earlier version)', () => {
    const { events } = loadFixture('store-28d085d');
    const types = new Set<string>();
    for (const e of events) types.add(decodeEvent(e).type);
    // The fixture writes nearly every event type; the ones it does not are named here (adjustment
    // proposals, webhook endpoints, balance monitors, tutor payout accounts, documents, billing
    // settings, spending limits, promo codes, VIP subscriptions, failed card refunds and referrals came
    // after it was written).
    expect(LEDGER_EVENT_TYPES.filter((t) => !types.has(t))).toEqual([
      'WalletCardRefundFailed',
      'WalletSpendingLimitsSet',
      'WalletSubscriptionCharged',
      'WalletSubscriptionRefunded',
      'WalletSubscriptionEnded',
      'TutorPayoutAccountOpened',
      'TutorPayoutAccountUpdated',
      'TutorPayoutReversed',
      'PayoutSubmissionDeferred',
      'TopUpCardRefundFailed',
      'AdjustmentProposed',
      'AdjustmentApproved',
      'AdjustmentRejected',
      'ReconciliationRunFailed',
      ...WEBHOOK_ENDPOINT_EVENT_TYPES,
      ...BALANCE_MONITOR_EVENT_TYPES,
      'DocumentIssued',
      'BillingSettingsUpdated',
      'PromoCodeCreated',
      'PromoCodeChanged',
      'PromoRedemptionReserved',
      'PromoRedemptionRefused',
      'PromoRedemptionConfirmed',
      'PromoRedemptionReleased',
      'GuardianLinked',
      'GuardianUnlinked',
      'PeriodClosed',
      'LedgerAdjustedBackdated',
      ...Object.keys(PLAN_CATALOG_EVENTS),
      ...Object.keys(SUBSCRIPTION_EVENTS),
      ...Object.keys(REFERRAL_EVENTS),
    ]);
  });

  it.each<[string, Partial<StoredEvent> & { data?: Record<string, unknown> }, RegExp]>([
    ['an unknown type', { type: 'WalletHoldPlacedTwice' }, /unknown event type/],
    [
      'a type in a stream of another category',
      { streamName: 'tutor-t1.s1' },
      /a wallet event in a tutor stream/,
    ],
    ['a stream name that is not the ledger', { streamName: 'wallet_t1_s1' }, /stream name/],
    [
      'metadata naming another tenant',
      { metadata: { ...METADATA, tenantId: 't2' } },
      /tenant t2, the stream tenant t1/,
    ],
    ['metadata without its actor', { metadata: { ...METADATA, actor: undefined } }, /metadata\/actor/],
    [
      'an instant without its zone',
      { metadata: { ...METADATA, occurredAt: '2026-03-02T09:00:00' } },
      /occurredAt/,
    ],
    ['a missing field', { data: { holdId: undefined } }, /data\/holdId/],
    ['a renamed field', { data: { holdId: undefined, holdID: HOLD } }, /data\/holdId|data\/holdID/],
    ['an amount as a string', { data: { amount: '1500' } }, /data\/amount/],
    ['a fractional amount', { data: { amount: 15.5 } }, /data\/amount/],
    ['a negative amount', { data: { amount: -1 } }, /data\/amount/],
    ['an unknown currency shape', { data: { currency: 'USD' } }, /data\/currency/],
    ['a hold id that is not a UUID', { data: { holdId: 'hold-1' } }, /data\/holdId/],
  ])('refuses %s with a typed error naming the problem', (_why, overrides, problem) => {
    const stored = holdPlaced(overrides);
    // A `data: { field: undefined }` override removes the field (JSON has no undefined).
    stored.data = JSON.parse(JSON.stringify(stored.data));
    stored.metadata = JSON.parse(JSON.stringify(stored.metadata));
    expect(problemsOf(stored).join('; ')).toMatch(problem);
  });

  it('refuses an unbalanced entry', () => {
    const stored = holdPlaced();
    const data = stored.data as { entry: { postings: Array<{ amount: number }> } };
    data.entry.postings[1]!.amount = 1499;
    expect(problemsOf(stored).join('; ')).toMatch(/data\/entry: .*unbalanced/);
  });

  it('decodeEventOf refuses an event of another type than the caller expects', () => {
    expect(() => decodeEventOf(holdPlaced(), ['BookingPlaced'])).toThrow(MalformedEventError);
    expect(decodeEventOf(holdPlaced(), ['WalletHoldPlaced', 'BookingPlaced']).type).toBe('WalletHoldPlaced');
  });

  it('lists every type once, by the category whose streams hold it', () => {
    expect(Object.keys(EVENT_SCHEMAS).sort()).toEqual([...STREAM_CATEGORIES].sort());
    expect(new Set(LEDGER_EVENT_TYPES).size).toBe(LEDGER_EVENT_TYPES.length);
    for (const category of STREAM_CATEGORIES) {
      expect(EVENT_TYPES[category].length, category).toBeGreaterThan(0);
    }
    expect(EVENT_TYPES.wallet).toContain('WalletHoldPlaced');
  });

  it('types data by the event type, so a renamed field fails the type check', () => {
    const read = (e: DecodedEvent<'WalletHoldPlaced'>) => e.data.holdId;
    // @ts-expect-error the schema names holdId, not holdID: reading the wrong name does not compile
    const misread = (e: DecodedEvent<'WalletHoldPlaced'>) => e.data.holdID;
    const event = decodeEventOf(holdPlaced(), ['WalletHoldPlaced']);
    expect(read(event)).toBe(HOLD);
    expect(misread(event)).toBeUndefined();
  });
});
