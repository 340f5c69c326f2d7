import { invariant } from '../domain/errors.js';
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
  invariant(dash > 0 && dot > dash + 1, () => `stream name ${streamName} is not {category}-{tenant}.{id}`);
  return {
    category: streamName.slice(0, dash),
    tenantId: streamName.slice(dash + 1, dot),
    entityId: streamName.slice(dot + 1),
  };
}

function isRecord(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readPosting(v: JsonValue, where: string): Posting {
  invariant(isRecord(v), `${where}: posting is not an object`);
  const { account, side, effect, amount, currency } = v;
  invariant(typeof account === 'string', `${where}: posting account`);
  invariant(side === 'debit' || side === 'credit', `${where}: posting side`);
  invariant(effect === 'post' || effect === 'hold' || effect === 'release', `${where}: posting effect`);
  invariant(typeof amount === 'number', `${where}: posting amount`);
  invariant(typeof currency === 'string', `${where}: posting currency`);
  return { account, side, effect, amount, currency };
}

/** The balanced journal entry carried in `data.entry`, or null for an event that moves no money. */
export function entryOf(event: RecordedEvent): JournalEntry | null {
  const raw = event.data.entry;
  if (raw === undefined || raw === null) return null;
  const where = `event ${event.id} (${event.type}) at ${event.position}`;
  invariant(isRecord(raw), `${where}: data.entry is not an object`);
  const { entryId, holdId, description, postings } = raw;
  invariant(typeof entryId === 'string' && entryId.length > 0, `${where}: entry.entryId`);
  invariant(holdId === undefined || holdId === null || typeof holdId === 'string', `${where}: entry.holdId`);
  invariant(typeof description === 'string', `${where}: entry.description`);
  invariant(Array.isArray(postings), `${where}: entry.postings`);
  const entry: JournalEntry = {
    entryId,
    description,
    postings: postings.map((p) => readPosting(p, where)),
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
  invariant(
    event.metadata.tenantId === fromStream,
    () => `event ${event.id}: metadata tenant ${event.metadata.tenantId} != stream tenant ${fromStream}`,
  );
  return fromStream;
}
