import type { Knex } from 'knex';
import { ACCOUNT_VOLUME_WATCH_FROM } from '../domain/ledgerLimits.js';
import { createEffectivePostingsTable, effectivePostingsIndexStatement } from './effectivePostings.js';

/**
 * Read-model DDL. The live read models live in their own Postgres schema; a rebuild builds the same
 * tables in a shadow schema and swaps the schemas by renaming them in one transaction, so readers keep
 * using the old tables until the instant of the swap. The projection checkpoint lives inside the schema
 * it describes, so the shadow has its own (resumable) checkpoint and moves with the swap.
 *
 * Two phases: `createReadModelTables` (tables, plus the primary keys the projection's upserts need) and
 * `finalizeReadModelSchema` (secondary indexes, row-level security, grants). A rebuild bulk-loads before
 * the second phase, because building an index once after the load is far cheaper than maintaining it
 * row by row.
 */
export const LIVE_SCHEMA = 'ledger_read';
export const SHADOW_SCHEMA = 'ledger_read_next';
export const RETIRED_SCHEMA = 'ledger_read_old';
/** Non-superuser role that every API read runs as (SET LOCAL ROLE inside the read transaction). */
export const APP_ROLE = 'ledger_app';
/** The one projection maintaining every read model, so all tables are consistent at one position. */
export const LEDGER_PROJECTION = 'ledger';

export type ReadModelSchema = typeof LIVE_SCHEMA | typeof SHADOW_SCHEMA;

/** Tables holding tenant rows; each gets forced row-level security. */
export const TENANT_TABLES = [
  'balances',
  'postings',
  'effective_postings',
  'journal_entries',
  'audit_events',
  'bookings',
  'payouts',
  'top_ups',
  'tutor_payouts',
  'search_terms',
  'event_refs',
  'daily_metrics',
  'daily_active_wallets',
] as const;

/** Roles are cluster-wide: create the app role once, tolerating a concurrent creator. */
export async function ensureAppRole(knex: Knex): Promise<void> {
  await knex.raw(`
    DO $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
        CREATE ROLE ${APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
      END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$;`);
  // A non-superuser owner must be a member to SET ROLE; a superuser (tests, PGlite) already may.
  await knex.raw(`
    DO $$
    BEGIN
      IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT ${APP_ROLE} TO %I', current_user);
      END IF;
    EXCEPTION WHEN insufficient_privilege OR duplicate_object THEN NULL;
    END $$;`);
}

