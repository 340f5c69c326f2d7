import { InvariantViolation } from '../domain/errors.js';
import { assertBalanced, type JournalEntry, type Posting } from '../domain/journal.js';
import type { JsonValue, RecordedEvent } from '../eventstore/port.js';

/**
 * Reading what projections need out of a recorded event. Events were validated when they were decided;
 * a malformed one here is a bug upstream, so it throws (InvariantViolation) rather than being skipped:
 * a read model that silently drops money is worse than one that stops.
 */

export interface StreamParts {
  category: string;
  tenantId: string;
  entityId: string;
}

/** `{category}-{tenantId}.{entityId}`: the first dash ends the category, the first dot ends the tenant. */
export function parseStreamName(streamName: string): StreamParts {
  const dash = streamName.indexOf('-');
  const dot = streamName.indexOf('.', dash + 1);
  // Checks on the per-event path throw directly: no message or closure is built unless they fail.
  if (!(dash > 0 && dot > dash + 1)) {
    throw new InvariantViolation(`stream name ${streamName} is not {category}-{tenant}.{id}`);
  }
  return {
    category: streamName.slice(0, dash),
    tenantId: streamName.slice(dash + 1, dot),
    entityId: streamName.slice(dot + 1),
  };
}

function isRecord(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A malformed event is a bug upstream: stop with where it is (message built only on failure). */
function malformed(event: RecordedEvent, what: string): never {
  throw new InvariantViolation(`event ${event.id} (${event.type}) at ${event.position}: ${what}`);
}

function readPosting(v: JsonValue, event: RecordedEvent): Posting {
  if (!isRecord(v)) malformed(event, 'posting is not an object');
  const { account, side, effect, amount, currency } = v;
  if (typeof account !== 'string') malformed(event, 'posting account');
  if (side !== 'debit' && side !== 'credit') malformed(event, 'posting side');
  if (effect !== 'post' && effect !== 'hold' && effect !== 'release') malformed(event, 'posting effect');
  if (typeof amount !== 'number') malformed(event, 'posting amount');
  if (typeof currency !== 'string') malformed(event, 'posting currency');
  return { account, side, effect, amount, currency };
}

/** The balanced journal entry carried in `data.entry`, or null for an event that moves no money. */
export function entryOf(event: RecordedEvent): JournalEntry | null {
  const raw = event.data.entry;
  if (raw === undefined || raw === null) return null;
  if (!isRecord(raw)) malformed(event, 'data.entry is not an object');
  const { entryId, holdId, description, postings } = raw;
  if (typeof entryId !== 'string' || entryId.length === 0) malformed(event, 'entry.entryId');
  if (!(holdId === undefined || holdId === null || typeof holdId === 'string'))
    malformed(event, 'entry.holdId');
  if (typeof description !== 'string') malformed(event, 'entry.description');
  if (!Array.isArray(postings)) malformed(event, 'entry.postings');
  const entry: JournalEntry = {
    entryId,
    description,
    postings: postings.map((p) => readPosting(p, event)),
    ...(typeof holdId === 'string' ? { holdId } : {}),
  };
  assertBalanced(entry);
  return entry;
}

/** Tenant of an event: its metadata, which must agree with its stream name (no event crosses tenants). */
export function tenantOf(
  event: RecordedEvent,
  stream: StreamParts = parseStreamName(event.streamName),
): string {
  const fromStream = stream.tenantId;
  if (event.metadata.tenantId !== fromStream) {
    throw new InvariantViolation(
      `event ${event.id}: metadata tenant ${event.metadata.tenantId} != stream tenant ${fromStream}`,
    );
  }
  return fromStream;
}
