import type { EventStore, RecordedEvent } from '../../src/eventstore/port.js';

/**
 * An independent fold of every event's journal entry (written for the tests, not shared with src/domain,
 * so the property tests check the domain instead of repeating it). It asserts the invariants of docs/architecture.md
 * 1, 2, 4, 5, 6 (capture <= hold) and 9 at every position, and exposes the totals for the model checks.
 */
export interface Totals {
  debitsPending: number;
  debitsPosted: number;
  creditsPending: number;
  creditsPosted: number;
  /** Entries that touched the account (its version). */
  version: number;
}

interface PostingLike {
  account: string;
  side: 'debit' | 'credit';
  effect: 'post' | 'hold' | 'release';
  amount: number;
  currency: string;
}

interface EntryLike {
  entryId: string;
  holdId?: string;
  postings: PostingLike[];
}

export interface HoldRecord {
  holdId: string;
  amount: number;
  /** Position of the entry that resolved the hold (undefined while pending). */
  resolvedAt?: bigint;
  /** Posted out of the held account by the resolving entry (capture or fee). */
  posted: number;
}

export class LedgerFold {
  readonly totals = new Map<string, Totals>();
  readonly holds = new Map<string, HoldRecord>();
  readonly entryIds = new Set<string>();
  position = -1n;
  events = 0;

  static key(tenantId: string, account: string, currency: string): string {
    return `${tenantId}|${account}|${currency}`;
  }

  /** Reads every event after the last folded one, in pages, and folds it (asserting as it goes). */
  async catchUp(store: EventStore): Promise<RecordedEvent[]> {
    const fresh: RecordedEvent[] = [];
    for (;;) {
      const page = await store.readAll({
        after: this.position < 0n ? undefined : this.position,
        maxCount: 1000,
      });
      for (const e of page) {
        this.apply(e);
        fresh.push(e);
      }
      if (page.length < 1000) return fresh;
    }
  }

  apply(event: RecordedEvent): void {
    if (event.position <= this.position) throw new Error(`positions not increasing at ${event.position}`);
    this.position = event.position;
    this.events++;
    const entry = event.data.entry as unknown as EntryLike | undefined;
    if (!entry) return;
    const where = `${event.type} at ${event.position}`;
    if (this.entryIds.has(`${event.metadata.tenantId}|${entry.entryId}`)) {
      throw new Error(`${where}: entry id ${entry.entryId} used twice`);
    }
    this.entryIds.add(`${event.metadata.tenantId}|${entry.entryId}`);
    // Invariant 1: the entry balances per currency and effect.
    const sums = new Map<string, number>();
    for (const p of entry.postings) {
      if (!Number.isSafeInteger(p.amount) || p.amount <= 0)
        throw new Error(`${where}: bad amount ${p.amount}`);
      const k = `${p.currency}/${p.effect}`;
      sums.set(k, (sums.get(k) ?? 0) + (p.side === 'debit' ? p.amount : -p.amount));
    }
    for (const [k, v] of sums) if (v !== 0) throw new Error(`${where}: unbalanced ${k} by ${v}`);
    // Invariant 5: holds are placed once, resolve at most once, release exactly what was held.
    if (entry.holdId) this.applyHold(entry, where, event.position);
    const touched = new Set<string>();
    for (const p of entry.postings) {
      const key = LedgerFold.key(event.metadata.tenantId, p.account, p.currency);
      const before = this.totals.get(key) ?? {
        debitsPending: 0,
        debitsPosted: 0,
        creditsPending: 0,
        creditsPosted: 0,
        version: 0,
      };
      const next = { ...before };
      const field =
        p.effect === 'post'
          ? p.side === 'debit'
            ? 'debitsPosted'
            : 'creditsPosted'
          : p.side === 'debit'
            ? 'debitsPending'
            : 'creditsPending';
      next[field] += p.effect === 'release' ? -p.amount : p.amount;
      if (next.debitsPending < 0 || next.creditsPending < 0) {
        throw new Error(`${where}: pending of ${p.account} below zero`);
      }
      // Invariant 9: posted totals never decrease (by construction of effects; checked anyway).
      if (next.debitsPosted < before.debitsPosted || next.creditsPosted < before.creditsPosted) {
        throw new Error(`${where}: posted totals of ${p.account} decreased`);
      }
      if (!touched.has(key)) {
        next.version = before.version + 1;
        touched.add(key);
      }
      this.totals.set(key, next);
    }
    // Invariant 4: constrained accounts never below zero available, after every entry.
    for (const key of touched) {
      const account = key.split('|')[1]!;
      if (isConstrained(account)) {
        const t = this.totals.get(key)!;
        const available = t.creditsPosted - t.debitsPosted - t.debitsPending;
        if (available < 0) throw new Error(`${where}: ${account} available ${available} < 0`);
      }
    }
    // Invariant 2: trial balance zero per currency (posted and pending) at every position.
    this.assertTrialBalance(where);
  }

