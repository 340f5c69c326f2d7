import type { Logger } from '../commands/logger.js';
import { silentLogger } from '../commands/logger.js';
import type { Database } from '../db/database.js';
import { DomainError } from '../domain/errors.js';
import { signingSecretIds, type WebhookEndpoint } from '../domain/webhookEndpoints.js';
import { createRunnerLock, type RunnerLock } from '../projections/runnerLock.js';
import type { Attempt, AttemptResolution, Delivery, DeliveryStore } from './deliveryStore.js';
import type { WebhookEndpoints } from './endpoints.js';
import type { SendResult, WebhookSender } from './httpSender.js';
import { SIGNATURE_HEADER, signatureHeader } from './signature.js';
import type { WebhookMetrics } from './webhookMetrics.js';

/**
 * Works off the delivery queue (deliveries.ts): each due delivery is signed with the endpoint's current
 * secrets (and a rotated-away one still in its grace period), POSTed once, and recorded with its
 * outcome, latency and status code. A failed delivery is retried with exponential backoff and equal
 * jitter until its retry window (3 days) ends; the last attempt falls on the window's end. When it
 * fails then and nothing reached the endpoint since the window began, the endpoint is disabled
 * (WebhookEndpointDisabled, reason `failing`): the tenant sees it on the endpoint, in the event log and
 * as a `webhook_endpoint.disabled` event to its other endpoints.
 *
 * At least once: an attempt whose outcome was not recorded (the process died mid-delivery) is made
 * again; receivers dedupe on the event id. Attempts run in a bounded pool (`maxInFlight`, at most
 * `perEndpoint` per endpoint, never two of one source stream), so a slow endpoint occupies only its own
 * slots. One active dispatcher per database (runner lock, as the projections).
 */
export interface DispatcherOptions {
  db: Database;
  deliveries: DeliveryStore;
  endpoints: WebhookEndpoints;
  sender: WebhookSender;
  clock: () => Date;
  metrics?: WebhookMetrics;
  logger?: Logger;
  random?: () => number;
  retryWindowMs?: number;
  /** First retry delay; each next one doubles, up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxInFlight?: number;
  perEndpoint?: number;
  /** Longest idle wait between looks at the queue (other processes enqueue without waking us). */
  pollIntervalMs?: number;
  /** Finished deliveries older than this are deleted. */
  retentionMs?: number;
  /** One active dispatcher per database (default: the runner lock on `db`; tests inject faults). */
  lock?: RunnerLock;
}

export const DEFAULT_RETRY_WINDOW_MS = 3 * 24 * 3_600_000;
export const DEFAULT_BASE_DELAY_MS = 10_000;
export const DEFAULT_MAX_DELAY_MS = 6 * 3_600_000;
export const DEFAULT_RETENTION_MS = 30 * 24 * 3_600_000;
const PRUNE_EVERY_MS = 3_600_000;

export interface ManualRetryResult {
  delivery: Delivery;
  attempt: Attempt;
}

