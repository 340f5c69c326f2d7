import type { Knex } from 'knex';
import type { Database } from '../db/database.js';
import type { AttemptOutcome } from './httpSender.js';

/**
 * Webhook deliveries and their attempts in Postgres/PGlite (migrations/20261202184331_…): the queue the
 * dispatcher works off and the delivery log the API shows. Times come from the caller's clock, never
 * the database's, so tests drive the schedule with a fake clock.
 */
export type DeliveryStatus = 'pending' | 'paused' | 'succeeded' | 'failed' | 'cancelled';

export interface NewDelivery {
  deliveryId: string;
  tenantId: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  sourceStream: string;
  sourcePosition: bigint;
  payload: string;
}

export interface Delivery extends NewDelivery {
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  windowStartedAt: Date;
  createdAt: Date;
  updatedAt: Date;
  lastAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
}

export interface Attempt {
  attempt: number;
  manual: boolean;
  startedAt: Date;
  latencyMs: number;
  outcome: AttemptOutcome;
  statusCode: number | null;
  error: string | null;
  responseExcerpt: string | null;
}

export interface EndpointHealth {
  failingSince: Date | null;
  lastSuccessAt: Date | null;
  lastFailureAt: Date | null;
  consecutiveFailures: number;
  lastError: string | null;
}

/** What to do with the delivery after an attempt (the dispatcher decides; the store applies it). */
export type AttemptResolution =
  | { status: 'succeeded' }
  | { status: 'pending'; nextAttemptAt: Date }
  | { status: 'failed' }
  /** A manual retry that failed leaves the delivery's own state and schedule alone. */
  | { status: 'unchanged' };

export interface RecordedAttempt {
  delivery: Delivery;
  health: EndpointHealth;
  attempt: number;
}

const MAX_ATTEMPTS_KEPT = 200;

type Row = Record<string, unknown>;

const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const dateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : date(v));

function deliveryOf(r: Row): Delivery {
  return {
    deliveryId: String(r.delivery_id),
    tenantId: String(r.tenant_id),
    endpointId: String(r.endpoint_id),
    eventId: String(r.event_id),
    eventType: String(r.event_type),
    sourceStream: String(r.source_stream),
    sourcePosition: BigInt(r.source_position as string),
    payload: String(r.payload),
    status: r.status as DeliveryStatus,
    attempts: Number(r.attempts),
    nextAttemptAt: dateOrNull(r.next_attempt_at),
    windowStartedAt: date(r.window_started_at),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    lastAttemptAt: dateOrNull(r.last_attempt_at),
    lastStatusCode: r.last_status_code === null ? null : Number(r.last_status_code),
    lastError: (r.last_error as string | null) ?? null,
  };
}

function attemptOf(r: Row): Attempt {
  return {
    attempt: Number(r.attempt),
    manual: Boolean(r.manual),
    startedAt: date(r.started_at),
    latencyMs: Number(r.latency_ms),
    outcome: r.outcome as AttemptOutcome,
    statusCode: r.status_code === null ? null : Number(r.status_code),
    error: (r.error as string | null) ?? null,
    responseExcerpt: (r.response_excerpt as string | null) ?? null,
  };
}

function healthOf(r: Row | undefined): EndpointHealth {
  return {
    failingSince: dateOrNull(r?.failing_since),
    lastSuccessAt: dateOrNull(r?.last_success_at),
    lastFailureAt: dateOrNull(r?.last_failure_at),
    consecutiveFailures: r ? Number(r.consecutive_failures) : 0,
    lastError: (r?.last_error as string | null | undefined) ?? null,
  };
}

export class DeliveryStore {
  constructor(private readonly db: Database) {}

  /** Adds deliveries; one that exists already (same endpoint and event) is left as it is. */
  async enqueue(deliveries: readonly NewDelivery[], now: Date): Promise<void> {
    if (deliveries.length === 0) return;
    await this.db
      .knex('webhook_deliveries')
      .insert(
        deliveries.map((d) => ({
          delivery_id: d.deliveryId,
          tenant_id: d.tenantId,
          endpoint_id: d.endpointId,
          event_id: d.eventId,
          event_type: d.eventType,
          source_stream: d.sourceStream,
          source_position: d.sourcePosition.toString(),
          payload: d.payload,
          status: 'pending',
          attempts: 0,
          next_attempt_at: now,
          window_started_at: now,
          created_at: now,
          updated_at: now,
        })),
      )
      .onConflict(['endpoint_id', 'event_id'])
      .ignore();
  }

