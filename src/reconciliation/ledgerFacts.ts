import { STRIPE_BALANCE } from '../domain/accounts.js';
import { invariant } from '../domain/errors.js';
import { type DecodedEvent, decodeEventOf, entryOf, type LedgerEventType } from '../domain/events.js';
import type { EventStore, RecordedEvent } from '../eventstore/port.js';

/**
 * What the ledger says happened at Stripe, keyed the way a balance transaction can be matched:
 *  - `pi_...`            a top-up credited (WalletToppedUp): +amount on stripe:balance
 *  - `re_...`            a refund to the card (WalletRefundedToCard): -amount
 *  - `re_...:failed`     that refund failed, its money back (WalletCardRefundFailed): +amount
 *  - `tr_...`            a payout's transfer to the tutor's connected account (TutorPayoutHoldPosted
 *                        joined with PayoutSubmitted/PayoutPaid by payoutId): -amount, platform side
 *  - `po_...`            the same payout on the connected account (side 'connected')
 *  - `dp_...:opened` / `dp_...:won`  dispute withdrawal / reinstatement
 *  - `fee:txn_...`       a Stripe fee booked for that balance transaction (StripeFeeBooked), amount = fee
 * `amount` is the signed effect on `stripe:balance` (debit +, credit -), read from the event's entry, so
 * the comparison is with what the ledger actually posted, not with a field that might disagree.
 */
export interface LedgerFact {
  key: string;
  side: 'platform' | 'connected';
  amount: number;
  currency: string;
  /** Epoch ms from the event's metadata.occurredAt. */
  occurredAtMs: number;
}

/** Events that carry Stripe ids or post to stripe:balance. */
export const FACT_EVENT_TYPES = [
  'WalletToppedUp',
  'WalletRefundedToCard',
  'WalletCardRefundFailed',
  'TutorPayoutHoldPosted',
  'PayoutSubmitted',
  'PayoutPaid',
  'StripeFeeBooked',
  'StripeDisputeOpened',
  'StripeDisputeClosed',
  'LedgerAdjusted',
] as const satisfies readonly LedgerEventType[];

/** Signed posted effect of an event's entry on stripe:balance, per currency (empty when none). */
export function stripeBalanceEffect(event: DecodedEvent): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of entryOf(event)?.postings ?? []) {
    if (p.account !== STRIPE_BALANCE || p.effect !== 'post') continue;
    out.set(p.currency, (out.get(p.currency) ?? 0) + (p.side === 'debit' ? p.amount : -p.amount));
  }
  return out;
}

function single(effect: Map<string, number>): { amount: number; currency: string } | null {
  const [first] = effect;
  return first ? { currency: first[0], amount: first[1] } : null;
}

/**
 * Turns an ordered stream of ledger events into facts. Stateful only for payouts (the posting and the
 * Stripe ids live in two events); bounded by the number of payouts in flight, capped.
 */
export class LedgerFactExtractor {
  private readonly payouts = new Map<
    string,
    {
      transferId?: string;
      stripePayoutId?: string;
      amount?: number;
      currency?: string;
      occurredAtMs?: number;
    }
  >();
  /** Posted stripe:balance per currency over every event seen (for the drift report). */
  readonly stripeBalance = new Map<string, number>();

  constructor(private readonly maxOpenPayouts = 100_000) {}

