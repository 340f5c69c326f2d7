/** Bounded exponential backoff with full jitter (AWS architecture blog): delay in [0, min(cap, base*2^n)). */
export interface BackoffOptions {
  baseDelayMs: number;
  maxDelayMs: number;
}

export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