/** Delay before retry number `failures` (1 = after the first failure): equal jitter on a doubling base. */
export function retryDelayMs(
  failures: number,
  options: { baseDelayMs: number; maxDelayMs: number },
  random: () => number,
): number {
  const ceiling = Math.min(
    options.maxDelayMs,
    options.baseDelayMs * 2 ** Math.min(Math.max(failures - 1, 0), 40),
  );
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

export class WebhookDispatcher {
  private readonly retryWindowMs: number;
  private readonly backoff: { baseDelayMs: number; maxDelayMs: number };
  private readonly maxInFlight: number;
  private readonly perEndpoint: number;
  private readonly pollIntervalMs: number;
  private readonly retentionMs: number;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly lock: RunnerLock;
  private readonly inFlight = new Map<string, { endpointId: string; done: Promise<void> }>();
  private loop: Promise<void> | undefined;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private lastPruneMs = 0;

  constructor(private readonly options: DispatcherOptions) {
    this.retryWindowMs = options.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS;
    this.backoff = {
      baseDelayMs: options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS,
      maxDelayMs: options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
    };
    this.maxInFlight = options.maxInFlight ?? 16;
    this.perEndpoint = options.perEndpoint ?? 4;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? silentLogger;
    this.lock = options.lock ?? createRunnerLock(options.db, 'webhook-dispatcher', { pollMs: 1_000 });
    options.metrics?.setPendingSource(() => options.deliveries.pendingCount());
  }

  start(): void {
    if (this.loop) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Looks at the queue now (new deliveries were enqueued in this process). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Stops taking new deliveries, waits for the attempts in flight, frees the lock. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    await this.loop;
    this.loop = undefined;
  }

  /**
   * Attempts what is due now until nothing is due and nothing is in flight (tests drive the schedule
   * with a fake clock through this; the loop uses `fill`).
   */
  async drain(): Promise<number> {
    let attempted = 0;
    for (;;) {
      const started = await this.fill();
      attempted += started;
      if (started === 0 && this.inFlight.size === 0) return attempted;
      if (this.inFlight.size > 0) await Promise.race([...this.inFlight.values()].map((f) => f.done));
    }
  }

  /** Starts attempts for due deliveries in the free slots; returns how many it started. */
  async fill(): Promise<number> {
    const free = this.maxInFlight - this.inFlight.size;
    if (free <= 0) return 0;
    const perEndpoint = new Map<string, number>();
    for (const f of this.inFlight.values())
      perEndpoint.set(f.endpointId, (perEndpoint.get(f.endpointId) ?? 0) + 1);
    const full = [...perEndpoint].filter(([, n]) => n >= this.perEndpoint).map(([id]) => id);
    const due = await this.options.deliveries.due(this.options.clock(), {
      limit: free,
      perEndpoint: this.perEndpoint,
      excludeEndpoints: full,
      excludeDeliveries: [...this.inFlight.keys()],
    });
    let started = 0;
    for (const delivery of due) {
      const used = perEndpoint.get(delivery.endpointId) ?? 0;
      if (used >= this.perEndpoint || this.inFlight.size >= this.maxInFlight) continue;
      perEndpoint.set(delivery.endpointId, used + 1);
      const done = this.attempt(delivery, false)
        .then(() => undefined)
        .catch((error: unknown) => {
          this.logger.error(
            { err: error, deliveryId: delivery.deliveryId },
            'webhook delivery attempt failed',
          );
        })
        .finally(() => this.inFlight.delete(delivery.deliveryId));
      this.inFlight.set(delivery.deliveryId, { endpointId: delivery.endpointId, done });
      started++;
    }
    return started;
  }

  /** `POST /webhook-endpoints/{id}/deliveries/{deliveryId}/retry`: one attempt now, whatever the schedule. */
  async retry(tenantId: string, endpointId: string, deliveryId: string): Promise<ManualRetryResult> {
    const delivery = await this.options.deliveries.get(tenantId, endpointId, deliveryId);
    if (!delivery)
      throw new DomainError('not_found', `no delivery ${deliveryId} of webhook endpoint ${endpointId}`);
    const result = await this.attempt(delivery, true);
    if (!result) throw new DomainError('not_found', `webhook endpoint ${endpointId} was deleted`);
    return result;
  }

  private async attempt(delivery: Delivery, manual: boolean): Promise<ManualRetryResult | null> {
    const { deliveries, endpoints, clock } = this.options;
    const endpoint = await endpoints.get(delivery.tenantId, delivery.endpointId);
    if (!endpoint) {
      await deliveries.cancelEndpoint(delivery.endpointId, clock());
      return null;
    }
    if (!manual && endpoint.status !== 'enabled') {
      // Disabled since it was picked: the fan-out pauses the queue; make sure this one waits too.
      await deliveries.pauseEndpoint(delivery.endpointId, clock());
      return null;
    }
    const startedAt = clock();
    const result = await this.send(delivery, endpoint, startedAt, manual);
    this.options.metrics?.attempts.inc({ outcome: result.outcome, trigger: manual ? 'manual' : 'automatic' });
    this.options.metrics?.latency.observe({ outcome: result.outcome }, result.latencyMs / 1000);
    let exhausted = false;
    const recorded = await deliveries.recordAttempt(
      delivery.deliveryId,
      {
        manual,
        startedAt,
        latencyMs: result.latencyMs,
        outcome: result.outcome,
        statusCode: result.statusCode,
        error: result.error,
        responseExcerpt: result.responseExcerpt,
      },
      (current): AttemptResolution => {
        if (result.outcome === 'succeeded') return { status: 'succeeded' };
        // Paused, cancelled or already finished meanwhile (or a manual retry): its state stays.
        if (manual || current.status !== 'pending') return { status: 'unchanged' };
        const windowEndMs = current.windowStartedAt.getTime() + this.retryWindowMs;
        const nowMs = startedAt.getTime();
        if (nowMs >= windowEndMs) {
          exhausted = true;
          return { status: 'failed' };
        }
        const failures = current.attempts + 1;
        const next = Math.min(nowMs + retryDelayMs(failures, this.backoff, this.random), windowEndMs);
        return { status: 'pending', nextAttemptAt: new Date(next) };
      },
    );
    if (exhausted) {
      this.options.metrics?.exhausted.inc();
      const failingSince = recorded.health.failingSince;
      // Nothing reached the endpoint since this delivery's window began: it has been down all along.
      if (failingSince && failingSince.getTime() <= delivery.windowStartedAt.getTime()) {
        const disabled = await endpoints.disableFailing(delivery.tenantId, delivery.endpointId, {
          deliveryId: delivery.deliveryId,
          failingSince: failingSince.toISOString(),
          lastError: result.error ?? result.outcome,
        });
        if (disabled) {
          this.options.metrics?.endpointsDisabled.inc({ reason: 'failing' });
          this.logger.warn(
            { tenantId: delivery.tenantId, endpointId: delivery.endpointId, deliveryId: delivery.deliveryId },
            'webhook endpoint disabled: failing for the whole retry window',
          );
        }
      }
    }
    const attempts = await deliveries.attempts(delivery.deliveryId);
    const attempt = attempts.find((a) => a.attempt === recorded.attempt) ?? {
      attempt: recorded.attempt,
      manual,
      startedAt,
      latencyMs: result.latencyMs,
      outcome: result.outcome,
      statusCode: result.statusCode,
      error: result.error,
      responseExcerpt: result.responseExcerpt,
    };
    return { delivery: recorded.delivery, attempt };
  }

  private send(
    delivery: Delivery,
    endpoint: WebhookEndpoint,
    at: Date,
    manual: boolean,
  ): Promise<SendResult> {
    const secrets = signingSecretIds(endpoint, at.getTime()).map((secretId) =>
      this.options.endpoints.secretFor(delivery.tenantId, endpoint.endpointId, secretId),
    );
    const timestamp = Math.floor(at.getTime() / 1000);
    return this.options.sender.send({
      url: endpoint.url,
      body: delivery.payload,
      headers: {
        [SIGNATURE_HEADER]: signatureHeader(secrets, timestamp, delivery.payload),
        'wemaster-event-id': delivery.eventId,
        'wemaster-event-type': delivery.eventType,
        'wemaster-delivery-id': delivery.deliveryId,
        'wemaster-delivery-attempt': String(delivery.attempts + 1),
        ...(manual ? { 'wemaster-delivery-manual': 'true' } : {}),
      },
    });
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped) {
        try {
          // Taking the lock needs a connection of its own (runnerLock.ts): a connect that times out on a
          // loaded database threw out of this loop, leaving no dispatcher (and an unhandled rejection)
          // until a restart. Like any other failure it is logged and retried.
          if (!(await this.lock.acquire(() => this.stopped))) break;
          await this.pump();
        } catch (error) {
          if (this.stopped) break;
          this.logger.error({ err: error }, 'webhook dispatcher error (restarting)');
          await this.sleep(this.pollIntervalMs);
        }
      }
    } finally {
      await Promise.allSettled([...this.inFlight.values()].map((f) => f.done));
      await this.lock.release();
    }
  }

  private async pump(): Promise<void> {
    while (!this.stopped) {
      if (!this.lock.isHeld()) throw new Error('webhook dispatcher lock lost');
      this.woken = false;
      const started = await this.fill();
      await this.pruneNowAndThen();
      if (started > 0 && this.inFlight.size < this.maxInFlight) continue;
      if (this.woken) continue;
      const nextDue = await this.options.deliveries.nextDueAt();
      const untilDue = nextDue ? nextDue.getTime() - this.options.clock().getTime() : this.pollIntervalMs;
      const waits: Promise<unknown>[] = [this.sleep(Math.max(10, Math.min(untilDue, this.pollIntervalMs)))];
      // A finished attempt frees a slot (or makes the next delivery of its stream the head).
      for (const f of this.inFlight.values()) waits.push(f.done);
      await Promise.race(waits);
    }
  }

  private async pruneNowAndThen(): Promise<void> {
    const nowMs = this.options.clock().getTime();
    if (nowMs - this.lastPruneMs < PRUNE_EVERY_MS) return;
    this.lastPruneMs = nowMs;
    const pruned = await this.options.deliveries.prune(new Date(nowMs - this.retentionMs));
    if (pruned > 0) this.logger.info({ pruned }, 'webhook delivery log: old deliveries deleted');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const wake = () => done();
      this.wakeUp = wake;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
