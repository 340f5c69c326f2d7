import type { AppProcess } from './app.js';
import type { FaultKind, FaultLog } from './faults.js';
import type { PrivatePostgres } from './postgres.js';
import { sleep, waitUntil } from './proc.js';
import type { PrivateRedis } from './redis.js';
import type { Rng } from './rng.js';
import type { SoakStripe } from './stripe.js';

export interface ChaosTargets {
  apps: AppProcess[];
  postgres: PrivatePostgres | null;
  redis: PrivateRedis | null;
  stripe: SoakStripe | null;
}

/** Which faults a stack supports: embedded (PGlite, no Redis) only loses its app process. */
export function faultCycle(
  targets: Pick<ChaosTargets, 'postgres' | 'redis' | 'stripe'>,
  embedded: boolean,
): FaultKind[] {
  // Ordered so that a short run (--ci) still meets each kind of outside failure once.
  const stripe = !embedded && targets.stripe !== null;
  const cycle: FaultKind[] = ['app_kill'];
  if (targets.postgres) cycle.push('postgres_restart');
  if (stripe) cycle.push('stripe_500');
  if (targets.redis) cycle.push('redis_stop');
  if (stripe) cycle.push('stripe_duplicate_webhooks');
  cycle.push('app_kill');
  if (stripe) cycle.push('stripe_429', 'stripe_reorder_webhooks', 'stripe_timeout');
  return cycle;
}

/**
 * Plans fault start offsets inside the workload: none in the first 10% (warm-up) nor the last 25% (so
 * the system is quiet before the final checks), evenly spaced, one fault at a time, cycling through the
 * stack's kinds. Pure, for tests.
 */
export function planFaults(
  workloadMs: number,
  cycle: readonly FaultKind[],
  meanFaultMs: number,
): Array<{ atMs: number; kind: FaultKind }> {
  const from = workloadMs * 0.1;
  const until = workloadMs * 0.75;
  // Faults run one after another, so a slow one (an app restart) only delays the next.
  const slotMs = Math.max(meanFaultMs, 4_000);
  const count = Math.max(1, Math.min(200, Math.floor((until - from) / slotMs)));
  const step = (until - from) / count;
  return Array.from({ length: count }, (_, i) => ({
    atMs: Math.round(from + i * step),
    kind: cycle[i % cycle.length]!,
  }));
}

export interface ChaosOptions {
  t0Ms: number;
  plan: Array<{ atMs: number; kind: FaultKind }>;
  faults: FaultLog;
  targets: ChaosTargets;
  rng: Rng;
  aborted: () => boolean;
  /** How long an app start / readiness may take. */
  appStartTimeoutMs: number;
  /** Short fault durations for --ci. */
  holdMs: number;
  /** No new fault starts after this (the system must be quiet before the final checks). */
  stopInjectingAtMs: number;
  log: (line: string) => void;
}

/** Runs the plan in order; each fault's window stays open until the system reports healthy again. */
export async function runChaos(o: ChaosOptions): Promise<void> {
  for (const step of o.plan) {
    while (!o.aborted() && Date.now() < o.t0Ms + step.atMs)
      await sleep(Math.min(250, o.t0Ms + step.atMs - Date.now()));
    if (o.aborted()) return;
    if (Date.now() >= o.stopInjectingAtMs) {
      o.log(`fault plan: ${step.kind} and later steps not injected (past the injection window)`);
      return;
    }
    await inject(step.kind, o);
  }
}

async function inject(kind: FaultKind, o: ChaosOptions): Promise<void> {
  const { targets, faults } = o;
  const allReady = () =>
    waitUntil(async () => (await Promise.all(targets.apps.map((a) => a.ready()))).every(Boolean), {
      timeoutMs: o.appStartTimeoutMs,
      intervalMs: 200,
    });
  switch (kind) {
    case 'app_kill': {
      const app = o.rng.pick(targets.apps);
      const w = faults.open(kind, `kill -9 ${app.name} (pid ${app.pid})`, Date.now());
      await app.kill9();
      await sleep(o.rng.int(300, 1_500));
      await app.start(o.appStartTimeoutMs);
      faults.close(w, Date.now());
      o.log(`fault: ${w.detail}, back after ${((w.endMs! - w.startMs) / 1000).toFixed(1)} s`);
      return;
    }
    case 'postgres_restart': {
      const pg = targets.postgres!;
      const w = faults.open(kind, 'PostgreSQL crash (pg_ctl stop -m immediate) and restart', Date.now());
      await pg.stop('immediate');
      await sleep(o.holdMs / 2);
      await pg.start();
      const ok = await allReady();
      faults.close(w, Date.now());
      o.log(
        `fault: ${w.detail}, apps ready again: ${ok} after ${((w.endMs! - w.startMs) / 1000).toFixed(1)} s`,
      );
      return;
    }
    case 'redis_stop': {
      const redis = targets.redis!;
      const w = faults.open(
        kind,
        `Redis stopped for ${(o.holdMs / 1000).toFixed(0)} s (contents lost)`,
        Date.now(),
      );
      await redis.stop();
      await sleep(o.holdMs);
      await redis.start();
      const ok = await allReady();
      faults.close(w, Date.now());
      o.log(`fault: ${w.detail}, apps ready again: ${ok}`);
      return;
    }
    case 'stripe_500':
    case 'stripe_429': {
      const stripe = targets.stripe!;
      const status = kind === 'stripe_500' ? 500 : 429;
      const count = o.rng.int(3, 8);
      const phase = o.rng.chance(0.5) ? 'before' : 'after';
      const w = faults.open(
        kind,
        `fake Stripe: next ${count} calls -> ${status} (${phase} processing)`,
        Date.now(),
      );
      stripe.failNext(count, status, phase);
      await waitUntil(async () => (await stripe.stats()).pendingFaults === 0, {
        timeoutMs: o.holdMs * 2,
        intervalMs: 250,
      });
      stripe.clearFaults();
      faults.close(w, Date.now());
      o.log(`fault: ${w.detail}`);
      return;
    }
    case 'stripe_timeout': {
      const stripe = targets.stripe!;
      const count = o.rng.int(2, 4);
      const delayMs = 20_000;
      const w = faults.open(
        kind,
        `fake Stripe: next ${count} calls answered after ${delayMs / 1000} s`,
        Date.now(),
      );
      stripe.delayNext(count, delayMs);
      // The delayed answers arrive up to delayMs after the last delayed call started.
      await sleep(o.holdMs + delayMs);
      stripe.clearFaults();
      faults.close(w, Date.now());
      o.log(`fault: ${w.detail}`);
      return;
    }
    case 'stripe_duplicate_webhooks':
    case 'stripe_reorder_webhooks': {
      const stripe = targets.stripe!;
      const duplicate = kind === 'stripe_duplicate_webhooks';
      const w = faults.open(
        kind,
        `fake Stripe: ${duplicate ? 'every webhook delivered twice' : 'webhooks held, then delivered newest first'} for ${(o.holdMs / 1000).toFixed(0)} s`,
        Date.now(),
      );
      stripe.webhookFaults(duplicate ? { duplicate: true } : { reorder: true });
      await sleep(o.holdMs);
      stripe.clearFaults();
      await stripe.flushWebhooks(20_000);
      faults.close(w, Date.now());
      o.log(`fault: ${w.detail}`);
      return;
    }
  }
}
