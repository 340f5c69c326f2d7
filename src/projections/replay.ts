import { decodeEvent, entryOf } from '../domain/events.js';
import type { Actor } from '../domain/schema.js';
import type { EventStore } from '../eventstore/port.js';
import {
  applyPosting,
  availableOf,
  normalSideOf,
  pendingOf,
  postedOf,
  type Totals,
  ZERO_TOTALS,
} from './balances.js';

export interface ReplayLine {
  position: bigint;
  occurredAt: string;
  eventId: string;
  eventType: string;
  streamName: string;
  entryId: string;
  description: string;
  line: number;
  side: 'debit' | 'credit';
  effect: 'post' | 'hold' | 'release';
  amount: number;
  currency: string;
  balanceAfter: { posted: number; pending: number; available: number };
  versionAfter: number;
  correlationId: string;
  causationId: string;
  actor: Actor;
}

export interface ReplayOptions {
  store: EventStore;
  tenantId: string;
  account: string;
  /** Inclusive bound: by global position, or by the events' occurredAt. */
  until?: { position: bigint } | { time: Date };
  /** Events per readAll page (≤ 10 000). */
  pageSize?: number;
}

/**
 * An account's history for audits, recomputed from the events themselves (not from the read models):
 * every posting line on the account in global order with the running totals after it, the event that
 * caused it and who acted. Balances are per currency.
 */
export async function* replayAccount(options: ReplayOptions): AsyncGenerator<ReplayLine> {
  const pageSize = options.pageSize ?? 5_000;
  const until = options.until;
  const totals = new Map<string, Totals & { version: number }>();
  const side = normalSideOf(options.account);
  let after: bigint | undefined;
  for (;;) {
    const page = await options.store.readAll({
      ...(after !== undefined ? { after } : {}),
      maxCount: pageSize,
    });
    if (page.length === 0) return;
    for (const event of page) {
      after = event.position;
      if (until && 'position' in until && event.position > until.position) return;
      if (until && 'time' in until && Date.parse(event.metadata.occurredAt) > until.time.getTime()) continue;
      if (event.metadata.tenantId !== options.tenantId) continue;
      const entry = entryOf(decodeEvent(event));
      if (!entry?.postings.some((p) => p.account === options.account)) continue;
      const bumped = new Set<string>();
      for (const [line, p] of entry.postings.entries()) {
        if (p.account !== options.account) continue;
        const current = totals.get(p.currency) ?? { ...ZERO_TOTALS, version: 0 };
        const version = bumped.has(p.currency) ? current.version : current.version + 1;
        bumped.add(p.currency);
        const next = { ...applyPosting(current, p), version };
        totals.set(p.currency, next);
        yield {
          position: event.position,
          occurredAt: event.metadata.occurredAt,
          eventId: event.id,
          eventType: event.type,
          streamName: event.streamName,
          entryId: entry.entryId,
          description: entry.description,
          line,
          side: p.side,
          effect: p.effect,
          amount: p.amount,
          currency: p.currency,
          balanceAfter: {
            posted: postedOf(next, side),
            pending: pendingOf(next, side),
            available: availableOf(next, side),
          },
          versionAfter: version,
          correlationId: event.metadata.correlationId,
          causationId: event.metadata.causationId,
          actor: event.metadata.actor,
        };
      }
    }
  }
}
