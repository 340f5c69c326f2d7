import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type ValueError } from '@sinclair/typebox/compiler';
import { ADJUSTMENT_EVENTS } from './adjustment.js';
import { ADJUSTMENT_PROPOSAL_EVENTS } from './adjustmentProposal.js';
import { BALANCE_MONITOR_EVENTS } from './balanceMonitor.js';
import { BILLING_SETTINGS_EVENTS } from './billingSettings.js';
import { BOOKING_EVENTS } from './booking.js';
import type { EventSchemas, EventsOf } from './decider.js';
import { DOCUMENT_SERIES_EVENTS } from './documentSeries.js';
import { InvariantViolation } from './errors.js';
import { GUARDIANSHIP_EVENTS } from './guardianship.js';
import { assertBalanced, type JournalEntry } from './journal.js';
import { type EventMetadata, EventMetadataSchema } from './metadata.js';
import { PAYOUT_EVENTS } from './payout.js';
import { PERIOD_EVENTS } from './periods.js';
import { PROMO_CODE_EVENTS } from './promoCode.js';
import { RECONCILIATION_EVENTS } from './reconciliationRun.js';
import { REFERRAL_EVENTS } from './referral.js';
import { parseStreamName, type StreamCategory, type StreamId } from './streams.js';
import { STRIPE_CHARGE_EVENTS } from './stripeCharge.js';
import { SUBSCRIPTION_EVENTS } from './subscription.js';
import { PLAN_CATALOG_EVENTS } from './subscriptionPlans.js';
import { TENANT_SETTINGS_EVENTS } from './tenantSettings.js';
import { TOP_UP_EVENTS } from './topUp.js';
import { TUTOR_EVENTS } from './tutor.js';
import { WALLET_EVENTS } from './wallet.js';
import { WEBHOOK_ENDPOINT_EVENTS } from './webhookEndpoints.js';

/**
 * Every event the ledger stores, by the stream category that holds it: the schemas each aggregate
 * declares next to its decider. The one list of event types; everything else (subscription filters,
 * the decoder, per-category lists) derives from it.
 */
export const EVENT_SCHEMAS = {
  wallet: WALLET_EVENTS,
  booking: BOOKING_EVENTS,
  tutor: TUTOR_EVENTS,
  payout: PAYOUT_EVENTS,
  topup: TOP_UP_EVENTS,
  tenant: TENANT_SETTINGS_EVENTS,
  adjustment: ADJUSTMENT_EVENTS,
  adjustmentproposal: ADJUSTMENT_PROPOSAL_EVENTS,
  stripe: STRIPE_CHARGE_EVENTS,
  reconciliation: RECONCILIATION_EVENTS,
  webhook: WEBHOOK_ENDPOINT_EVENTS,
  balancemonitor: BALANCE_MONITOR_EVENTS,
  docseries: DOCUMENT_SERIES_EVENTS,
  billing: BILLING_SETTINGS_EVENTS,
  promo: PROMO_CODE_EVENTS,
  guardianship: GUARDIANSHIP_EVENTS,
  period: PERIOD_EVENTS,
  plans: PLAN_CATALOG_EVENTS,
  subscription: SUBSCRIPTION_EVENTS,
  referral: REFERRAL_EVENTS,
} as const satisfies Record<StreamCategory, EventSchemas>;

type Schemas = typeof EVENT_SCHEMAS;
type AllSchemas = Schemas['wallet'] &
  Schemas['booking'] &
  Schemas['tutor'] &
  Schemas['payout'] &
  Schemas['topup'] &
  Schemas['tenant'] &
  Schemas['adjustment'] &
  Schemas['adjustmentproposal'] &
  Schemas['stripe'] &
  Schemas['reconciliation'] &
  Schemas['webhook'] &
  Schemas['balancemonitor'] &
  Schemas['docseries'] &
  Schemas['billing'] &
  Schemas['promo'] &
  Schemas['guardianship'] &
  Schemas['period'] &
  Schemas['plans'] &
  Schemas['subscription'] &
  Schemas['referral'];

/** The domain's event union: every event of every stream, `data` typed by its schema. */
export type LedgerEvent = EventsOf<AllSchemas>;
export type LedgerEventType = LedgerEvent['type'];
export type EventData<T extends LedgerEventType> = Static<AllSchemas[T]>;
export type EventTypeOf<C extends StreamCategory> = keyof Schemas[C] & string;

/** Event types each category's stream may hold (for subscription filters and checks). */
export const EVENT_TYPES = Object.fromEntries(
  Object.entries(EVENT_SCHEMAS).map(([category, schemas]) => [category, Object.keys(schemas)]),
) as unknown as { readonly [C in StreamCategory]: readonly EventTypeOf<C>[] };

/** Every event type the ledger writes. */
export const LEDGER_EVENT_TYPES: readonly LedgerEventType[] = Object.values(EVENT_TYPES).flat();

