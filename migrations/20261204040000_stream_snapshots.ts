import type { Knex } from 'knex';

/**
 * Snapshots of aggregate state beside the streams (src/eventstore/snapshots.ts): one row per stream, the
 * latest snapshot of the kind the running code writes. A cache of a fold: truncating the table is
 * always safe. And the event store's lookup of one event by id (EventStore.findEvent), an index lookup
 * whatever the statistics say like the others (20261204031000_event_store_index_lookups.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE stream_snapshots (
      stream_name text        PRIMARY KEY,
      kind        text        NOT NULL,
      revision    bigint      NOT NULL CHECK (revision >= 0),
      event_id    uuid        NOT NULL,
      payload     text        NOT NULL,
      written_at  timestamptz NOT NULL
    )`);
  await knex.raw(`
    CREATE FUNCTION event_store_event_by_id(event_id uuid) RETURNS SETOF events
      LANGUAGE plpgsql STABLE SET enable_seqscan = off
    AS $$
    BEGIN
      RETURN QUERY SELECT * FROM events e WHERE e.id = event_id;
    END
    $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION IF EXISTS event_store_event_by_id(uuid)');
  await knex.raw('DROP TABLE IF EXISTS stream_snapshots');
}
