import { invariant } from '../domain/errors.js';
import type { LedgerFact } from './ledgerFacts.js';

/**
 * The ledger side of a run in memory, without keeping the keys: an open-addressing hash table over
 * typed arrays, keyed by a 64-bit hash of the fact key (two independent 32-bit FNV-1a variants), with
 * the amount, currency, time and flags beside it. About 23 bytes per slot at most 70% full (a million
 * top-ups with their fees: ~100 MB), against ~250 bytes for a Map of strings to objects. The reconciler finds the
 * keys of unmatched facts with a second pass over the fact source (`isUnmatched`).
 *
 * A 64-bit collision between two of n keys has probability ~n^2/2^65 (1e-7 at two million facts); it
 * would make one fact shadow another, which the next run (different window) would surface.
 * Capped at `maxEntries`: past it the run fails with a clear message instead of exhausting memory.
 */
export class LedgerIndex {
  private capacity = 1 << 12;
  private hi = new Uint32Array(this.capacity);
  private lo = new Uint32Array(this.capacity);
  private amounts = new Float64Array(this.capacity);
  /** Seconds (the window check is at second precision, like Stripe's `created`). */
  private occurredAt = new Uint32Array(this.capacity);
  private currency = new Uint16Array(this.capacity);
  /** bit 0: used; bit 1: connected side; bit 2: matched by a balance transaction; bit 3: reported. */
  private flags = new Uint8Array(this.capacity);
  private count = 0;
  private readonly currencies: string[] = [];
  private readonly currencyIndex = new Map<string, number>();

  constructor(private readonly maxEntries: number) {
    invariant(Number.isSafeInteger(maxEntries) && maxEntries > 0, 'maxEntries must be > 0');
  }

  get size(): number {
    return this.count;
  }

  put(fact: LedgerFact): void {
    let slot = this.find(fact.key);
    if (slot < 0) {
      if (this.count >= this.maxEntries) {
        throw new Error(
          `reconciliation index is full (${this.maxEntries} ledger facts): narrow the window or raise maxIndexEntries`,
        );
      }
      // Growing moves every slot: find the free slot again in the new table.
      if (this.count + 1 > this.capacity * 0.7) {
        this.grow();
        slot = this.find(fact.key);
      }
      slot = -slot - 1;
      const [h, l] = hash64(fact.key);
      this.hi[slot] = h;
      this.lo[slot] = l;
      this.flags[slot] = 1;
      this.count++;
    }
    this.amounts[slot] = fact.amount;
    this.occurredAt[slot] = Math.max(0, Math.floor(fact.occurredAtMs / 1_000));
    this.currency[slot] = this.currencyId(fact.currency);
    this.flags[slot] = ((this.flags[slot] as number) & ~2) | (fact.side === 'connected' ? 2 : 0);
  }

  /** Looks a key up and marks it matched. */
  take(key: string): { amount: number; currency: string } | null {
    const slot = this.find(key);
    if (slot < 0) return null;
    this.flags[slot] = (this.flags[slot] as number) | 4;
    return this.read(slot);
  }

  peek(key: string): { amount: number; currency: string } | null {
    const slot = this.find(key);
    return slot < 0 ? null : this.read(slot);
  }

  /** True (once per key) when the key is indexed and no transaction matched it. */
  reportUnmatched(key: string): boolean {
    const slot = this.find(key);
    if (slot < 0) return false;
    const f = this.flags[slot] as number;
    if (f & (4 | 8)) return false;
    this.flags[slot] = f | 8;
    return true;
  }

  private read(slot: number): { amount: number; currency: string } {
    return {
      amount: this.amounts[slot] as number,
      currency: this.currencies[this.currency[slot] as number] as string,
    };
  }

  private currencyId(code: string): number {
    let id = this.currencyIndex.get(code);
    if (id === undefined) {
      id = this.currencies.length;
      invariant(id < 65_536, 'too many currencies');
      this.currencies.push(code);
      this.currencyIndex.set(code, id);
    }
    return id;
  }

  /** Slot of the key (>= 0), or -(free slot) - 1 where it would go. */
  private find(key: string): number {
    const [h, l] = hash64(key);
    const mask = this.capacity - 1;
    let slot = (h ^ l) & mask;
    for (;;) {
      const f = this.flags[slot] as number;
      if (!(f & 1)) return -slot - 1;
      if (this.hi[slot] === h && this.lo[slot] === l) return slot;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const old = {
      hi: this.hi,
      lo: this.lo,
      amounts: this.amounts,
      occurredAt: this.occurredAt,
      currency: this.currency,
      flags: this.flags,
      capacity: this.capacity,
    };
    this.capacity *= 2;
    this.hi = new Uint32Array(this.capacity);
    this.lo = new Uint32Array(this.capacity);
    this.amounts = new Float64Array(this.capacity);
    this.occurredAt = new Uint32Array(this.capacity);
    this.currency = new Uint16Array(this.capacity);
    this.flags = new Uint8Array(this.capacity);
    const mask = this.capacity - 1;
    for (let i = 0; i < old.capacity; i++) {
      const f = old.flags[i] as number;
      if (!(f & 1)) continue;
      const h = old.hi[i] as number;
      const l = old.lo[i] as number;
      let slot = (h ^ l) & mask;
      while ((this.flags[slot] as number) & 1) slot = (slot + 1) & mask;
      this.hi[slot] = h;
      this.lo[slot] = l;
      this.amounts[slot] = old.amounts[i] as number;
      this.occurredAt[slot] = old.occurredAt[i] as number;
      this.currency[slot] = old.currency[i] as number;
      this.flags[slot] = f;
    }
  }
}

/** Two independent 32-bit FNV-1a hashes (different offset bases and primes) of a string's UTF-16 units. */
export function hash64(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return [a >>> 0, b >>> 0];
}
