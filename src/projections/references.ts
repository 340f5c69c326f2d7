import type { EventMetadata } from '../domain/metadata.js';
import { type StreamId, TENANT_SETTINGS_ID } from '../domain/streams.js';
import type { JsonObject, JsonValue } from '../eventstore/port.js';

/**
 * What an event refers to: the things a finance admin searches for and reads the story of. One list
 * of rules for every flow, read from the ids events already carry (docs/ledger-flows.md: events repeat
 * the ids they concern), so a new flow shows up in search and in its story by adding its id fields
 * (and its stream category) here, nothing else.
 *
 * A reference is `(kind, id)`. Rules, in order:
 *  - the event's own stream names one (a booking stream's entity is that booking);
 *  - every top-level data field named in REFERENCE_FIELDS (and nested one level, e.g. `price`) names
 *    one of that kind;
 *  - every other top-level string value that looks like a Stripe object id (`pi_…`, `ch_…`, …) is a
 *    `stripe` reference (payment intents, charges, refunds, disputes, payouts, transfers, accounts);
 *  - the command's idempotency key is an `idempotency_key` reference (searchable by the key the caller
 *    sent: the API's `http:{caller}:` prefix is not part of the search term).
 * Arrays are not scanned: an event listing many objects (a reconciliation run's items) is a report, not
 * a party to each of them; `MAX_REFERENCES_PER_EVENT` bounds the rest.
 */
export type ReferenceKind =
  | 'student'
  | 'tutor'
  | 'booking'
  | 'payout'
  | 'topup'
  | 'refund'
  | 'adjustment'
  | 'adjustment_proposal'
  | 'reconciliation_run'
  | 'course'
  | 'subscription'
  | 'promotion'
  | 'stripe'
  | 'idempotency_key';

/** Data fields whose value is the id of a thing of that kind. Add a new flow's id fields here. */
export const REFERENCE_FIELDS: Readonly<Record<string, ReferenceKind>> = {
  studentId: 'student',
  tutorId: 'tutor',
  bookingId: 'booking',
  payoutId: 'payout',
  topUpId: 'topup',
  refundId: 'refund',
  adjustmentId: 'adjustment',
  proposalId: 'adjustment_proposal',
  runId: 'reconciliation_run',
  courseId: 'course',
  subscriptionId: 'subscription',
  promotionId: 'promotion',
};

/** Stream categories whose entity id is a reference (`booking-t.bk_1` is booking bk_1). */
export const STREAM_REFERENCES: Readonly<Record<string, ReferenceKind>> = {
  wallet: 'student',
  tutor: 'tutor',
  booking: 'booking',
  payout: 'payout',
  topup: 'topup',
  adjustment: 'adjustment',
  adjustmentproposal: 'adjustment_proposal',
  reconciliation: 'reconciliation_run',
  stripe: 'stripe',
  course: 'course',
  subscription: 'subscription',
};

/** Stripe object ids as Stripe writes them: a known prefix and at least 8 base62 characters. */
export const STRIPE_OBJECT_ID =
  /^(?:pi|ch|re|dp|po|tr|acct|txn|py|pyr|evt|in|sub|cus|prod|price)_[A-Za-z0-9]{8,}$/;

export const MAX_REFERENCES_PER_EVENT = 32;
/** Ids longer than this are not references (entity ids are at most 64 characters, keys 255). */
const MAX_REFERENCE_CHARS = 255;
const API_KEY_PREFIX = /^http:[A-Za-z0-9_-]{1,64}:/;

export interface Reference {
  kind: ReferenceKind;
  id: string;
}

function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The references of one event, without duplicates, in a fixed order (stream, fields, Stripe, key). A
 * decoded event fits; the scan reads its data as JSON, by field name, whatever its type.
 */
export function referencesOf(event: {
  stream: StreamId;
  data: JsonObject;
  metadata: Pick<EventMetadata, 'idempotencyKey'>;
}): Reference[] {
  const out: Reference[] = [];
  const seen = new Set<string>();
  const add = (kind: ReferenceKind, id: string) => {
    if (id.length === 0 || id.length > MAX_REFERENCE_CHARS || out.length >= MAX_REFERENCES_PER_EVENT) return;
    const key = `${kind}\u0000${id}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ kind, id });
  };
  const { stream } = event;
  const own = STREAM_REFERENCES[stream.category];
  if (own && stream.id !== TENANT_SETTINGS_ID) add(own, stream.id);
  const scan = (data: { [key: string]: JsonValue }, depth: number) => {
    for (const [field, value] of Object.entries(data)) {
      if (typeof value === 'string') {
        const kind = Object.hasOwn(REFERENCE_FIELDS, field) ? REFERENCE_FIELDS[field] : undefined;
        if (kind) add(kind, value);
        else if (STRIPE_OBJECT_ID.test(value)) add('stripe', value);
      } else if (depth === 0 && isObject(value) && field !== 'entry') {
        scan(value, 1);
      }
    }
  };
  scan(event.data, 0);
  add('idempotency_key', event.metadata.idempotencyKey);
  return out;
}

/** What a search matches a reference by: lowercase, and an API idempotency key without its prefix. */
export function searchTermOf(reference: Reference): string {
  const id = reference.kind === 'idempotency_key' ? reference.id.replace(API_KEY_PREFIX, '') : reference.id;
  return id.toLowerCase();
}
