import type { Knex } from 'knex';
import type { Database } from '../db/database.js';
import {
  type EventToAppend,
  IdempotencyViolationError,
  InvalidAppendError,
  type JsonObject,
} from './port.js';
import { EVENTS_CHANNEL } from './postgres.js';
import { validateAppend } from './validation.js';

/**
 * Loading an export into the Postgres event store (src/backup/importEvents.ts): whole batches of events
 * in one transaction each, written as they were recorded (same order, stream revisions, ids and
 * recorded_at), at the positions that follow the store's head. The head row is locked for the batch and
 * must still be the one the import left (position and the id of the event there), so nothing else can
 * have appended in between: an import never interleaves with other writers, and a store it was
 * interrupted in always holds a prefix of the file (a batch commits whole or not at all).
 *
 * Each event passes the same checks as an append (validateAppend), and each revision must follow its
 * stream's current one, so an import cannot write what append would have refused.
 */

export interface ImportedEvent {
  streamName: string;
  revision: bigint;
  id: string;
  type: string;
  data: JsonObject;
  metadata: EventToAppend['metadata'];
  recordedAt: string;
}

/** The head the import continues from: the position and the id of the event there (-1, null: empty). */
export interface ImportHead {
  position: bigint;
  id: string | null;
}

export class ImportConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportConflictError';
  }
}

/** Appends `events` after `head` in one transaction; returns the new head. */
export async function importPostgresBatch(
  db: Database,
  head: ImportHead,
  events: readonly ImportedEvent[],
): Promise<ImportHead> {
  if (events.length === 0) return head;
  for (const e of events) {
    validateAppend(e.streamName, [{ id: e.id, type: e.type, data: e.data, metadata: e.metadata }], {
      expectedRevision: e.revision === 0n ? 'no_stream' : e.revision - 1n,
    });
  }
  return db.knex.transaction(async (trx) => {
    const current = (
      (await trx.raw(
        `SELECT h.position::text AS position, (SELECT e.id::text FROM events e WHERE e.position = h.position) AS id
         FROM event_store_head h WHERE h.id = 1 FOR UPDATE`,
      )) as { rows: Array<{ position: string; id: string | null }> }
    ).rows[0];
    if (!current) throw new ImportConflictError('the event store has no head row (run migrations)');
    if (BigInt(current.position) !== head.position || current.id !== head.id) {
      throw new ImportConflictError(
        `the event store's head moved to ${current.position} while importing (expected ${head.position}): ` +
          'something else appends to it; stop it and resume the import',
      );
    }
    const revisions = await streamRevisions(trx, [...new Set(events.map((e) => e.streamName))]);
    const rows = events.map((e, i) => {
      const last = revisions.get(e.streamName);
      const expected = last === undefined ? 0n : last + 1n;
      if (e.revision !== expected) {
        throw new InvalidAppendError(
          `event ${e.id}: stream ${e.streamName} is at revision ${last ?? 'none'}, the file's event has revision ${e.revision}`,
        );
      }
      revisions.set(e.streamName, e.revision);
      return {
        position: (head.position + 1n + BigInt(i)).toString(),
        stream_name: e.streamName,
        revision: e.revision.toString(),
        id: e.id,
        type: e.type,
        data: e.data,
        metadata: e.metadata,
        recorded_at: e.recordedAt,
      };
    });
    const clash = (
      (await trx.raw(
        'SELECT id::text AS id FROM events WHERE id IN (SELECT jsonb_array_elements_text(?::jsonb)::uuid) LIMIT 1',
        [JSON.stringify(events.map((e) => e.id))],
      )) as { rows: Array<{ id: string }> }
    ).rows[0];
    if (clash)
      throw new IdempotencyViolationError(`event ${clash.id} is already in the store at another position`);
    await trx.raw(
      `INSERT INTO events (position, stream_name, revision, id, type, data, metadata, recorded_at)
       SELECT x.position, x.stream_name, x.revision, x.id, x.type, x.data, x.metadata, x.recorded_at
       FROM jsonb_to_recordset(?::jsonb)
         AS x(position bigint, stream_name text, revision bigint, id uuid, type text, data jsonb, metadata jsonb, recorded_at timestamptz)`,
      [JSON.stringify(rows)],
    );
    const streams = [...new Set(events.map((e) => e.streamName))].map((name) => ({
      stream_name: name,
      revision: revisions.get(name)!.toString(),
    }));
    await trx.raw(
      `INSERT INTO event_streams (stream_name, revision)
       SELECT s.stream_name, s.revision FROM jsonb_to_recordset(?::jsonb) AS s(stream_name text, revision bigint)
       ON CONFLICT (stream_name) DO UPDATE SET revision = excluded.revision`,
      [JSON.stringify(streams)],
    );
    const last = head.position + BigInt(events.length);
    await trx.raw('UPDATE event_store_head SET position = ? WHERE id = 1', [last.toString()]);
    await trx.raw('SELECT pg_notify(?, ?)', [EVENTS_CHANNEL, last.toString()]);
    return { position: last, id: events[events.length - 1]!.id };
  });
}

async function streamRevisions(trx: Knex.Transaction, names: string[]): Promise<Map<string, bigint>> {
  const rows = (
    (await trx.raw(
      'SELECT stream_name, revision::text AS revision FROM event_streams WHERE stream_name IN (SELECT jsonb_array_elements_text(?::jsonb))',
      [JSON.stringify(names)],
    )) as { rows: Array<{ stream_name: string; revision: string }> }
  ).rows;
  return new Map(rows.map((r) => [r.stream_name, BigInt(r.revision)]));
}

/** The store's head as the import sees it. */
export async function postgresImportHead(db: Database): Promise<ImportHead> {
  const row = (
    (await db.knex.raw(
      `SELECT h.position::text AS position, (SELECT e.id::text FROM events e WHERE e.position = h.position) AS id
       FROM event_store_head h WHERE h.id = 1`,
    )) as { rows: Array<{ position: string; id: string | null }> }
  ).rows[0];
  if (!row) throw new ImportConflictError('the event store has no head row (run migrations)');
  return { position: BigInt(row.position), id: row.id };
}
