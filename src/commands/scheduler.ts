import { bookingDecider } from '../domain/booking.js';
import { DomainError } from '../domain/errors.js';
import { bookingStream, tutorStream } from '../domain/streams.js';
import { tutorDecider } from '../domain/tutor.js';
import type { EventStore } from '../eventstore/port.js';
import type { CommandHandler } from './commandHandler.js';
import type { CommandContext } from './context.js';
import { type DueTask, DueTaskIndex } from './dueTaskIndex.js';
import { entryIdFor, triggerOf } from './flowContext.js';
import type { FlowSteps } from './flowSteps.js';
import { type Logger, silentLogger } from './logger.js';

/** Bound on tasks one runDueTasks call performs; the rest wait for the next tick. */
const MAX_TASKS_PER_RUN = 10_000;
const PAGE = 500;

/** What the scheduler asks of the subscriptions (SubscriptionService). */
export interface SubscriptionTasks {
  renew(
    tenantId: string,
    subscriptionId: string,
    period: number,
    attempt: number,
    now: Date,
  ): Promise<boolean>;
  recognize(tenantId: string, subscriptionId: string, now: Date): Promise<boolean>;
}

export interface DueTaskCounts {
  expiredHolds: number;
  clearedEarnings: number;
}

/**
 * Performs due time-driven transitions: hold expiry (`expire:{bookingId}`), earnings clearing
 * (`clear:{bookingId}`), the next attempt of payouts waiting for Stripe funds (`resubmit:{payoutId}`),
 * subscription renewals (`renew:{subscriptionId}:{period}`, retries `…:retry{n}`) and daily revenue
 * recognition (`recognize:{subscriptionId}:{period}:{day}`). Each is a command whose idempotency key is the task key, so running a task
 * twice, from two processes, or after a crash appends nothing new. `now` is passed in (injected clock).
 */
export class DueTaskRunner {
  readonly index: DueTaskIndex;
  private readonly handler: CommandHandler;
  private readonly steps: FlowSteps;

  private readonly resubmitPayout:
    | ((tenantId: string, payoutId: string, now: Date) => Promise<boolean>)
    | undefined;
  private readonly subscriptions: SubscriptionTasks | undefined;

  constructor(options: {
    store: EventStore;
    handler: CommandHandler;
    steps: FlowSteps;
    /** The next attempt of a payout waiting for Stripe funds (LedgerService.resubmitPayout). */
    resubmitPayout?: (tenantId: string, payoutId: string, now: Date) => Promise<boolean>;
    /** Renewals and revenue recognition of subscriptions (subscriptions.ts). */
    subscriptions?: SubscriptionTasks;
  }) {
    this.index = new DueTaskIndex(options.store);
    this.handler = options.handler;
    this.steps = options.steps;
    this.resubmitPayout = options.resubmitPayout;
    this.subscriptions = options.subscriptions;
  }

  /** Tenants that have pending tasks (after catching up with the store). */
  async tenants(): Promise<string[]> {
    await this.index.catchUp();
    return this.index.tenants();
  }

  async run(tenantId: string, now: Date): Promise<DueTaskCounts> {
    const counts: DueTaskCounts = { expiredHolds: 0, clearedEarnings: 0 };
    await this.index.catchUp();
    let performed = 0;
    while (performed < MAX_TASKS_PER_RUN) {
      const due = this.index.due(tenantId, now.getTime(), PAGE);
      if (due.length === 0) break;
      for (const task of due) {
        performed++;
        if (await this.perform(task, now)) {
          if (task.kind === 'expire') counts.expiredHolds++;
          else if (task.kind === 'clear') counts.clearedEarnings++;
        }
        this.index.removeTask(task);
      }
    }
    return counts;
  }

  /** True when this call appended the transition (false: done before, or moot). */
  private async perform(task: DueTask, now: Date): Promise<boolean> {
    const ctx: CommandContext = {
      tenantId: task.tenantId,
      actor: { id: 'scheduler', role: 'service' },
      idempotencyKey: task.key,
      correlationId: task.key,
      causationId: task.key,
    };
    if (task.kind === 'resubmit') {
      return this.resubmitPayout ? this.resubmitPayout(task.tenantId, task.payoutId, now) : false;
    }
    try {
      if (task.kind === 'renew') {
        if (!this.subscriptions) return false;
        return await this.subscriptions.renew(
          task.tenantId,
          task.subscriptionId,
          task.period,
          task.attempt,
          now,
        );
      }
      if (task.kind === 'recognize') {
        return this.subscriptions
          ? await this.subscriptions.recognize(task.tenantId, task.subscriptionId, now)
          : false;
      }
      if (task.kind === 'expire') {
        const result = await this.handler.handle(
          bookingDecider,
          bookingStream(task.tenantId, task.bookingId),
          { type: 'ExpireBooking', now: now.toISOString() },
          ctx,
          { commandType: 'ExpireBooking', payloadHash: task.key },
        );
        await this.steps.releaseAfterBookingEnded(triggerOf(result, 'BookingExpired'));
        return !result.replayed;
      }
      const result = await this.handler.handle(
        tutorDecider,
        tutorStream(task.tenantId, task.tutorId),
        {
          type: 'ClearEarnings',
          tutorId: task.tutorId,
          bookingId: task.bookingId,
          now: now.toISOString(),
          entryId: entryIdFor(ctx, 'ClearEarnings'),
        },
        ctx,
        { commandType: 'ClearEarnings', payloadHash: task.key },
      );
      return !result.replayed;
    } catch (error) {
      // The booking was completed or cancelled (or the earnings cleared) since the index saw it.
      if (error instanceof DomainError && error.code === 'invalid_state') return false;
      throw error;
    }
  }
}

export interface SchedulerHandle {
  /** Runs one pass over every tenant with pending tasks now. */
  tick(): Promise<DueTaskCounts>;
  stop(): Promise<void>;
}

/**
 * Runs due tasks every `intervalMs` (one pass at a time, never overlapping) until stopped. Safe to run in
 * several processes: the tasks are idempotent commands.
 */
export function startScheduler(options: {
  runner: DueTaskRunner;
  clock: () => Date;
  intervalMs: number;
  logger?: Logger;
}): SchedulerHandle {
  if (!(options.intervalMs >= 10)) throw new RangeError('intervalMs must be >= 10');
  const logger = options.logger ?? silentLogger;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<DueTaskCounts> | undefined;

  const tick = async (): Promise<DueTaskCounts> => {
    const total: DueTaskCounts = { expiredHolds: 0, clearedEarnings: 0 };
    for (const tenantId of await options.runner.tenants()) {
      const counts = await options.runner.run(tenantId, options.clock());
      total.expiredHolds += counts.expiredHolds;
      total.clearedEarnings += counts.clearedEarnings;
    }
    if (total.expiredHolds + total.clearedEarnings > 0) logger.info({ ...total }, 'scheduler: due tasks ran');
    return total;
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick();
      running
        .catch((error: unknown) => {
          logger.error(
            { err: error instanceof Error ? error.message : String(error) },
            'scheduler: pass failed',
          );
        })
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, options.intervalMs);
  };
  schedule();

  return {
    tick,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}