  extract(recorded: RecordedEvent): LedgerFact[] {
    const event = decodeEventOf(recorded, FACT_EVENT_TYPES);
    const effect = stripeBalanceEffect(event);
    for (const [currency, amount] of effect) {
      this.stripeBalance.set(currency, (this.stripeBalance.get(currency) ?? 0) + amount);
    }
    const occurredAtMs = Date.parse(event.metadata.occurredAt);
    const posted = single(effect);
    const fact = (key: string, side: LedgerFact['side'] = 'platform'): LedgerFact[] =>
      posted ? [{ key, side, amount: posted.amount, currency: posted.currency, occurredAtMs }] : [];
    switch (event.type) {
      case 'WalletToppedUp':
        return fact(event.data.paymentIntentId);
      case 'WalletRefundedToCard':
        return fact(event.data.stripeRefundId);
      case 'WalletCardRefundFailed':
        return fact(`${event.data.stripeRefundId}:failed`);
      case 'StripeFeeBooked':
        // The booked fee as a positive amount (it credits stripe:balance).
        return posted
          ? [
              {
                key: `fee:${event.data.stripeObjectId}`,
                side: 'platform',
                amount: -posted.amount,
                currency: posted.currency,
                occurredAtMs,
              },
            ]
          : [];
      case 'StripeDisputeOpened':
        return fact(`${event.data.stripeObjectId}:opened`);
      case 'StripeDisputeClosed':
        return event.data.outcome === 'won' ? fact(`${event.data.stripeObjectId}:won`) : [];
      case 'PayoutSubmitted':
      case 'PayoutPaid': {
        const d = event.data;
        const p = this.openPayout(d.payoutId);
        if (d.stripeTransferId !== null) p.transferId = d.stripeTransferId;
        if (d.stripePayoutId !== null) p.stripePayoutId = d.stripePayoutId;
        return this.completePayout(d.payoutId);
      }
      case 'TutorPayoutHoldPosted': {
        if (!posted) return [];
        const p = this.openPayout(event.data.payoutId);
        p.amount = posted.amount;
        p.currency = posted.currency;
        p.occurredAtMs = occurredAtMs;
        return this.completePayout(event.data.payoutId);
      }
      case 'LedgerAdjusted':
        return [];
    }
  }

  private openPayout(payoutId: string) {
    let p = this.payouts.get(payoutId);
    if (!p) {
      p = {};
      this.payouts.set(payoutId, p);
      if (this.payouts.size > this.maxOpenPayouts) {
        const oldest = this.payouts.keys().next().value;
        if (oldest !== undefined) this.payouts.delete(oldest);
      }
    }
    return p;
  }

  private completePayout(payoutId: string): LedgerFact[] {
    const p = this.payouts.get(payoutId);
    if (!p || p.amount === undefined || p.currency === undefined || p.occurredAtMs === undefined) return [];
    if (p.transferId === undefined) return [];
    const out: LedgerFact[] = [
      {
        key: p.transferId,
        side: 'platform',
        amount: p.amount,
        currency: p.currency,
        occurredAtMs: p.occurredAtMs,
      },
    ];
    if (p.stripePayoutId !== undefined) {
      out.push({
        key: p.stripePayoutId,
        side: 'connected',
        amount: p.amount,
        currency: p.currency,
        occurredAtMs: p.occurredAtMs,
      });
      this.payouts.delete(payoutId);
    }
    return out;
  }
}

/** Where the reconciler reads ledger facts from. */
export interface LedgerFactSource {
  /** Facts of `tenantId` (ordered by position) and, at the end, the ledger's stripe:balance per currency. */
  facts(tenantId: string): AsyncIterable<LedgerFact>;
  stripeBalance(): Map<string, number>;
}

/**
 * Reads the facts from the event store: `readAll` filtered to FACT_EVENT_TYPES, `pageSize` events at a
 * time, tenant filtered on metadata. Memory is the page plus the extractor's open payouts. The whole
 * history of those event types is read (the drift needs all of stripe:balance); a read model of
 * Stripe-linked entries is the next step when that gets long.
 */
export function eventStoreFactSource(
  store: EventStore,
  options: { pageSize?: number } = {},
): LedgerFactSource {
  const pageSize = options.pageSize ?? 1_000;
  invariant(pageSize >= 1 && pageSize <= 10_000, 'pageSize must be 1..10000');
  const extractor = new LedgerFactExtractor();
  return {
    async *facts(tenantId) {
      let after: bigint | undefined;
      for (;;) {
        const page = await store.readAll({
          maxCount: pageSize,
          filter: { eventTypes: [...FACT_EVENT_TYPES] },
          ...(after !== undefined ? { after } : {}),
        });
        for (const event of page) {
          if (event.metadata.tenantId !== tenantId) continue;
          // A duplicate key within a page (e.g. payout facts) is fine: the index keeps the last.
          for (const f of extractor.extract(event)) yield f;
        }
        // Only an empty page ends the read: a filtered read may return short pages before the end.
        const last = page[page.length - 1];
        if (!last) return;
        after = last.position;
      }
    },
    stripeBalance: () => extractor.stripeBalance,
  };
}
