import type { Knex } from 'knex';

/**
 * Outbound webhooks and balance monitors (src/webhooks, src/monitors). The endpoints themselves and the
 * monitors' edges are events; these tables hold what delivering and evaluating need:
 *  - webhook_deliveries: one row per (endpoint, public event), written by the fan-out consumer and
 *    worked off by the dispatcher (status, schedule, the exact body that is signed);
 *  - webhook_delivery_attempts: the delivery log, one row per attempt (bounded retention);
 *  - webhook_endpoint_health: per endpoint, since when it fails (what disables it after the window);
 *  - balance_monitors: the monitors' definitions by account, for the evaluator and for listing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.uuid('delivery_id').primary();
    t.text('tenant_id').notNullable();
    t.text('endpoint_id').notNullable();
    t.text('event_id').notNullable();
    t.text('event_type').notNullable();
    t.text('source_stream').notNullable();
    t.bigInteger('source_position').notNullable();
    t.text('payload').notNullable();
    // pending | paused (endpoint disabled) | succeeded | failed (retry window over) | cancelled (deleted)
    t.text('status').notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true });
    t.timestamp('window_started_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.timestamp('last_attempt_at', { useTz: true });
    t.integer('last_status_code');
    t.text('last_error');
    t.unique(['endpoint_id', 'event_id']);
  });
  await knex.raw(
    `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'`,
  );
  await knex.raw(
    `CREATE INDEX webhook_deliveries_stream_order ON webhook_deliveries (endpoint_id, source_stream, source_position)
       WHERE status = 'pending'`,
  );
  await knex.raw(
    'CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC, delivery_id)',
  );
  await knex.raw('CREATE INDEX webhook_deliveries_retention ON webhook_deliveries (updated_at)');

  await knex.schema.createTable('webhook_delivery_attempts', (t) => {
    t.uuid('delivery_id')
      .notNullable()
      .references('delivery_id')
      .inTable('webhook_deliveries')
      .onDelete('CASCADE');
    t.integer('attempt').notNullable();
    t.boolean('manual').notNullable();
    t.timestamp('started_at', { useTz: true }).notNullable();
    t.integer('latency_ms').notNullable();
    t.text('outcome').notNullable();
    t.integer('status_code');
    t.text('error');
    t.text('response_excerpt');
    t.primary(['delivery_id', 'attempt']);
  });

  await knex.schema.createTable('webhook_endpoint_health', (t) => {
    t.text('tenant_id').notNullable();
    t.text('endpoint_id').notNullable();
    t.timestamp('failing_since', { useTz: true });
    t.timestamp('last_success_at', { useTz: true });
    t.timestamp('last_failure_at', { useTz: true });
    t.integer('consecutive_failures').notNullable().defaultTo(0);
    t.text('last_error');
    t.primary(['tenant_id', 'endpoint_id']);
  });

  await knex.schema.createTable('balance_monitors', (t) => {
    t.text('tenant_id').notNullable();
    t.text('monitor_id').notNullable();
    t.text('account').notNullable();
    t.text('currency');
    t.text('field').notNullable();
    t.text('op').notNullable();
    t.bigInteger('amount').notNullable();
    t.text('description');
    t.bigInteger('created_position').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.bigInteger('deleted_position');
    t.primary(['tenant_id', 'monitor_id']);
  });
  await knex.raw('CREATE INDEX balance_monitors_by_account ON balance_monitors (tenant_id, account)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('balance_monitors');
  await knex.schema.dropTableIfExists('webhook_endpoint_health');
  await knex.schema.dropTableIfExists('webhook_delivery_attempts');
  await knex.schema.dropTableIfExists('webhook_deliveries');
}
