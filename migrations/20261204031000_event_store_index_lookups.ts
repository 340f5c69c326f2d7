import type { Knex } from 'knex';

/**
 * The event store's lookups by key as functions whose plans cannot leave the indexes.
 *
 * The store's hot statements are prepared once per pooled connection (src/eventstore/postgres.ts), and
 * Postgres keeps a prepared statement's generic plan until the table's statistics change. A connection
 * that planned the append's id check while `events` was small (a new store, or one bulk-loaded by an
 * import with no ANALYZE since, or with autovacuum off) kept a hash join over a full scan of `events`:
 * appends fell from 12,600/s to 1,400/s at 450k events, and one ANALYZE restored them.
 *
 * Every lookup the append and the stream read make goes through one of these functions instead. Each is
 * declared `SET enable_seqscan = off`, so whatever the statistics say, its plan is an index lookup
 * (`= ANY (array)` and `=` on a unique or primary key: an index or bitmap index scan); plpgsql keeps the
 * plan per session as before. They are STABLE, so they read with the calling statement's snapshot,
 * exactly as the subqueries they replace did (the append's checks rely on that snapshot).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION event_store_event_id_at(at_position bigint) RETURNS uuid
      LANGUAGE plpgsql STABLE SET enable_seqscan = off
    AS $$
    BEGIN
      RETURN (SELECT e.id FROM events e WHERE e.position = at_position);
    END
    $$`);
  await knex.raw(`
    CREATE FUNCTION event_store_events_with_ids(ids uuid[])
      RETURNS TABLE (stream_name text, revision bigint, id uuid, "position" bigint, type text, data jsonb)
      LANGUAGE plpgsql STABLE SET enable_seqscan = off
    AS $$
    BEGIN
      RETURN QUERY SELECT e.stream_name, e.revision, e.id, e.position, e.type, e.data
        FROM events e WHERE e.id = ANY (ids);
    END
    $$`);
  // The write's checks: scalar, so that no result set is materialized (a set-returning plpgsql function
  // costs about as much again as the lookup itself).
  await knex.raw(`
    CREATE FUNCTION event_store_any_event_with_id(ids uuid[]) RETURNS boolean
      LANGUAGE plpgsql STABLE SET enable_seqscan = off
    AS $$
    BEGIN
      RETURN EXISTS (SELECT 1 FROM events e WHERE e.id = ANY (ids));
    END
    $$`);
  await knex.raw(`
    CREATE FUNCTION event_store_any_stream(names text[]) RETURNS boolean
      LANGUAGE plpgsql STABLE SET enable_seqscan = off
    AS $$
    BEGIN
      RETURN EXISTS (SELECT 1 FROM event_streams s WHERE s.stream_name = ANY (names));
    END
    $$`);
  await knex.raw(`
    CREATE FUNCTION event_store_stream_revisions(names text[])
      RETURNS TABLE (stream_name text, revision bigint)
      LANGUAGE plpgsql STABLE SET enable_seqscan = off
    AS $$
    BEGIN
      RETURN QUERY SELECT s.stream_name, s.revision FROM event_streams s WHERE s.stream_name = ANY (names);
    END
    $$`);
  // A page of one stream by revision, in either direction, optionally from a revision (inclusive).
  await knex.raw(`
    CREATE FUNCTION event_store_stream_page(name text, backwards boolean, from_revision bigint, max_count bigint)
      RETURNS SETOF events
      LANGUAGE plpgsql STABLE SET enable_seqscan = off
    AS $$
    BEGIN
      -- Four statements, not one with optional conditions, so the start revision is always part of
      -- the index condition (a filter would walk the stream from its end to the start revision).
      IF backwards AND from_revision IS NULL THEN
        RETURN QUERY SELECT * FROM events e WHERE e.stream_name = name
          ORDER BY e.revision DESC LIMIT max_count;
      ELSIF backwards THEN
        RETURN QUERY SELECT * FROM events e WHERE e.stream_name = name AND e.revision <= from_revision
          ORDER BY e.revision DESC LIMIT max_count;
      ELSIF from_revision IS NULL THEN
        RETURN QUERY SELECT * FROM events e WHERE e.stream_name = name
          ORDER BY e.revision ASC LIMIT max_count;
      ELSE
        RETURN QUERY SELECT * FROM events e WHERE e.stream_name = name AND e.revision >= from_revision
          ORDER BY e.revision ASC LIMIT max_count;
      END IF;
    END
    $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION IF EXISTS event_store_stream_page(text, boolean, bigint, bigint)');
  await knex.raw('DROP FUNCTION IF EXISTS event_store_stream_revisions(text[])');
  await knex.raw('DROP FUNCTION IF EXISTS event_store_any_stream(text[])');
  await knex.raw('DROP FUNCTION IF EXISTS event_store_any_event_with_id(uuid[])');
  await knex.raw('DROP FUNCTION IF EXISTS event_store_events_with_ids(uuid[])');
  await knex.raw('DROP FUNCTION IF EXISTS event_store_event_id_at(bigint)');
}