  private applyHold(entry: EntryLike, where: string, position: bigint): void {
    const holdLines = entry.postings.filter((p) => p.effect === 'hold');
    const releaseLines = entry.postings.filter((p) => p.effect === 'release');
    const holdId = entry.holdId!;
    if (holdLines.length > 0) {
      if (this.holds.has(holdId)) throw new Error(`${where}: hold ${holdId} placed twice`);
      const debit = holdLines.find((p) => p.side === 'debit')!;
      this.holds.set(holdId, { holdId, amount: debit.amount, posted: 0 });
      return;
    }
    if (releaseLines.length > 0) {
      const hold = this.holds.get(holdId);
      if (!hold) throw new Error(`${where}: hold ${holdId} resolved but never placed`);
      if (hold.resolvedAt !== undefined) throw new Error(`${where}: hold ${holdId} resolved twice`);
      const released = releaseLines.find((p) => p.side === 'debit')!;
      if (released.amount !== hold.amount) {
        throw new Error(`${where}: hold ${holdId} released ${released.amount} of ${hold.amount}`);
      }
      // What the resolving entry posts out of the held account: the capture (or fee), never above the hold.
      const posted = entry.postings
        .filter((p) => p.effect === 'post' && p.side === 'debit' && p.account === released.account)
        .reduce((s, p) => s + p.amount, 0);
      if (posted > hold.amount)
        throw new Error(`${where}: hold ${holdId} captured ${posted} > ${hold.amount}`);
      hold.resolvedAt = position;
      hold.posted = posted;
    }
  }

  assertTrialBalance(where: string): void {
    const sums = new Map<string, { posted: number; pending: number }>();
    for (const [key, t] of this.totals) {
      const [tenant, , currency] = key.split('|');
      const k = `${tenant}|${currency}`;
      const s = sums.get(k) ?? { posted: 0, pending: 0 };
      s.posted += t.debitsPosted - t.creditsPosted;
      s.pending += t.debitsPending - t.creditsPending;
      sums.set(k, s);
    }
    for (const [k, s] of sums) {
      if (s.posted !== 0 || s.pending !== 0) {
        throw new Error(`${where}: trial balance of ${k} is posted ${s.posted}, pending ${s.pending}`);
      }
    }
  }

  get(tenantId: string, account: string, currency: string): Totals {
    return (
      this.totals.get(LedgerFold.key(tenantId, account, currency)) ?? {
        debitsPending: 0,
        debitsPosted: 0,
        creditsPending: 0,
        creditsPosted: 0,
        version: 0,
      }
    );
  }

  /** Credit-normal available: credits_posted - debits_posted - debits_pending. */
  available(tenantId: string, account: string, currency: string): number {
    const t = this.get(tenantId, account, currency);
    return t.creditsPosted - t.debitsPosted - t.debitsPending;
  }

  /** Credit-normal posted balance. */
  creditBalance(tenantId: string, account: string, currency: string): number {
    const t = this.get(tenantId, account, currency);
    return t.creditsPosted - t.debitsPosted;
  }

  /** Debit-normal posted balance. */
  debitBalance(tenantId: string, account: string, currency: string): number {
    const t = this.get(tenantId, account, currency);
    return t.debitsPosted - t.creditsPosted;
  }

  /** Posted and pending both zero (a clearing account whose flow completed). */
  isZero(tenantId: string, account: string, currency: string): boolean {
    const t = this.get(tenantId, account, currency);
    return t.debitsPosted === t.creditsPosted && t.debitsPending === 0 && t.creditsPending === 0;
  }
}

function isConstrained(account: string): boolean {
  return /^student:[^:]+:wallet$/.test(account) || /^tutor:[^:]+:earnings:available$/.test(account);
}
