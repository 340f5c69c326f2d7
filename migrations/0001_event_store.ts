import type { Knex } from 'knex';

/**
 * The Postgres event store (docs/architecture.md, "The event store"): one `events` table with a dense global position,
 * a `event_streams` table with each stream's current revision, and the one-row `event_store_head` whose
 * row lock serializes position assignment, so positions follow commit order and a subscriber reading
 * `position > checkpoint` can never skip an event that commits late.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
      CREATE TABLE events (
        position    bigint      PRIMARY KEY CHECK (position >= 0),
        stream_name text        NOT NULL,
        revision    bigint      NOT NULL CHECK (revision >= 0),
        id          uuid        NOT NULL UNIQUE,
        type        text        NOT NULL,
        data        jsonb       NOT NULL,
        metadata    jsonb       NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (stream_name, revision)
      )`);
  // Type-filtered subscriptions and reads scan by (type, position) instead of the whole log.
  await knex.raw('CREATE INDEX events_type_position ON events (type, position)');
  await knex.raw(`
      CREATE TABLE event_streams (
        stream_name text   PRIMARY KEY,
        revision    bigint NOT NULL CHECK (revision >= 0)
      )`);
  await knex.raw(`
      CREATE TABLE event_store_head (
        id       smallint PRIMARY KEY CHECK (id = 1),
        position bigint   NOT NULL CHECK (position >= -1)
      )`);
  await knex.raw('INSERT INTO event_store_head (id, position) VALUES (1, -1)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS event_store_head');
  await knex.raw('DROP TABLE IF EXISTS event_streams');
  await knex.raw('DROP TABLE IF EXISTS events');
}
