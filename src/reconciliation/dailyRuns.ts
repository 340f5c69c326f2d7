import type { Logger } from '../commands/logger.js';
import { invariant } from '../domain/errors.js';
import { decodeEventOf } from '../domain/events.js';
import { deterministicId } from '../domain/ids.js';
import {
  type EventStore,
  IdempotencyViolationError,
  WrongExpectedRevisionError,
} from '../eventstore/port.js';
import type { Reconciler } from './reconciler.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const SETTINGS_EVENT_TYPES = ['TenantSettingsUpdated'] as const;

/** One daily run: the tenant's reconciliation of one UTC day, `[day, day + 24 h)`. */
export interface DailyRun {
  tenantId: string;
  /** `yyyy-mm-dd` (UTC). */
  day: string;
  runId: string;
  from: Date;
  to: Date;
}

export interface DailyRunOutcome {
  started: DailyRun[];
  /** Another process recorded the run first (the run's stream already existed). */
  skipped: DailyRun[];
  failed: { run: DailyRun; error: string }[];
}

export interface DailyReconciliationOptions {
  store: EventStore;
  reconciler: Reconciler;
  /** True when the run is recorded (any status): the read model, or the run's event stream. */
  runExists: (tenantId: string, runId: string) => Promise<boolean>;
  clock: () => Date;
  logger: Logger;
  /** Days missed while no process ran (an outage) that are still reconciled, oldest first; 1..31. */
  catchUpDays?: number;
  /** Bound on the runs one tick starts; the rest wait for the next tick. 1..100. */
  maxRunsPerTick?: number;
  pageSize?: number;
}

/** The run id of a tenant's daily run of a day: the same in every process, so a day runs once. */
export const dailyRunId = (tenantId: string, day: string): string =>
  deterministicId('reconciliation-daily', tenantId, day);

const utcDay = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;
const isoDay = (dayMs: number): string => new Date(dayMs).toISOString().slice(0, 10);

/**
 * The daily reconciliation with Stripe, per tenant setting `reconciliationDailyHourUtc` (tenant
 * settings): the run for day D covers `[D, D + 24 h)` UTC and is due at `D + 24 h + hour`. Days are
 * reconciled from the day the setting was switched on, at most `catchUpDays` back, so an outage leaves
 * no gap and switching the setting on does not reconcile the past.
 *
 * Exactly once across processes: the run id derives from tenant and day (dailyRunId), a recorded run
 * is never started again, and two processes racing on the same day write the same run stream with exact
 * expected revisions: the loser meets the winner's events and skips (or, when its events are
 * byte-identical to the winner's, its appends are the winner's own, as idempotent retries are). A run that failed stays recorded as failed
 * (GET /v1/reconciliation/runs shows it); a finance admin reruns that window with POST.
 */
export class DailyReconciliation {
  private readonly catchUpDays: number;
  private readonly maxRunsPerTick: number;
  private readonly pageSize: number;
  /** Per tenant: the hour of the daily run and since when it has been on (ms), or absent when off. */
  private readonly schedules = new Map<string, { hourUtc: number; sinceMs: number }>();
  private position = -1n;

  constructor(private readonly options: DailyReconciliationOptions) {
    this.catchUpDays = options.catchUpDays ?? 7;
    this.maxRunsPerTick = options.maxRunsPerTick ?? 10;
    this.pageSize = options.pageSize ?? 500;
    invariant(
      Number.isInteger(this.catchUpDays) && this.catchUpDays >= 1 && this.catchUpDays <= 31,
      'catchUpDays must be 1..31',
    );
    invariant(
      Number.isInteger(this.maxRunsPerTick) && this.maxRunsPerTick >= 1 && this.maxRunsPerTick <= 100,
      'maxRunsPerTick must be 1..100',
    );
  }

  /** The runs due at `now` that are not recorded yet, oldest day first (after catching up with the store). */
  async due(now: Date): Promise<DailyRun[]> {
    await this.catchUp();
    const nowMs = now.getTime();
    const due: DailyRun[] = [];
    for (const [tenantId, { hourUtc, sinceMs }] of [...this.schedules].sort(([a], [b]) =>
      a.localeCompare(b),
    )) {
      // The newest day whose run time has passed: D + 1 day + hour <= now.
      const newest = utcDay(nowMs - hourUtc * HOUR_MS) - DAY_MS;
      const oldest = Math.max(utcDay(sinceMs), newest - (this.catchUpDays - 1) * DAY_MS);
      for (let dayMs = oldest; dayMs <= newest; dayMs += DAY_MS) {
        const day = isoDay(dayMs);
        const runId = dailyRunId(tenantId, day);
        if (await this.options.runExists(tenantId, runId)) continue;
        due.push({ tenantId, day, runId, from: new Date(dayMs), to: new Date(dayMs + DAY_MS) });
      }
    }
    return due;
  }

  /** Starts the runs due now, one at a time, at most maxRunsPerTick. */
  async tick(): Promise<DailyRunOutcome> {
    const outcome: DailyRunOutcome = { started: [], skipped: [], failed: [] };
    const due = (await this.due(this.options.clock())).slice(0, this.maxRunsPerTick);
    for (const run of due) {
      try {
        await this.options.reconciler.run({
          tenantId: run.tenantId,
          scope: { from: run.from, to: run.to },
          runId: run.runId,
          actor: { id: 'scheduler', role: 'service' },
        });
        outcome.started.push(run);
        this.options.logger.info(
          { tenantId: run.tenantId, day: run.day, runId: run.runId },
          'daily reconciliation run',
        );
      } catch (error) {
        if (error instanceof WrongExpectedRevisionError || error instanceof IdempotencyViolationError) {
          outcome.skipped.push(run);
          continue;
        }
        const message = error instanceof Error ? error.message : String(error);
        outcome.failed.push({ run, error: message });
        this.options.logger.error(
          { tenantId: run.tenantId, day: run.day, runId: run.runId, err: message },
          'daily reconciliation run failed',
        );
      }
    }
    return outcome;
  }

  private async catchUp(): Promise<void> {
    for (;;) {
      const page = await this.options.store.readAll({
        ...(this.position >= 0n ? { after: this.position } : {}),
        maxCount: this.pageSize,
        filter: { eventTypes: [...SETTINGS_EVENT_TYPES] },
      });
      for (const recorded of page) {
        const event = decodeEventOf(recorded, SETTINGS_EVENT_TYPES);
        const hourUtc = event.data.settings.reconciliationDailyHourUtc ?? null;
        const current = this.schedules.get(event.tenantId);
        if (hourUtc === null) this.schedules.delete(event.tenantId);
        else if (current) current.hourUtc = hourUtc;
        else this.schedules.set(event.tenantId, { hourUtc, sinceMs: Date.parse(event.data.updatedAt) });
        this.position = recorded.position;
      }
      if (page.length < this.pageSize) return;
    }
  }
}

export interface DailyReconciliationHandle {
  tick(): Promise<DailyRunOutcome>;
  stop(): Promise<void>;
}

/** Ticks every `intervalMs` (never overlapping) until stopped. */
export function startDailyReconciliation(
  daily: DailyReconciliation,
  options: { intervalMs: number; logger: Logger },
): DailyReconciliationHandle {
  invariant(options.intervalMs >= 10, 'intervalMs must be >= 10');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = daily
        .tick()
        .catch((error: unknown) =>
          options.logger.error(
            { err: error instanceof Error ? error.message : String(error) },
            'daily reconciliation: pass failed',
          ),
        )
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, options.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    tick: () => daily.tick(),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
