import type { Database } from '../db/database.js';

/** A poison event: one whose step can never succeed (a domain rejection, a bug). Recorded, then skipped. */
export interface PoisonRecord {
  subscriber: string;
  eventId: string;
  position: bigint;
  tenantId: string;
  streamName: string;
  eventType: string;
  errorCode: string;
  errorMessage: string;
}

/** Where a subscriber remembers the last global position it fully handled. */
export interface CheckpointStore {
  /** Last handled position, or undefined when the subscriber never ran (start from the beginning). */
  load(subscriber: string): Promise<bigint | undefined>;
  save(subscriber: string, position: bigint): Promise<void>;
  recordPoison(record: PoisonRecord): Promise<void>;
  listPoison(subscriber: string, limit: number): Promise<PoisonRecord[]>;
}

export class MemoryCheckpointStore implements CheckpointStore {
  private readonly positions = new Map<string, bigint>();
  private readonly poison: PoisonRecord[] = [];

  async load(subscriber: string): Promise<bigint | undefined> {
    return this.positions.get(subscriber);
  }

  async save(subscriber: string, position: bigint): Promise<void> {
    const current = this.positions.get(subscriber);
    // A checkpoint only moves forward; a late save from a stopped runner must not rewind it.
    if (current === undefined || position > current) this.positions.set(subscriber, position);
  }

  async recordPoison(record: PoisonRecord): Promise<void> {
    if (!this.poison.some((p) => p.subscriber === record.subscriber && p.eventId === record.eventId)) {
      this.poison.push({ ...record });
    }
  }

  async listPoison(subscriber: string, limit: number): Promise<PoisonRecord[]> {
    return this.poison.filter((p) => p.subscriber === subscriber).slice(0, limit);
  }
}

/** Checkpoints in Postgres/PGlite (tables from migrations/0050_process_manager_state.ts). */
export class PostgresCheckpointStore implements CheckpointStore {
  constructor(private readonly db: Database) {}

  async load(subscriber: string): Promise<bigint | undefined> {
    const row = (await this.db.knex('pm_checkpoints').where({ subscriber }).first('position')) as
      | { position: number | string }
      | undefined;
    return row === undefined ? undefined : BigInt(row.position);
  }

  async save(subscriber: string, position: bigint): Promise<void> {
    await this.db.knex.raw(
      `insert into pm_checkpoints (subscriber, position, updated_at) values (?, ?, now())
       on conflict (subscriber) do update set position = excluded.position, updated_at = now()
       where pm_checkpoints.position < excluded.position`,
      [subscriber, position.toString()],
    );
  }

  async recordPoison(record: PoisonRecord): Promise<void> {
    await this.db
      .knex('pm_poison_events')
      .insert({
        subscriber: record.subscriber,
        event_id: record.eventId,
        position: record.position.toString(),
        tenant_id: record.tenantId,
        stream_name: record.streamName,
        event_type: record.eventType,
        error_code: record.errorCode,
        error_message: record.errorMessage.slice(0, 2_000),
      })
      .onConflict(['subscriber', 'event_id'])
      .ignore();
  }

  async listPoison(subscriber: string, limit: number): Promise<PoisonRecord[]> {
    const rows = (await this.db
      .knex('pm_poison_events')
      .where({ subscriber })
      .orderBy('position')
      .limit(limit)) as Array<{
      subscriber: string;
      event_id: string;
      position: number | string;
      tenant_id: string;
      stream_name: string;
      event_type: string;
      error_code: string;
      error_message: string;
    }>;
    return rows.map((r) => ({
      subscriber: r.subscriber,
      eventId: r.event_id,
      position: BigInt(r.position),
      tenantId: r.tenant_id,
      streamName: r.stream_name,
      eventType: r.event_type,
      errorCode: r.error_code,
      errorMessage: r.error_message,
    }));
  }
}
