import { invariant } from '../../domain/errors.js';
import type { FakeBalanceTransaction } from './types.js';

export interface CreatedRange {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
}

export interface BalanceTransactionQuery {
  limit: number;
  startingAfter?: string;
  endingBefore?: string;
  created?: CreatedRange;
  type?: string;
  source?: string;
  payout?: string;
}

/**
 * One account's balance and balance transactions, newest listed first like Stripe. Transactions are
 * kept in creation order (created never decreases: the fake's clock is monotonic per book), so a
 * `created` range is a binary search and a cursor is an index lookup. Bounded: past `maxTransactions`
 * the oldest are evicted (lists then simply start later; documented in fake/README.md).
 *
 * Funds are `pending` until the transaction's `available_on` (Stripe's settlement delay on card
 * charges), then `available`, with the transaction's `status` turning from pending to available; the
 * book settles lazily whenever its balance is read, on the clock it was given.
 */
export class BalanceBook {
  private txns: Array<FakeBalanceTransaction | undefined> = [];
  /** Absolute index of txns[0]; absolute indexes stay valid across compaction. */
  private base = 0;
  private evicted = 0;
  private readonly indexById = new Map<string, number>();
  private readonly byPayout = new Map<string, string[]>();
  private readonly unpaidOut = new Set<string>();
  private readonly availableBy = new Map<string, number>();
  private readonly pendingBy = new Map<string, number>();
  /** Pending transactions, ordered by available_on (then insertion). */
  private maturing: FakeBalanceTransaction[] = [];
  private lastCreated = 0;

  constructor(
    private readonly maxTransactions: number,
    private readonly nowSeconds: () => number,
  ) {
    invariant(Number.isSafeInteger(maxTransactions) && maxTransactions > 0, 'maxTransactions must be > 0');
  }

  /** Available funds per currency (settles what has matured first). */
  get available(): ReadonlyMap<string, number> {
    this.settle();
    return this.availableBy;
  }

  get pending(): ReadonlyMap<string, number> {
    this.settle();
    return this.pendingBy;
  }

  availableIn(currency: string): number {
    return this.available.get(currency) ?? 0;
  }

  /** Moves every pending transaction whose available_on has come to available. */
  settle(): void {
    const now = this.nowSeconds();
    let matured = 0;
    while (
      matured < this.maturing.length &&
      (this.maturing[matured] as FakeBalanceTransaction).available_on <= now
    )
      matured++;
    if (matured === 0) return;
    for (const txn of this.maturing.slice(0, matured)) {
      txn.status = 'available';
      bump(this.pendingBy, txn.currency, -txn.net);
      bump(this.availableBy, txn.currency, txn.net);
    }
    this.maturing = this.maturing.slice(matured);
  }

  /** Ends the wait of a pending transaction now (Stripe's instant availability for some test cards). */
  makeAvailable(id: string): void {
    const i = this.maturing.findIndex((t) => t.id === id);
    if (i === -1) return;
    const [txn] = this.maturing.splice(i, 1) as [FakeBalanceTransaction];
    txn.status = 'available';
    txn.available_on = this.nowSeconds();
    bump(this.pendingBy, txn.currency, -txn.net);
    bump(this.availableBy, txn.currency, txn.net);
  }

  get size(): number {
    return this.txns.length - this.evicted;
  }

  add(txn: FakeBalanceTransaction): void {
    invariant(txn.created >= this.lastCreated, 'balance transactions must be added in created order');
    this.lastCreated = txn.created;
    this.indexById.set(txn.id, this.base + this.txns.length);
    this.txns.push(txn);
    if (txn.status === 'pending') {
      bump(this.pendingBy, txn.currency, txn.net);
      let at = this.maturing.length;
      while (at > 0 && (this.maturing[at - 1] as FakeBalanceTransaction).available_on > txn.available_on)
        at--;
      this.maturing.splice(at, 0, txn);
    } else {
      bump(this.availableBy, txn.currency, txn.net);
    }
    this.unpaidOut.add(txn.id);
    if (this.size > this.maxTransactions) this.evictOldest();
  }

  get(id: string): FakeBalanceTransaction | undefined {
    const abs = this.indexById.get(id);
    return abs === undefined ? undefined : this.txns[abs - this.base];
  }

  /** Assigns every available transaction not yet paid out (and the payout's own) to the payout, as Stripe does. */
  assignToPayout(payoutId: string): void {
    this.settle();
    const settled: string[] = [];
    for (const id of this.unpaidOut) {
      if (this.get(id)?.status !== 'available') continue;
      settled.push(id);
      this.unpaidOut.delete(id);
    }
    this.byPayout.set(payoutId, settled);
  }

