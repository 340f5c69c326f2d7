import { describe, expect, it } from 'vitest';
import { decodeEvent } from '../../src/domain/events.js';
import { deterministicId } from '../../src/domain/ids.js';
import { parseStreamName } from '../../src/domain/streams.js';
import type { RecordedEvent } from '../../src/eventstore/port.js';
import { metricDeltasOf } from '../../src/projections/dailyMetrics.js';
import { MAX_REFERENCES_PER_EVENT, referencesOf, searchTermOf } from '../../src/projections/references.js';

function event(
  streamName: string,
  type: string,
  data: Record<string, unknown>,
  key = 'http:fin_1:k-1',
): RecordedEvent {
  return {
    id: '00000000-0000-5000-8000-000000000001',
    type,
    streamName,
    revision: 0n,
    position: 7n,
    data: data as RecordedEvent['data'],
    metadata: {
      tenantId: 'acme',
      correlationId: 'c',
      causationId: 'c',
      actor: { id: 'fin_1', role: 'finance_admin' },
      idempotencyKey: key,
      occurredAt: '2030-03-04T05:06:07.000Z',
      schemaVersion: 1,
    },
    recordedAt: new Date(0),
  };
}

/** References scan any event's data by field name: the stream and data as stored are enough. */
const refs = (e: RecordedEvent) => {
  const stream = parseStreamName(e.streamName);
  if (!stream) throw new Error(`not a ledger stream: ${e.streamName}`);
  return referencesOf({ ...e, stream }).map((r) => `${r.kind}:${r.id}`);
};

describe('references of events', () => {
  it('the stream, the id fields, Stripe ids in any other field, and the idempotency key', () => {
    const e = event('wallet-acme.stu_1', 'WalletRefunded', {
      studentId: 'stu_1',
      bookingId: 'bk_1',
      refundId: 'rf_1',
      tutorId: 'tut_1',
      stripeRefundId: 're_1234567890abcdef',
      note: 'po_a',
      price: { amount: 1, currency: 'usd', courseId: 'c_1' },
      entry: { entryId: 'e', description: 'pi_1234567890abcdef', postings: [] },
      items: ['pi_9999999999999999'],
    });
    expect(refs(e)).toEqual([
      'student:stu_1',
      'booking:bk_1',
      'refund:rf_1',
      'tutor:tut_1',
      'stripe:re_1234567890abcdef',
      'course:c_1',
      'idempotency_key:http:fin_1:k-1',
    ]);
  });

  it('a search matches an API key by the key the caller sent, any id case-insensitively', () => {
    expect(searchTermOf({ kind: 'idempotency_key', id: 'http:fin_1:Adj-1' })).toBe('adj-1');
    expect(searchTermOf({ kind: 'idempotency_key', id: 'capture:abc' })).toBe('capture:abc');
    expect(searchTermOf({ kind: 'booking', id: 'BK_1' })).toBe('bk_1');
  });

  it('the settings stream names no entity, and an event names at most a bounded number of things', () => {
    expect(refs(event('tenant-acme.settings', 'TenantSettingsUpdated', {}))).toEqual([
      'idempotency_key:http:fin_1:k-1',
    ]);
    const many = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`f${i}`, `pi_${String(i).padStart(12, '0')}`]),
    );
    expect(refs(event('stripe-acme.x', 'StripeFeeBooked', many)).length).toBe(MAX_REFERENCES_PER_EVENT);
  });
});

describe('daily metrics of events', () => {
  const HOLD = deterministicId('hold', 'acme', 'bk_1');
  /** A wallet event as the wallet decider writes it (decoded), with the given entry postings. */
  const walletEvent = (
    type: 'WalletHoldCaptured' | 'WalletHoldReleased',
    split: { charged: number; tutorShare: number; commission: number },
    postings: Array<[string, 'debit' | 'credit', 'post' | 'hold' | 'release', number]>,
  ) => {
    const ref = { studentId: 'stu_1', holdId: HOLD, bookingId: 'bk_1', tutorId: 'tut_1', currency: 'usd' };
    const { charged, tutorShare, commission } = split;
    const amounts =
      type === 'WalletHoldCaptured'
        ? { held: 3000, captured: charged, tutorShare, commission }
        : { reason: 'cancelled', held: 3000, fee: charged, tutorShare, commission };
    return decodeEvent(
      event('wallet-acme.stu_1', type, {
        ...ref,
        ...amounts,
        entry: {
          entryId: deterministicId('entry', type),
          holdId: HOLD,
          description: 'd',
          postings: postings.map(([account, side, effect, amount]) => ({
            account,
            side,
            effect,
            amount,
            currency: 'usd',
          })),
        },
      }),
    );
  };

  it('a capture: gross booking value, commission revenue, the wallet stock and deferred revenue back to zero', () => {
    const deltas = metricDeltasOf(
      walletEvent('WalletHoldCaptured', { charged: 3000, tutorShare: 2400, commission: 600 }, [
        ['student:stu_1:wallet', 'debit', 'release', 3000],
        ['clearing:booking:bk_1', 'credit', 'release', 3000],
        ['student:stu_1:wallet', 'debit', 'post', 3000],
        ['tutor:tut_1:earnings:pending', 'credit', 'post', 2400],
        ['platform:revenue:commission', 'credit', 'post', 600],
      ]),
    );
    const of = (m: string) => deltas.filter((d) => d.metric === m).reduce((s, d) => s + d.amount, 0);
    expect(of('gross_booking_value')).toBe(3000);
    expect(of('revenue:commission')).toBe(600);
    expect(of('net_revenue')).toBe(600);
    expect(of('held_for_students')).toBe(-3000);
    expect(of('deferred_revenue')).toBe(-3000);
    expect(deltas.every((d) => d.day === '2030-03-04' && d.currency === 'usd')).toBe(true);
  });

  it('a late cancellation fee is revenue of source "fees"; an event without an entry moves nothing', () => {
    const deltas = metricDeltasOf(
      walletEvent('WalletHoldReleased', { charged: 1000, tutorShare: 800, commission: 200 }, [
        ['student:stu_1:wallet', 'debit', 'release', 3000],
        ['clearing:booking:bk_1', 'credit', 'release', 3000],
        ['student:stu_1:wallet', 'debit', 'post', 1000],
        ['tutor:tut_1:earnings:pending', 'credit', 'post', 800],
        ['platform:revenue:commission', 'credit', 'post', 200],
      ]),
    );
    expect(deltas.map((d) => `${d.metric}=${d.amount}`)).toEqual(
      expect.arrayContaining(['cancellation_fees=1000', 'revenue:fees=200', 'net_revenue=200']),
    );
    const expired = decodeEvent(
      event('booking-acme.bk_1', 'BookingExpired', {
        bookingId: 'bk_1',
        studentId: 'stu_1',
        tutorId: 'tut_1',
        holdId: HOLD,
        currency: 'usd',
        expiredAt: '2030-03-04T05:06:07.000Z',
      }),
    );
    expect(metricDeltasOf(expired)).toEqual([]);
  });
});
