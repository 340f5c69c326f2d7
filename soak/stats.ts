import type { Rng } from './rng.js';

/** Nearest-rank percentile of an ascending-sorted list (p in 0..100); NaN for an empty list. */
export function percentile(sortedAscending: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in 0..100, got ${p}`);
  const n = sortedAscending.length;
  if (n === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sortedAscending[rank - 1]!;
}

/**
 * Latency samples with bounded memory: keeps every sample up to `capacity`, then a uniform reservoir
 * sample (Algorithm R), so long soaks still report honest percentiles without growing without bound.
 */
export class LatencyReservoir {
  private readonly samples: number[] = [];
  private seen = 0;
  private maxMs = 0;

  constructor(
    private readonly capacity: number,
    private readonly rng: Rng,
  ) {
    if (!(capacity >= 1)) throw new RangeError('capacity must be >= 1');
  }

  add(latencyMs: number): void {
    this.seen++;
    if (latencyMs > this.maxMs) this.maxMs = latencyMs;
    if (this.samples.length < this.capacity) {
      this.samples.push(latencyMs);
      return;
    }
    const slot = Math.floor(this.rng.next() * this.seen);
    if (slot < this.capacity) this.samples[slot] = latencyMs;
  }

  get count(): number {
    return this.seen;
  }

  summary(): { count: number; p50Ms: number; p99Ms: number; maxMs: number } {
    const sorted = [...this.samples].sort((a, b) => a - b);
    return {
      count: this.seen,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: this.maxMs,
    };
  }
}

/** Outcome key of one HTTP attempt: status class plus problem code, or the network failure kind. */
export function outcomeKey(status: number, code: string | null): string {
  if (status === 0) return `network ${code ?? 'error'}`;
  const cls = `${Math.floor(status / 100)}xx`;
  return code ? `${cls} ${status} ${code}` : `${cls} ${status}`;
}

/** Counter keyed by string with a cap on distinct keys, so odd problem codes cannot grow it unboundedly. */
export class Counter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly maxKeys = 500) {}

  add(key: string, by = 1): void {
    const k = this.counts.has(key) || this.counts.size < this.maxKeys ? key : '(other)';
    this.counts.set(k, (this.counts.get(k) ?? 0) + by);
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  total(): number {
    let sum = 0;
    for (const v of this.counts.values()) sum += v;
    return sum;
  }

  entries(): Array<[string, number]> {
    return [...this.counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
}