  /** The transactions a payout settled (its own included), oldest first. */
  payoutTransactions(payoutId: string): readonly string[] {
    return this.byPayout.get(payoutId) ?? [];
  }

  list(query: BalanceTransactionQuery): { data: FakeBalanceTransaction[]; hasMore: boolean } {
    const matches = (t: FakeBalanceTransaction): boolean =>
      (query.type === undefined || t.type === query.type) &&
      (query.source === undefined || t.source === query.source) &&
      inRange(t.created, query.created);
    if (query.payout !== undefined) {
      // Newest first within the payout's set.
      const ids = this.byPayout.get(query.payout) ?? [];
      const all: FakeBalanceTransaction[] = [];
      for (let i = ids.length - 1; i >= 0; i--) {
        const t = this.get(ids[i] as string);
        if (t && matches(t)) all.push(t);
      }
      let from = 0;
      if (query.startingAfter !== undefined) from = all.findIndex((t) => t.id === query.startingAfter) + 1;
      const page = all.slice(from, from + query.limit);
      return { data: page, hasMore: from + query.limit < all.length };
    }
    const first = this.base + this.evicted;
    if (query.endingBefore !== undefined) {
      const abs = this.indexById.get(query.endingBefore);
      if (abs === undefined) return { data: [], hasMore: false };
      const out: FakeBalanceTransaction[] = [];
      for (let i = abs + 1; i < this.base + this.txns.length && out.length <= query.limit; i++) {
        const t = this.txns[i - this.base];
        if (t && matches(t)) out.push(t);
      }
      const hasMore = out.length > query.limit;
      return { data: out.slice(0, query.limit).reverse(), hasMore };
    }
    let start = this.base + this.txns.length - 1;
    if (query.startingAfter !== undefined) {
      const abs = this.indexById.get(query.startingAfter);
      if (abs === undefined) return { data: [], hasMore: false };
      start = abs - 1;
    }
    const upper = upperBound(query.created);
    if (upper !== undefined) start = Math.min(start, this.lastIndexAtOrBelow(upper, first));
    const lower = lowerBound(query.created);
    const out: FakeBalanceTransaction[] = [];
    for (let i = start; i >= first && out.length <= query.limit; i--) {
      const t = this.txns[i - this.base];
      if (!t) continue;
      if (lower !== undefined && t.created < lower) break;
      if (matches(t)) out.push(t);
    }
    const hasMore = out.length > query.limit;
    return { data: out.slice(0, query.limit), hasMore };
  }

  private lastIndexAtOrBelow(createdMax: number, first: number): number {
    let lo = first;
    let hi = this.base + this.txns.length - 1;
    let answer = first - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const t = this.txns[mid - this.base];
      if (t && t.created <= createdMax) {
        answer = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return answer;
  }

  private evictOldest(): void {
    const t = this.txns[this.evicted];
    if (t) {
      this.indexById.delete(t.id);
      this.unpaidOut.delete(t.id);
    }
    this.txns[this.evicted] = undefined;
    this.evicted++;
    // Compact once half the array is holes, so eviction is amortised O(1).
    if (this.evicted > 1024 && this.evicted * 2 > this.txns.length) {
      this.txns = this.txns.slice(this.evicted);
      this.base += this.evicted;
      this.evicted = 0;
    }
  }
}

function bump(map: Map<string, number>, currency: string, delta: number): void {
  map.set(currency, (map.get(currency) ?? 0) + delta);
}

function inRange(created: number, range: CreatedRange | undefined): boolean {
  if (!range) return true;
  if (range.gt !== undefined && !(created > range.gt)) return false;
  if (range.gte !== undefined && !(created >= range.gte)) return false;
  if (range.lt !== undefined && !(created < range.lt)) return false;
  if (range.lte !== undefined && !(created <= range.lte)) return false;
  return true;
}

function upperBound(range: CreatedRange | undefined): number | undefined {
  if (!range) return undefined;
  const candidates: number[] = [];
  if (range.lt !== undefined) candidates.push(range.lt - 1);
  if (range.lte !== undefined) candidates.push(range.lte);
  return candidates.length === 0 ? undefined : Math.min(...candidates);
}

function lowerBound(range: CreatedRange | undefined): number | undefined {
  if (!range) return undefined;
  const candidates: number[] = [];
  if (range.gt !== undefined) candidates.push(range.gt + 1);
  if (range.gte !== undefined) candidates.push(range.gte);
  return candidates.length === 0 ? undefined : Math.max(...candidates);
}
