import type { Knex } from 'knex';
import { InvariantViolation } from '../domain/errors.js';
import { parseStreamName } from '../domain/streams.js';
import type { RecordedEvent } from '../eventstore/port.js';
import { LEDGER_PROJECTION, type ReadModelSchema } from './schema.js';
import { int8 } from './sql.js';

/**
 * Per-tenant quarantine of the projection (docs/guarantees.md, "A projection that cannot apply an
 * event"). An event the projection cannot apply (it does not decode, or applying it breaks an
 * invariant of the read models) stops that tenant's read models only: the event is recorded here, the
 * checkpoint moves past it, and every later event of the tenant is held back (skipped, not lost: the
 * log still has it) until an operator resumes the tenant after a fix. Other tenants' read models keep
 * moving. The table lives in the read-model schema beside the checkpoint and is written in the same
 * transaction as it, so a stall and the checkpoint never disagree.
 */
export interface ProjectionStall {
  projection: string;
  tenantId: string;
  /** The first event of the tenant not applied: the one that failed, or where a resume stopped. */
  position: bigint;
  eventId: string;
  streamName: string;
  eventType: string;
  reason: string;
  stalledAt: Date;
}

/** Longest reason kept (an error message can be long; the log has the whole of it). */
const MAX_REASON_CHARS = 2_000;

/** The tenant an event belongs to, read without decoding it (a malformed event must be attributable). */
export function tenantOfEvent(event: RecordedEvent): string {
  const fromStream = parseStreamName(event.streamName)?.tenantId;
  if (fromStream) return fromStream;
  const fromMetadata = (event.metadata as { tenantId?: unknown } | null)?.tenantId;
  return typeof fromMetadata === 'string' && fromMetadata !== '' ? fromMetadata : '(unknown)';
}

/**
 * Whether an error applying a batch is the batch's fault (the same events fail every time) rather than
 * the database's: a broken invariant (including an event that does not decode), a number the read
 * models cannot hold, or a Postgres data or integrity error (SQLSTATE classes 22 and 23). Anything
 * else (a lost connection, a timeout, a lock) is retried as before.
 */
export function isPoison(error: unknown): boolean {
  if (error instanceof InvariantViolation || error instanceof RangeError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

/** The stalls of the ledger projection (of one tenant, when given), by tenant. */
export async function readStalls(
  db: Knex | Knex.Transaction,
  schema: ReadModelSchema,
  tenantId?: string,
): Promise<ProjectionStall[]> {
  const result = (await db.raw(
    `SELECT projection, tenant_id, position::text AS position, event_id, stream_name, event_type, reason, stalled_at
       FROM ${schema}.projection_stalls WHERE projection = ?${tenantId === undefined ? '' : ' AND tenant_id = ?'}
      ORDER BY tenant_id`,
    tenantId === undefined ? [LEDGER_PROJECTION] : [LEDGER_PROJECTION, tenantId],
  )) as { rows: Array<Record<string, unknown>> };
  return result.rows.map((r) => ({
    projection: String(r.projection),
    tenantId: String(r.tenant_id),
    position: BigInt(String(r.position)),
    eventId: String(r.event_id),
    streamName: String(r.stream_name),
    eventType: String(r.event_type),
    reason: String(r.reason),
    stalledAt: r.stalled_at instanceof Date ? r.stalled_at : new Date(String(r.stalled_at)),
  }));
}

export async function recordStall(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  event: RecordedEvent,
  reason: string,
): Promise<ProjectionStall> {
  const stall: ProjectionStall = {
    projection: LEDGER_PROJECTION,
    tenantId: tenantOfEvent(event),
    position: event.position,
    eventId: event.id,
    streamName: event.streamName,
    eventType: event.type,
    reason: reason.slice(0, MAX_REASON_CHARS),
    stalledAt: new Date(),
  };
  await trx.raw(
    `INSERT INTO ${schema}.projection_stalls
       (projection, tenant_id, position, event_id, stream_name, event_type, reason, stalled_at)
     VALUES (?, ?, ?::int8, ?, ?, ?, ?, ?)
     ON CONFLICT (projection, tenant_id) DO UPDATE SET position = excluded.position,
       event_id = excluded.event_id, stream_name = excluded.stream_name, event_type = excluded.event_type,
       reason = excluded.reason, stalled_at = excluded.stalled_at`,
    [
      stall.projection,
      stall.tenantId,
      int8(stall.position),
      stall.eventId,
      stall.streamName,
      stall.eventType,
      stall.reason,
      stall.stalledAt.toISOString(),
    ],
  );
  return stall;
}

export async function clearStall(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  tenantId: string,
): Promise<void> {
  await trx.raw(`DELETE FROM ${schema}.projection_stalls WHERE projection = ? AND tenant_id = ?`, [
    LEDGER_PROJECTION,
    tenantId,
  ]);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
