import type { Knex } from 'knex';

/**
 * State of the command layer's background workers: process-manager checkpoints (one row per subscriber,
 * the last global position fully handled) and poison events (recorded, skipped, never silently).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('pm_checkpoints', (t) => {
    t.text('subscriber').primary();
    t.bigInteger('position').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('pm_poison_events', (t) => {
    t.text('subscriber').notNullable();
    t.uuid('event_id').notNullable();
    t.bigInteger('position').notNullable();
    t.text('tenant_id').notNullable();
    t.text('stream_name').notNullable();
    t.text('event_type').notNullable();
    t.text('error_code').notNullable();
    t.text('error_message').notNullable();
    t.timestamp('recorded_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['subscriber', 'event_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('pm_poison_events');
  await knex.schema.dropTableIfExists('pm_checkpoints');
}
