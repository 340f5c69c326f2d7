/**
 * Fault windows and the rule that decides whether a server error is excused by one. A window opens
 * when a fault is injected and closes when the system is healthy again (the restarted process answers
 * /readyz, the fake Stripe is back to normal); errors are excused while it is open and for a grace
 * period after it closes (clients draining retries, circuit breakers half-opening).
 */
export type FaultKind =
  | 'app_kill'
  | 'postgres_restart'
  | 'redis_stop'
  | 'stripe_500'
  | 'stripe_429'
  | 'stripe_timeout'
  | 'stripe_duplicate_webhooks'
  | 'stripe_reorder_webhooks';

export interface FaultWindow {
  kind: FaultKind;
  detail: string;
  startMs: number;
  /** null while the fault is still in effect. */
  endMs: number | null;
  graceMs: number;
}

/** Grace after a window closes, per kind: Stripe faults also cover the adapter's breaker cool-down. */
export const GRACE_MS: Readonly<Record<FaultKind, number>> = {
  app_kill: 5_000,
  postgres_restart: 8_000,
  redis_stop: 8_000,
  stripe_500: 35_000,
  stripe_429: 35_000,
  stripe_timeout: 35_000,
  stripe_duplicate_webhooks: 5_000,
  stripe_reorder_webhooks: 5_000,
};

/** True when [startMs, endMs] of a request overlaps any window extended by its grace. */
export function excusedBy(
  request: { startMs: number; endMs: number },
  windows: readonly FaultWindow[],
): FaultWindow | null {
  for (const w of windows) {
    const until = w.endMs === null ? Number.POSITIVE_INFINITY : w.endMs + w.graceMs;
    if (request.endMs >= w.startMs && request.startMs <= until) return w;
  }
  return null;
}

export class FaultLog {
  readonly windows: FaultWindow[] = [];

  open(kind: FaultKind, detail: string, nowMs: number, graceMs = GRACE_MS[kind]): FaultWindow {
    const w: FaultWindow = { kind, detail, startMs: nowMs, endMs: null, graceMs };
    this.windows.push(w);
    return w;
  }

  close(window: FaultWindow, nowMs: number): void {
    if (window.endMs !== null) throw new Error(`fault window ${window.kind} closed twice`);
    window.endMs = nowMs;
  }

  /** Closes anything still open (a run aborted in the middle of a fault). */
  closeAll(nowMs: number): void {
    for (const w of this.windows) if (w.endMs === null) w.endMs = nowMs;
  }

  countsByKind(): Map<FaultKind, number> {
    const m = new Map<FaultKind, number>();
    for (const w of this.windows) m.set(w.kind, (m.get(w.kind) ?? 0) + 1);
    return m;
  }
}
