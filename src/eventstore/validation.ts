import { UUID_PATTERN } from '../domain/ids.js';
import {
  type AppendOptions,
  type EventFilter,
  type EventToAppend,
  InvalidAppendError,
  type RecordedEvent,
} from './port.js';

/** Bounds shared by every adapter, so behaviour does not depend on the store behind the port. */
export const MAX_EVENTS_PER_APPEND = 1_000;
export const MAX_EVENT_BYTES = 1024 * 1024;
export const MAX_READ_COUNT = 10_000;

const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$/;
const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9_.]{0,99}$/;
/**
 * JSON.stringify escapes NUL as \u0000 and lone surrogates as \udXXX; Postgres jsonb refuses both, so
 * every adapter refuses them up front (an unescaped backslash run of even length precedes a real escape).
 */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/**
 * UNSTORABLE_ESCAPE.test(json), skipping the regex scan when no backslash precedes a `u` or `U` (no
 * match is possible then): almost no event carries one, so the scan is skipped for almost all.
 */
export function hasUnstorableEscape(json: string): boolean {
  return (json.includes('\\u') || json.includes('\\U')) && UNSTORABLE_ESCAPE.test(json);
}

export function assertValidStreamName(streamName: unknown): asserts streamName is string {
  if (typeof streamName !== 'string' || !STREAM_NAME.test(streamName)) {
    throw new InvalidAppendError(
      `invalid stream name ${JSON.stringify(streamName)}: 1-200 chars of [A-Za-z0-9_.:@-], not starting with a symbol`,
    );
  }
}

/** Validates an append and returns each event's serialized size (callers reuse it). */
export function validateAppend(streamName: unknown, events: unknown, options: AppendOptions): void {
  assertValidStreamName(streamName);
  if (!Array.isArray(events) || events.length === 0) {
    throw new InvalidAppendError(`append to ${streamName}: no events`);
  }
  if (events.length > MAX_EVENTS_PER_APPEND) {
    throw new InvalidAppendError(
      `append to ${streamName}: ${events.length} events, at most ${MAX_EVENTS_PER_APPEND} per append`,
    );
  }
  const expected: unknown = options?.expectedRevision;
  const validExpected =
    expected === 'no_stream' ||
    expected === 'stream_exists' ||
    expected === 'any' ||
    (typeof expected === 'bigint' && expected >= 0n);
  if (!validExpected) {
    throw new InvalidAppendError(
      `append to ${streamName}: expectedRevision must be 'no_stream', 'stream_exists', 'any' or a bigint >= 0, got ${typeof expected === 'bigint' ? expected.toString() : JSON.stringify(expected)}`,
    );
  }
  const ids = new Set<string>();
  for (let index = 0; index < events.length; index++) {
    const e = events[index] as Partial<EventToAppend> | null;
    if (e === null || typeof e !== 'object') throw new InvalidAppendError(`event ${index}: not an object`);
    if (typeof e.id !== 'string' || !UUID_PATTERN.test(e.id)) {
      throw new InvalidAppendError(`event ${index}: id must be a lowercase UUID`);
    }
    if (ids.has(e.id)) throw new InvalidAppendError(`event ${index}: duplicate id ${e.id} in one append`);
    ids.add(e.id);
    if (typeof e.type !== 'string' || !EVENT_TYPE.test(e.type)) {
      throw new InvalidAppendError(`event ${index}: type must match ${EVENT_TYPE.source}`);
    }
    if (e.data === null || typeof e.data !== 'object' || Array.isArray(e.data)) {
      throw new InvalidAppendError(`event ${index} (${e.type}): data must be a JSON object`);
    }
    if (e.metadata === null || typeof e.metadata !== 'object') {
      throw new InvalidAppendError(`event ${index} (${e.type}): metadata must be an object`);
    }
    const dataJson = JSON.stringify(e.data);
    const metadataJson = JSON.stringify(e.metadata);
    if (hasUnstorableEscape(dataJson) || hasUnstorableEscape(metadataJson)) {
      throw new InvalidAppendError(
        `event ${index} (${e.type}): strings must not contain NUL characters or unpaired surrogates`,
      );
    }
    const bytes = Buffer.byteLength(dataJson) + Buffer.byteLength(metadataJson);
    if (bytes > MAX_EVENT_BYTES) {
      throw new InvalidAppendError(`event ${index} (${e.type}): ${bytes} bytes, at most ${MAX_EVENT_BYTES}`);
    }
  }
}

export function assertValidMaxCount(maxCount: unknown): asserts maxCount is number {
  if (
    typeof maxCount !== 'number' ||
    !Number.isInteger(maxCount) ||
    maxCount < 1 ||
    maxCount > MAX_READ_COUNT
  ) {
    throw new InvalidAppendError(`maxCount must be an integer in 1..${MAX_READ_COUNT}`);
  }
}

export function matchesFilter(
  event: Pick<RecordedEvent, 'streamName' | 'type'>,
  filter?: EventFilter,
): boolean {
  if (!filter) return true;
  const { streamNamePrefixes, eventTypes } = filter;
  if (streamNamePrefixes && !streamNamePrefixes.some((p) => event.streamName.startsWith(p))) return false;
  if (eventTypes && !eventTypes.includes(event.type)) return false;
  return true;
}

/** Stable serialization used to compare an idempotent re-append with the original. */
export function sameContent(
  a: Pick<EventToAppend, 'type' | 'data'>,
  b: Pick<EventToAppend, 'type' | 'data'>,
) {
  return a.type === b.type && canonicalJson(a.data) === canonicalJson(b.data);
}

/**
 * JSON with object keys sorted, so content compares equal whatever key order a store hands back
 * (Postgres jsonb reorders keys; EventStoreDB returns the bytes it was given).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** Bound on the alternatives in one EventFilter, so filtered queries stay bounded. */
export const MAX_FILTER_TERMS = 100;

export function assertValidFilter(filter: unknown): asserts filter is EventFilter | undefined {
  if (filter === undefined) return;
  if (filter === null || typeof filter !== 'object') throw new InvalidAppendError('filter must be an object');
  for (const key of ['streamNamePrefixes', 'eventTypes'] as const) {
    const terms: unknown = (filter as Record<string, unknown>)[key];
    if (terms === undefined) continue;
    if (
      !Array.isArray(terms) ||
      terms.length > MAX_FILTER_TERMS ||
      !terms.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 200)
    ) {
      throw new InvalidAppendError(
        `filter.${key} must be an array of at most ${MAX_FILTER_TERMS} non-empty strings`,
      );
    }
  }
}
