import { invariant } from '../domain/errors.js';
import type { LedgerFact } from './ledgerFacts.js';

/**
 * The ledger side of a run, in memory: one slot per fact key, with parallel arrays instead of one
 * object per fact (a million facts cost ~100 MB, not ~300). Capped at `maxEntries`; past it the run
 * fails with a clear message (narrow the window) instead of swapping the process to death.
 */
export class LedgerIndex {
  private readonly slots = new Map<string, number>();
  private readonly keys: string[] = [];
  private readonly amounts: number[] = [];
  private readonly currencies: string[] = [];
  private readonly occurredAt: number[] = [];
  /** bit 0: connected side; bit 1: matched by a balance transaction. */
  private readonly flags: number[] = [];

  constructor(private readonly maxEntries: number) {
    invariant(Number.isSafeInteger(maxEntries) && maxEntries > 0, 'maxEntries must be > 0');
  }

  get size(): number {
    return this.keys.length;
  }

  put(fact: LedgerFact): void {
    const existing = this.slots.get(fact.key);
    const slot = existing ?? this.keys.length;
    if (existing === undefined) {
      if (this.keys.length >= this.maxEntries) {
        throw new Error(
          `reconciliation index is full (${this.maxEntries} ledger facts): narrow the window or raise maxIndexEntries`,
        );
      }
      this.slots.set(fact.key, slot);
      this.keys.push(fact.key);
      this.flags.push(0);
      this.amounts.push(0);
      this.currencies.push('');
      this.occurredAt.push(0);
    }
    this.amounts[slot] = fact.amount;
    this.currencies[slot] = fact.currency;
    this.occurredAt[slot] = fact.occurredAtMs;
    this.flags[slot] = ((this.flags[slot] ?? 0) & 2) | (fact.side === 'connected' ? 1 : 0);
  }

  /** Looks a key up and marks it matched. */
  take(key: string): { amount: number; currency: string } | null {
    const slot = this.slots.get(key);
    if (slot === undefined) return null;
    this.flags[slot] = (this.flags[slot] ?? 0) | 2;
    return { amount: this.amounts[slot] as number, currency: this.currencies[slot] as string };
  }

  peek(key: string): { amount: number; currency: string } | null {
    const slot = this.slots.get(key);
    if (slot === undefined) return null;
    return { amount: this.amounts[slot] as number, currency: this.currencies[slot] as string };
  }

  /** Facts no balance transaction matched. */
  *unmatched(): Iterable<LedgerFact> {
    for (let i = 0; i < this.keys.length; i++) {
      const flags = this.flags[i] ?? 0;
      if (flags & 2) continue;
      yield {
        key: this.keys[i] as string,
        side: flags & 1 ? 'connected' : 'platform',
        amount: this.amounts[i] as number,
        currency: this.currencies[i] as string,
        occurredAtMs: this.occurredAt[i] as number,
      };
    }
  }
}