export async function createReadModelTables(knex: Knex, schema: ReadModelSchema): Promise<void> {
  const s = schema;
  await knex.raw(`CREATE SCHEMA ${s}`);
  await knex.raw(`
    CREATE TABLE ${s}.checkpoint (
      name text PRIMARY KEY,
      position bigint NOT NULL,
      events_applied bigint NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`INSERT INTO ${s}.checkpoint (name, position) VALUES (?, -1)`, [LEDGER_PROJECTION]);
  await knex.raw(stallsTableStatement(s));
  await knex.raw(`
    CREATE TABLE ${s}.balances (
      tenant_id text NOT NULL,
      account text NOT NULL,
      currency text NOT NULL,
      debits_pending bigint NOT NULL,
      debits_posted bigint NOT NULL,
      credits_pending bigint NOT NULL,
      credits_posted bigint NOT NULL,
      available bigint NOT NULL,
      version bigint NOT NULL,
      last_position bigint NOT NULL,
      last_occurred_at timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, account, currency)
    ) WITH (fillfactor = 70)`); // every batch rewrites its touched rows: leave room for HOT updates
  // One row per posting line with the account's totals AFTER it: "balance as of" is one index seek.
  await knex.raw(`
    CREATE TABLE ${s}.postings (
      tenant_id text NOT NULL,
      position bigint NOT NULL,
      line integer NOT NULL,
      account text NOT NULL,
      currency text NOT NULL,
      entry_id text NOT NULL,
      side text NOT NULL,
      effect text NOT NULL,
      amount bigint NOT NULL,
      debits_pending bigint NOT NULL,
      debits_posted bigint NOT NULL,
      credits_pending bigint NOT NULL,
      credits_posted bigint NOT NULL,
      available bigint NOT NULL,
      version bigint NOT NULL,
      occurred_at timestamptz NOT NULL
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.journal_entries (
      tenant_id text NOT NULL,
      entry_id text NOT NULL,
      position bigint NOT NULL,
      description text NOT NULL,
      hold_id text,
      client_metadata jsonb
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.audit_events (
      tenant_id text NOT NULL,
      position bigint NOT NULL,
      event_id text NOT NULL,
      event_type text NOT NULL,
      stream_name text NOT NULL,
      category text NOT NULL,
      entity_id text NOT NULL,
      correlation_id text NOT NULL,
      causation_id text NOT NULL,
      actor_id text NOT NULL,
      actor_role text NOT NULL,
      occurred_at timestamptz NOT NULL,
      entry_id text
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.bookings (
      tenant_id text NOT NULL,
      booking_id text NOT NULL,
      student_id text NOT NULL,
      tutor_id text NOT NULL,
      currency text NOT NULL,
      price bigint NOT NULL,
      scheduled_at text NOT NULL,
      status text NOT NULL,
      hold_id text NOT NULL,
      captured bigint NOT NULL,
      refunded bigint NOT NULL,
      tutor_share bigint NOT NULL,
      commission bigint NOT NULL,
      cancellation_fee bigint NOT NULL,
      last_position bigint NOT NULL,
      discounts jsonb NOT NULL DEFAULT '[]'::jsonb,
      PRIMARY KEY (tenant_id, booking_id)
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.payouts (
      tenant_id text NOT NULL,
      payout_id text NOT NULL,
      tutor_id text NOT NULL,
      currency text NOT NULL,
      amount bigint NOT NULL,
      status text NOT NULL,
      stripe_transfer_id text,
      stripe_payout_id text,
      failure_reason text,
      last_position bigint NOT NULL,
      PRIMARY KEY (tenant_id, payout_id)
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.top_ups (
      tenant_id text NOT NULL,
      top_up_id text NOT NULL,
      student_id text NOT NULL,
      currency text NOT NULL,
      amount bigint NOT NULL,
      status text NOT NULL,
      payment_intent_id text,
      client_secret text,
      failure_reason text,
      refunded bigint NOT NULL,
      last_position bigint NOT NULL,
      PRIMARY KEY (tenant_id, top_up_id)
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.tutor_payouts (
      tenant_id text NOT NULL,
      tutor_id text NOT NULL,
      currency text NOT NULL,
      paid_out bigint NOT NULL,
      last_position bigint NOT NULL,
      PRIMARY KEY (tenant_id, tutor_id, currency)
    )`);
  await createConsoleReadModelTables(knex, schema);
  await createEffectivePostingsTable(knex, schema);
}

/**
 * The finance console's read models (references.ts, dailyMetrics.ts), in their own function so the
 * migration that added them to an existing live schema creates exactly these:
 *  - search_terms: one row per thing events refer to (student, booking, Stripe object, idempotency key…),
 *    with the first and last event that did;
 *  - event_refs: one row per (thing, event), the events of a thing's story;
 *  - daily_metrics: per UTC day, currency and metric, the amount and count of events (analytics);
 *  - daily_active_wallets: one row per wallet and day it moved money.
 */
export async function createConsoleReadModelTables(knex: Knex, schema: ReadModelSchema): Promise<void> {
  const s = schema;
  await knex.raw(`
    CREATE TABLE ${s}.search_terms (
      tenant_id text NOT NULL,
      kind text NOT NULL,
      ref text NOT NULL,
      term text NOT NULL,
      first_position bigint NOT NULL,
      first_event_type text NOT NULL,
      last_position bigint NOT NULL,
      last_event_type text NOT NULL,
      last_occurred_at timestamptz NOT NULL,
      events bigint NOT NULL,
      PRIMARY KEY (tenant_id, kind, ref)
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.event_refs (
      tenant_id text NOT NULL,
      kind text NOT NULL,
      ref text NOT NULL,
      position bigint NOT NULL
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.daily_metrics (
      tenant_id text NOT NULL,
      day date NOT NULL,
      currency text NOT NULL,
      metric text NOT NULL,
      amount bigint NOT NULL,
      count bigint NOT NULL,
      PRIMARY KEY (tenant_id, day, currency, metric)
    )`);
  await knex.raw(`
    CREATE TABLE ${s}.daily_active_wallets (
      tenant_id text NOT NULL,
      day date NOT NULL,
      student_id text NOT NULL,
      PRIMARY KEY (tenant_id, day, student_id)
    )`);
}

/**
 * Tenants whose read models stopped at an event the projection could not apply (stalls.ts). In the
 * read-model schema, beside the checkpoint it is written with.
 */
export function stallsTableStatement(schema: ReadModelSchema): string {
  return `CREATE TABLE IF NOT EXISTS ${schema}.projection_stalls (
      projection text NOT NULL,
      tenant_id text NOT NULL,
      position bigint NOT NULL,
      event_id text NOT NULL,
      stream_name text NOT NULL,
      event_type text NOT NULL,
      reason text NOT NULL,
      stalled_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (projection, tenant_id)
    )`;
}

/** Secondary indexes of the console's read models and of its lookups into the older tables. */
export function consoleIndexStatements(schema: ReadModelSchema): string[] {
  const s = schema;
  return [
    `CREATE UNIQUE INDEX IF NOT EXISTS event_refs_pkey ON ${s}.event_refs (tenant_id, kind, ref, position)`,
    // Prefix search (LIKE 'q%') in any collation.
    `CREATE INDEX IF NOT EXISTS search_terms_term ON ${s}.search_terms (tenant_id, term text_pattern_ops)`,
    `CREATE INDEX IF NOT EXISTS audit_events_event_id ON ${s}.audit_events (tenant_id, event_id text_pattern_ops)`,
    `CREATE INDEX IF NOT EXISTS audit_events_causation ON ${s}.audit_events (tenant_id, causation_id)`,
    `CREATE INDEX IF NOT EXISTS audit_events_entry_time ON ${s}.audit_events (tenant_id, occurred_at, position)
       WHERE entry_id IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS journal_entries_prefix ON ${s}.journal_entries (tenant_id, entry_id text_pattern_ops)`,
    clientMetadataIndexStatement(schema),
    `CREATE INDEX IF NOT EXISTS balances_account_prefix ON ${s}.balances (tenant_id, account text_pattern_ops, currency)`,
    largeVolumeIndexStatement(schema),
  ];
}

/**
 * Balances whose volume (the sum of the four totals) is past half the ledger's per-account limit: the
 * few the command layer watches before it lets more money onto a shared account
 * (src/commands/accountVolumeGuard.ts). Partial, so it holds only those rows and a lookup of "which
 * accounts are near the limit" reads nothing else.
 */
export const LARGE_VOLUME_SQL = '(debits_pending + debits_posted + credits_pending + credits_posted)';
export function largeVolumeIndexStatement(schema: ReadModelSchema): string {
  return `CREATE INDEX IF NOT EXISTS balances_large_volume ON ${schema}.balances (tenant_id, account, currency)
            WHERE ${LARGE_VOLUME_SQL} >= ${ACCOUNT_VOLUME_WATCH_FROM}`;
}

/**
 * Entries by the caller's metadata (`?metadata[key]=value` is `client_metadata @> {...}`): a GIN index
 * over the entries that carry any, so a filter finds its entries without scanning an account's lines.
 */
export function clientMetadataIndexStatement(schema: ReadModelSchema): string {
  return `CREATE INDEX IF NOT EXISTS journal_entries_client_metadata ON ${schema}.journal_entries
            USING gin (client_metadata jsonb_path_ops) WHERE client_metadata IS NOT NULL`;
}

/**
 * The "balance as of" indexes. The as-of query names tenant, account and currency by equality and orders
 * newest first, so with currency in the key it is one backward seek returning the first row; without
 * it, a multi-currency account would have to filter, and the planner could prefer a bitmap scan + sort.
 * Migration 0011 replaces the earlier currency-less indexes (`RETIRED_POSTINGS_INDEXES`) with these.
 */
export const POSTINGS_AS_OF_INDEXES = [
  { name: 'postings_as_of_position', columns: '(tenant_id, account, currency, position DESC, line DESC)' },
  {
    name: 'postings_as_of_time',
    columns: '(tenant_id, account, currency, occurred_at DESC, position DESC, line DESC)',
  },
] as const;
/** The as-of indexes before migration 0011 (no currency); its `down` restores them. */
export const RETIRED_POSTINGS_INDEXES = [
  { name: 'postings_account_position', columns: '(tenant_id, account, position DESC, line DESC)' },
  {
    name: 'postings_account_time',
    columns: '(tenant_id, account, occurred_at DESC, position DESC, line DESC)',
  },
] as const;

/** Secondary indexes, row-level security and grants. Idempotent, so a resumed rebuild may rerun it. */
export async function finalizeReadModelSchema(knex: Knex, schema: ReadModelSchema): Promise<void> {
  for (const sql of readModelIndexStatements(schema)) await knex.raw(sql);
  await secureReadModelSchema(knex, schema);
}

/**
 * The secondary-index DDL of finalizeReadModelSchema, largest tables first; each statement stands alone
 * (idempotent, independent of the others), so a bulk loader may run them on several connections.
 */
export function readModelIndexStatements(schema: ReadModelSchema): string[] {
  const s = schema;
  return [
    `CREATE UNIQUE INDEX IF NOT EXISTS postings_pkey ON ${s}.postings (tenant_id, position, line)`,
    ...POSTINGS_AS_OF_INDEXES.map(
      ({ name, columns }) => `CREATE INDEX IF NOT EXISTS ${name} ON ${s}.postings ${columns}`,
    ),
    // A shadow finalized by an older version and resumed now would otherwise keep both generations.
    ...RETIRED_POSTINGS_INDEXES.map(({ name }) => `DROP INDEX IF EXISTS ${s}.${name}`),
    effectivePostingsIndexStatement(schema),
    `CREATE UNIQUE INDEX IF NOT EXISTS journal_entries_pkey ON ${s}.journal_entries (tenant_id, entry_id)`,
    `CREATE UNIQUE INDEX IF NOT EXISTS audit_events_pkey ON ${s}.audit_events (tenant_id, position)`,
    `CREATE INDEX IF NOT EXISTS audit_events_correlation ON ${s}.audit_events (tenant_id, correlation_id, position)`,
    `CREATE INDEX IF NOT EXISTS audit_events_entity ON ${s}.audit_events (tenant_id, category, entity_id, position)`,
    `CREATE INDEX IF NOT EXISTS audit_events_actor ON ${s}.audit_events (tenant_id, actor_id, position)`,
    `CREATE INDEX IF NOT EXISTS bookings_student ON ${s}.bookings (tenant_id, student_id, booking_id)`,
    `CREATE INDEX IF NOT EXISTS bookings_tutor ON ${s}.bookings (tenant_id, tutor_id, booking_id)`,
    `CREATE INDEX IF NOT EXISTS payouts_tutor ON ${s}.payouts (tenant_id, tutor_id, payout_id)`,
    ...consoleIndexStatements(schema),
  ];
}

/** Row-level security and grants of finalizeReadModelSchema. Idempotent. */
export async function secureReadModelSchema(knex: Knex, schema: ReadModelSchema): Promise<void> {
  const s = schema;
  await knex.raw(`GRANT USAGE ON SCHEMA ${s} TO ${APP_ROLE}`);
  await knex.raw(`GRANT SELECT ON ${s}.checkpoint TO ${APP_ROLE}`);
  await knex.raw(`GRANT SELECT ON ${s}.projection_stalls TO ${APP_ROLE}`);
  for (const table of TENANT_TABLES) {
    await knex.raw(`ALTER TABLE ${s}.${table} ENABLE ROW LEVEL SECURITY`);
    // FORCE: the owner is subject to the policies too, so only the explicit writer policy lets it in.
    await knex.raw(`ALTER TABLE ${s}.${table} FORCE ROW LEVEL SECURITY`);
    await knex.raw(`GRANT SELECT ON ${s}.${table} TO ${APP_ROLE}`);
    await knex.raw(`DROP POLICY IF EXISTS tenant_read ON ${s}.${table}`);
    // No tenant setting -> NULL -> no row matches: a query that forgets its tenant returns nothing.
    await knex.raw(`
      CREATE POLICY tenant_read ON ${s}.${table} FOR SELECT TO ${APP_ROLE}
      USING (tenant_id = nullif(current_setting('app.tenant_id', true), ''))`);
    await knex.raw(`DROP POLICY IF EXISTS projection_writer ON ${s}.${table}`);
    // The projection writes every tenant: the schema owner (the role that migrates and projects) gets an
    // explicit all-rows policy instead of relying on superuser or BYPASSRLS.
    await knex.raw(`
      DO $$ BEGIN
        EXECUTE format('CREATE POLICY projection_writer ON ${s}.${table} FOR ALL TO %I USING (true) WITH CHECK (true)',
                       current_user);
      END $$;`);
  }
}

/**
 * Refreshes the planner statistics of every table of a schema. A rebuild must run it before its swap:
 * freshly loaded tables have none, and without them the planner misjudges the as-of seek on a hot
 * account (it estimated a handful of rows and chose a bitmap scan + sort over 500k postings).
 */
export async function analyzeReadModels(knex: Knex, schema: ReadModelSchema): Promise<void> {
  for (const table of ['checkpoint', ...TENANT_TABLES]) await knex.raw(`ANALYZE ${schema}.${table}`);
}
