/** Deterministic bench history shared by the fake's seeding (main.ts --bench-seed) and bench/reconcile.ts. */
export function benchSeedIds(i: number): {
  paymentIntent: string;
  charge: string;
  balanceTransaction: string;
} {
  const n = String(i).padStart(9, '0');
  return { paymentIntent: `pi_bench${n}`, charge: `ch_bench${n}`, balanceTransaction: `txn_bench${n}` };
}

export function benchSeedAmount(i: number): number {
  return 500 + ((i * 7_919) % 99_500);
}

/** Bench history starts here; 100 charges per second of `created`. */
export const BENCH_SEED_START = 1_760_000_000;
