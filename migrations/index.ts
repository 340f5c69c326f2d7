import type { Knex } from 'knex';
import * as m0001 from './0001_event_store.js';
import * as m0010 from './0010_read_models.js';
import * as m0011 from './0011_postings_as_of_currency.js';
import * as m0030 from './0030_api_idempotency_keys.js';
import * as m0040 from './0040_stripe_webhook_events.js';
import * as m0041 from './0041_reconciliation.js';
import * as m0050 from './0050_process_manager_state.js';
import * as m20261202183000 from './20261202183000_console_read_models.js';
import * as m20261202184331 from './20261202184331_webhooks_and_balance_monitors.js';
import * as m20261204030000 from './20261204030000_client_metadata.js';
import * as m20261204031000 from './20261204031000_event_store_index_lookups.js';
import * as m20261204040000 from './20261204040000_stream_snapshots.js';
import * as m20261204050000 from './20261204050000_documents.js';
import * as m20261204060000 from './20261204060000_event_chain.js';
import * as m20261204070000 from './20261204070000_balances_large_volume.js';
import * as m20261204180000 from './20261204180000_booking_discounts.js';
import * as m20261204190000 from './20261204190000_effective_postings.js';
import * as m20261204200000 from './20261204200000_projection_stalls.js';

/**
 * Every migration, in order. Listed statically (not discovered from the file system) so migrations run
 * the same under tsx, vitest and compiled JavaScript. Number ranges per area keep parallel work apart:
 * 0001-0009 event store, 0010-0029 read models, 0030-0039 API, 0040-0049 Stripe/reconciliation.
 */
export interface Migration {
  name: string;
  up: (knex: Knex) => Promise<void>;
  down: (knex: Knex) => Promise<void>;
}

export const migrations: Migration[] = [
  { name: '0001_event_store', ...m0001 },
  { name: '0010_read_models', ...m0010 },
  { name: '0011_postings_as_of_currency', ...m0011 },
  { name: '0030_api_idempotency_keys', ...m0030 },
  { name: '0040_stripe_webhook_events', ...m0040 },
  { name: '0041_reconciliation', ...m0041 },
  { name: '0050_process_manager_state', ...m0050 },
  { name: '20261202183000_console_read_models', ...m20261202183000 },
  { name: '20261202184331_webhooks_and_balance_monitors', ...m20261202184331 },
  { name: '20261204030000_client_metadata', ...m20261204030000 },
  { name: '20261204031000_event_store_index_lookups', ...m20261204031000 },
  { name: '20261204040000_stream_snapshots', ...m20261204040000 },
  { name: '20261204050000_documents', ...m20261204050000 },
  { name: '20261204060000_event_chain', ...m20261204060000 },
  { name: '20261204070000_balances_large_volume', ...m20261204070000 },
  { name: '20261204180000_booking_discounts', ...m20261204180000 },
  { name: '20261204190000_effective_postings', ...m20261204190000 },
  { name: '20261204200000_projection_stalls', ...m20261204200000 },
];