  /** The endpoint was disabled: its pending deliveries wait. */
  async pauseEndpoint(endpointId: string, now: Date): Promise<void> {
    await this.db
      .knex('webhook_deliveries')
      .where({ endpoint_id: endpointId, status: 'pending' })
      .update({ status: 'paused', updated_at: now });
  }

  /** The endpoint was enabled again: what waited is due now, with a fresh retry window. */
  async resumeEndpoint(endpointId: string, now: Date): Promise<void> {
    await this.db
      .knex('webhook_deliveries')
      .where({ endpoint_id: endpointId, status: 'paused' })
      .update({ status: 'pending', next_attempt_at: now, window_started_at: now, updated_at: now });
  }

  /** The endpoint was deleted: nothing more is attempted. */
  async cancelEndpoint(endpointId: string, now: Date): Promise<void> {
    await this.db
      .knex('webhook_deliveries')
      .where({ endpoint_id: endpointId })
      .whereIn('status', ['pending', 'paused'])
      .update({ status: 'cancelled', next_attempt_at: null, updated_at: now });
  }

  /**
   * Deliveries due at `now`, oldest schedule first: only the head of each (endpoint, source stream) line
   * (no earlier delivery of the same stream to the same endpoint still pending, so each stream arrives
   * in order), at most `perEndpoint` per endpoint (one dead endpoint cannot fill the batch), none of
   * `excludeEndpoints` (at their limit of attempts in flight) and none of `excludeDeliveries` (in flight).
   */
  async due(
    now: Date,
    options: {
      limit: number;
      perEndpoint: number;
      excludeEndpoints: readonly string[];
      excludeDeliveries: readonly string[];
    },
  ): Promise<Delivery[]> {
    const endpoints = options.excludeEndpoints.length > 0 ? [...options.excludeEndpoints] : [''];
    const deliveries =
      options.excludeDeliveries.length > 0
        ? [...options.excludeDeliveries]
        : ['00000000-0000-0000-0000-000000000000'];
    const rows = (await this.db.knex.raw(
      `SELECT * FROM (
         SELECT d.*, row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.source_position) AS rank
           FROM webhook_deliveries d
          WHERE d.status = 'pending' AND d.next_attempt_at <= ?
            AND d.endpoint_id <> ALL(?::text[])
            AND d.delivery_id <> ALL(?::uuid[])
            AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries e
               WHERE e.endpoint_id = d.endpoint_id AND e.source_stream = d.source_stream
                 AND e.status = 'pending' AND e.source_position < d.source_position)
       ) heads
       WHERE rank <= ?
       ORDER BY next_attempt_at, source_position
       LIMIT ?`,
      [now, endpoints, deliveries, options.perEndpoint, options.limit],
    )) as { rows: Row[] };
    return rows.rows.map(deliveryOf);
  }

  /** When the next delivery that may be attempted falls due (a head of its line; null: none pending). */
  async nextDueAt(): Promise<Date | null> {
    const rows = (await this.db.knex.raw(
      `SELECT min(d.next_attempt_at) AS at FROM webhook_deliveries d
        WHERE d.status = 'pending'
          AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries e
             WHERE e.endpoint_id = d.endpoint_id AND e.source_stream = d.source_stream
               AND e.status = 'pending' AND e.source_position < d.source_position)`,
    )) as { rows: Row[] };
    return dateOrNull(rows.rows[0]?.at);
  }

  async pendingCount(): Promise<number> {
    const row = (await this.db
      .knex('webhook_deliveries')
      .where({ status: 'pending' })
      .count({ n: '*' })
      .first()) as Row | undefined;
    return Number(row?.n ?? 0);
  }

