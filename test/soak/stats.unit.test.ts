import { describe, expect, it } from 'vitest';
import { createRng } from '../../soak/rng.js';
import { Counter, LatencyReservoir, outcomeKey, percentile } from '../../soak/stats.js';

describe('latency percentiles', () => {
  it('uses the nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2, 3], 50)).toBe(2);
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile(xs, 101)).toThrow(RangeError);
  });

  it('keeps every sample up to its capacity, then a bounded reservoir with the true max', () => {
    const r = new LatencyReservoir(1_000, createRng(1));
    for (let i = 1; i <= 500; i++) r.add(i);
    expect(r.summary()).toEqual({ count: 500, p50Ms: 250, p99Ms: 495, maxMs: 500 });
    for (let i = 0; i < 50_000; i++) r.add(i % 100);
    r.add(10_000);
    const s = r.summary();
    expect(s.count).toBe(50_501);
    expect(s.maxMs).toBe(10_000);
    // Uniform 0..99 dominates: the reservoir's median lands near 50.
    expect(s.p50Ms).toBeGreaterThan(35);
    expect(s.p50Ms).toBeLessThan(65);
  });
});

describe('outcome keys and counters', () => {
  it('names status class, status and problem code, or the network failure', () => {
    expect(outcomeKey(201, null)).toBe('2xx 201');
    expect(outcomeKey(422, 'insufficient_funds')).toBe('4xx 422 insufficient_funds');
    expect(outcomeKey(0, 'econnrefused')).toBe('network econnrefused');
  });

  it('caps distinct keys', () => {
    const c = new Counter(2);
    c.add('a');
    c.add('b');
    c.add('c');
    c.add('a', 2);
    expect(c.entries()).toEqual([
      ['(other)', 1],
      ['a', 3],
      ['b', 1],
    ]);
    expect(c.total()).toBe(5);
  });
});
