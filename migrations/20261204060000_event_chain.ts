import type { Knex } from 'knex';

/**
 * The tenants' hash chains over the event log (src/chain, docs/guarantees.md "Tamper-evident log"):
 *
 *  - `event_chain`: one link per event, written by the chainer (src/chain/chainer.ts) in global log
 *    order: the event's global position, its tenant, its place in the tenant's chain (seq, dense from
 *    0), its id and stream, and the link's hash. Append-only: a trigger refuses UPDATE, DELETE and
 *    TRUNCATE, so the evidence cannot be rewritten by a mistake or an ordinary client (an owner can drop
 *    the trigger: that is what the anchors outside the database are for).
 *  - `event_chain_heads`: each tenant's last link (what the API and the exports show).
 *  - `event_chain_checkpoint`: the last global position chained, moved in the same transaction as the
 *    links, so every event is linked exactly once.
 *
 * Nothing here touches `events`: stored events keep their bytes. The chainer starts at the checkpoint's
 * -1 and links the existing history first, so a ledger upgraded with events in it gets a chain that
 * starts at its first event.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE event_chain (
      position    bigint      PRIMARY KEY CHECK (position >= 0),
      tenant_id   text        NOT NULL,
      seq         bigint      NOT NULL CHECK (seq >= 0),
      event_id    uuid        NOT NULL,
      stream_name text        NOT NULL,
      hash        text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
      chained_at  timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw('CREATE UNIQUE INDEX event_chain_tenant_seq ON event_chain (tenant_id, seq)');
  // A tenant's link at or before a position (the head an export pinned to that position names).
  await knex.raw('CREATE INDEX event_chain_tenant_position ON event_chain (tenant_id, position)');
  await knex.raw(`
    CREATE TABLE event_chain_heads (
      tenant_id  text        PRIMARY KEY,
      seq        bigint      NOT NULL CHECK (seq >= 0),
      position   bigint      NOT NULL CHECK (position >= 0),
      event_id   uuid        NOT NULL,
      hash       text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
      chained_at timestamptz NOT NULL
    )`);
  await knex.raw(`
    CREATE TABLE event_chain_checkpoint (
      id         smallint    PRIMARY KEY CHECK (id = 1),
      position   bigint      NOT NULL CHECK (position >= -1),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw('INSERT INTO event_chain_checkpoint (id, position) VALUES (1, -1)');
  await knex.raw(`
    CREATE FUNCTION event_chain_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'event_chain is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$`);
  await knex.raw(`
    CREATE TRIGGER event_chain_append_only_rows BEFORE UPDATE OR DELETE ON event_chain
      FOR EACH ROW EXECUTE FUNCTION event_chain_append_only()`);
  await knex.raw(`
    CREATE TRIGGER event_chain_append_only_truncate BEFORE TRUNCATE ON event_chain
      FOR EACH STATEMENT EXECUTE FUNCTION event_chain_append_only()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE IF EXISTS event_chain_checkpoint');
  await knex.raw('DROP TABLE IF EXISTS event_chain_heads');
  await knex.raw('DROP TABLE IF EXISTS event_chain');
  await knex.raw('DROP FUNCTION IF EXISTS event_chain_append_only()');
}