  /**
   * Records one attempt and its consequence in one transaction: the attempt row (numbered after the
   * delivery's last), the delivery's new state, and the endpoint's health.
   */
  async recordAttempt(
    deliveryId: string,
    attempt: Omit<Attempt, 'attempt'>,
    resolve: (delivery: Delivery, health: EndpointHealth) => AttemptResolution,
  ): Promise<RecordedAttempt> {
    return this.db.knex.transaction(async (trx) => {
      const row = (await trx('webhook_deliveries').where({ delivery_id: deliveryId }).forUpdate().first()) as
        | Row
        | undefined;
      if (!row) throw new Error(`webhook delivery ${deliveryId} vanished`);
      const delivery = deliveryOf(row);
      const healthKey = { tenant_id: delivery.tenantId, endpoint_id: delivery.endpointId };
      const before = healthOf(
        (await trx('webhook_endpoint_health').where(healthKey).forUpdate().first()) as Row,
      );
      const succeeded = attempt.outcome === 'succeeded';
      const health: EndpointHealth = succeeded
        ? { ...before, failingSince: null, lastSuccessAt: attempt.startedAt, consecutiveFailures: 0 }
        : {
            ...before,
            failingSince: before.failingSince ?? attempt.startedAt,
            lastFailureAt: attempt.startedAt,
            consecutiveFailures: before.consecutiveFailures + 1,
            lastError: attempt.error,
          };
      const number = delivery.attempts + 1;
      if (number <= MAX_ATTEMPTS_KEPT) {
        await trx('webhook_delivery_attempts').insert({
          delivery_id: deliveryId,
          attempt: number,
          manual: attempt.manual,
          started_at: attempt.startedAt,
          latency_ms: attempt.latencyMs,
          outcome: attempt.outcome,
          status_code: attempt.statusCode,
          error: attempt.error,
          response_excerpt: attempt.responseExcerpt,
        });
      }
      const resolution = resolve(delivery, before);
      const updatedAt = attempt.startedAt;
      const change: Row = {
        attempts: number,
        last_attempt_at: attempt.startedAt,
        last_status_code: attempt.statusCode,
        last_error: attempt.error,
        updated_at: updatedAt,
      };
      if (resolution.status === 'pending') {
        change.status = 'pending';
        change.next_attempt_at = resolution.nextAttemptAt;
      } else if (resolution.status !== 'unchanged') {
        change.status = resolution.status;
        change.next_attempt_at = null;
      }
      await trx('webhook_deliveries').where({ delivery_id: deliveryId }).update(change);
      await upsertHealth(trx, healthKey, health);
      const after = deliveryOf({ ...row, ...change });
      return { delivery: after, health, attempt: number };
    });
  }

  async get(tenantId: string, endpointId: string, deliveryId: string): Promise<Delivery | null> {
    const row = (await this.db
      .knex('webhook_deliveries')
      .where({ tenant_id: tenantId, endpoint_id: endpointId, delivery_id: deliveryId })
      .first()) as Row | undefined;
    return row ? deliveryOf(row) : null;
  }

  /** Newest first, cursor-paged by (created_at, delivery_id). */
  async list(
    tenantId: string,
    endpointId: string,
    options: { limit: number; status?: DeliveryStatus; before?: { createdAt: Date; deliveryId: string } },
  ): Promise<Delivery[]> {
    let query = this.db
      .knex('webhook_deliveries')
      .where({ tenant_id: tenantId, endpoint_id: endpointId })
      .orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'delivery_id', order: 'desc' },
      ])
      .limit(options.limit);
    if (options.status) query = query.andWhere({ status: options.status });
    if (options.before) {
      const { createdAt, deliveryId } = options.before;
      query = query.andWhereRaw('(created_at, delivery_id) < (?, ?::uuid)', [createdAt, deliveryId]);
    }
    return ((await query) as Row[]).map(deliveryOf);
  }

  async attempts(deliveryId: string, limit = MAX_ATTEMPTS_KEPT): Promise<Attempt[]> {
    const rows = (await this.db
      .knex('webhook_delivery_attempts')
      .where({ delivery_id: deliveryId })
      .orderBy('attempt', 'asc')
      .limit(limit)) as Row[];
    return rows.map(attemptOf);
  }

  async health(tenantId: string, endpointId: string): Promise<EndpointHealth> {
    const row = (await this.db
      .knex('webhook_endpoint_health')
      .where({ tenant_id: tenantId, endpoint_id: endpointId })
      .first()) as Row | undefined;
    return healthOf(row);
  }

  /** Retention: finished deliveries (and their attempts) last updated before `before` are deleted. */
  async prune(before: Date, limit = 5_000): Promise<number> {
    const result = (await this.db.knex.raw(
      `DELETE FROM webhook_deliveries WHERE delivery_id IN (
         SELECT delivery_id FROM webhook_deliveries
          WHERE status IN ('succeeded', 'failed', 'cancelled') AND updated_at < ?
          LIMIT ?)`,
      [before, limit],
    )) as { rowCount?: number; affectedRows?: number };
    return Number(result.rowCount ?? result.affectedRows ?? 0);
  }
}

async function upsertHealth(
  trx: Knex.Transaction,
  key: { tenant_id: string; endpoint_id: string },
  health: EndpointHealth,
): Promise<void> {
  await trx('webhook_endpoint_health')
    .insert({
      ...key,
      failing_since: health.failingSince,
      last_success_at: health.lastSuccessAt,
      last_failure_at: health.lastFailureAt,
      consecutive_failures: health.consecutiveFailures,
      last_error: health.lastError,
    })
    .onConflict(['tenant_id', 'endpoint_id'])
    .merge();
}
