import type { Knex } from 'knex';
import type { EventFilter, EventMetadata, JsonObject, RecordedEvent } from './port.js';

/** Columns every read selects; recorded_at as epoch milliseconds because parsing timestamptz text is slow. */
export const EVENT_COLUMNS =
  'position, stream_name, revision, id, type, data, metadata, (extract(epoch from recorded_at) * 1000)::float8 AS recorded_at_ms';

export interface EventRow {
  position: number | string;
  stream_name: string;
  revision: number | string;
  id: string;
  type: string;
  data: JsonObject;
  metadata: EventMetadata;
  recorded_at_ms: number;
}

export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    id: row.id,
    type: row.type,
    streamName: row.stream_name,
    revision: BigInt(row.revision),
    position: BigInt(row.position),
    data: row.data,
    metadata: row.metadata,
    recordedAt: new Date(row.recorded_at_ms),
  };
}

/** SQL fragment (with bindings) matching EventFilter semantics: any prefix, any type, both when both given. */
export function filterSql(filter: EventFilter | undefined): { sql: string; bindings: Knex.RawBinding[] } {
  const parts: string[] = [];
  const bindings: Knex.RawBinding[] = [];
  const prefixes = filter?.streamNamePrefixes;
  if (prefixes) {
    if (prefixes.length === 0) return { sql: ' AND false', bindings: [] };
    parts.push(`(${prefixes.map(() => 'starts_with(stream_name, ?)').join(' OR ')})`);
    bindings.push(...prefixes);
  }
  const types = filter?.eventTypes;
  if (types) {
    if (types.length === 0) return { sql: ' AND false', bindings: [] };
    parts.push(`type IN (${types.map(() => '?').join(', ')})`);
    bindings.push(...types);
  }
  return { sql: parts.map((p) => ` AND ${p}`).join(''), bindings };
}

/** A bigint that fits the int8 parser's safe range, as a number binding. */
export function toSafeNumber(value: bigint, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} ${value} is outside the safe integer range`);
  return n;
}