export function isLedgerEventType(type: string): type is LedgerEventType {
  return KNOWN.has(type);
}

/**
 * A stored event as the decoder needs it: what an event store hands out (the port's RecordedEvent) or
 * what a command just appended (its events and the position of the append).
 */
export interface StoredEvent {
  id: string;
  type: string;
  streamName: string;
  position: bigint;
  data: unknown;
  metadata: unknown;
}

/** A stored event after decoding: its data and metadata checked against their schemas and typed. */
export type DecodedEvent<T extends LedgerEventType = LedgerEventType> = {
  [K in T]: {
    id: string;
    type: K;
    streamName: string;
    stream: StreamId;
    /** The event's tenant: its metadata's, which its stream name agrees with. */
    tenantId: string;
    position: bigint;
    data: EventData<K>;
    metadata: EventMetadata;
  };
}[T];

/** A stored event that is not what the ledger writes: a bug upstream or a damaged store, never user input. */
export class MalformedEventError extends InvariantViolation {
  constructor(
    readonly event: { id: string; type: string; streamName: string; position: bigint },
    readonly problems: readonly string[],
  ) {
    super(
      `event ${event.id} (${event.type}) at position ${event.position} in ${event.streamName} is malformed: ${problems.join('; ')}`,
    );
    this.name = 'MalformedEventError';
  }
}

const MAX_PROBLEMS = 5;

interface Known {
  category: StreamCategory;
  check: ReturnType<typeof TypeCompiler.Compile<TSchema>>;
}

const KNOWN = new Map<string, Known>();
for (const [category, schemas] of Object.entries(EVENT_SCHEMAS) as Array<[StreamCategory, EventSchemas]>) {
  for (const [type, schema] of Object.entries(schemas)) {
    if (KNOWN.has(type)) throw new Error(`event type ${type} is declared twice`);
    KNOWN.set(type, { category, check: TypeCompiler.Compile(schema) });
  }
}
const METADATA = TypeCompiler.Compile(EventMetadataSchema);

function problemsOf(where: string, errors: Iterable<ValueError>): string[] {
  const out: string[] = [];
  for (const e of errors) {
    out.push(`${where}${e.path || '/'}: ${e.message}`);
    if (out.length === MAX_PROBLEMS) break;
  }
  return out;
}

/**
 * Decodes a stored event into the domain's event union, checking every field: a known type, in a
 * stream of that type's category, metadata of the right shape naming the stream's tenant, data
 * matching the type's schema, and a balanced journal entry when it carries one. Throws
 * MalformedEventError otherwise; the result's `data` is typed by its `type`.
 */
export function decodeEvent(stored: StoredEvent): DecodedEvent {
  const fail = (problems: string[]): never => {
    throw new MalformedEventError(stored, problems);
  };
  const known = KNOWN.get(stored.type);
  if (!known) return fail(['unknown event type']);
  const stream = parseStreamName(stored.streamName);
  if (!stream) return fail(['stream name is not {category}-{tenant}.{id} of a ledger category']);
  if (stream.category !== known.category) {
    return fail([`a ${known.category} event in a ${stream.category} stream`]);
  }
  if (!METADATA.Check(stored.metadata)) return fail(problemsOf('metadata', METADATA.Errors(stored.metadata)));
  const metadata = stored.metadata as EventMetadata;
  if (metadata.tenantId !== stream.tenantId) {
    return fail([`metadata names tenant ${metadata.tenantId}, the stream tenant ${stream.tenantId}`]);
  }
  if (!known.check.Check(stored.data)) return fail(problemsOf('data', known.check.Errors(stored.data)));
  const entry = (stored.data as { entry?: JournalEntry }).entry;
  if (entry !== undefined) {
    try {
      assertBalanced(entry);
    } catch (error) {
      return fail([`data/entry: ${(error as Error).message}`]);
    }
  }
  return {
    id: stored.id,
    type: stored.type,
    streamName: stored.streamName,
    stream,
    tenantId: stream.tenantId,
    position: stored.position,
    data: stored.data,
    metadata,
  } as DecodedEvent;
}

/** Decodes an event that must be of one of `types` (a flow step's trigger, a view's source). */
export function decodeEventOf<T extends LedgerEventType>(
  stored: StoredEvent,
  types: readonly T[],
): DecodedEvent<T> {
  const event = decodeEvent(stored);
  if (!(types as readonly string[]).includes(event.type)) {
    throw new MalformedEventError(stored, [`expected ${types.join(' or ')}`]);
  }
  return event as DecodedEvent<T>;
}

/** The balanced journal entry an event carries, or null for an event that moves no money. */
export function entryOf(event: DecodedEvent): JournalEntry | null {
  return (event.data as { entry?: JournalEntry }).entry ?? null;
}
