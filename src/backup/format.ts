import type { ChainHead } from '../chain/link.js';
import type { EventMetadata, JsonObject, RecordedEvent } from '../eventstore/port.js';

/**
 * The export file (docs/operations.md, "Backup and restore"): NDJSON, one JSON object per line.
 *
 *   line 1      the header: format name and version, when, from which store, which tenant (null: all);
 *   lines 2..   one event each, in the source store's order: its original position, stream name,
 *               stream revision, id, type, data, metadata and when the source store recorded it;
 *   last line   the trailer: the event count, the last position, and the SHA-256 of every byte before
 *               the trailer (each line's UTF-8 bytes and its "\n"); and the hash-chain head of every
 *               tenant in the file as of its last event (src/chain/link.ts), folded from the file's own
 *               events, so an auditor can anchor the export and `verify --chain --anchor` it after a
 *               restore (files written before the chain existed have none).
 *
 * Positions and revisions are decimal strings (EventStoreDB positions are unsigned 64-bit). The
 * positions are the source store's, kept for audit: an event's position in another store differs
 * (EventStoreDB positions are byte offsets in its log, Postgres positions are dense from 0), but the
 * order, the stream revisions and the ids are what an import keeps.
 */

export const FORMAT = 'wemaster-ledger-events';
export const FORMAT_VERSION = 1;
/** A line longer than this is refused (an event is at most 1 MiB of data plus 1 MiB of metadata). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

export interface ExportHeader {
  format: typeof FORMAT;
  version: typeof FORMAT_VERSION;
  exportedAt: string;
  source: { eventStore: string; head: string };
  /** The tenant whose events the file holds; null: every tenant. */
  tenant: string | null;
}

export interface ExportTrailer {
  end: true;
  events: number;
  /** Position (in the source store) of the last event, or null for an empty file. */
  lastPosition: string | null;
  sha256: string;
  /** The tenants' chain heads after the file's events (absent in files from before the chain). */
  chain?: ExportChain;
}

/** Most chain heads a trailer lists (a line is at most MAX_LINE_BYTES); the rest are counted. */
export const MAX_TRAILER_CHAIN_HEADS = 10_000;

export interface ExportChain {
  algorithm: string;
  /** In tenant order; `seq` as a decimal string, as the API shows it. */
  heads: Array<{ tenantId: string; seq: string; hash: string }>;
  /** Tenants beyond MAX_TRAILER_CHAIN_HEADS, not listed. */
  headsOmitted: number;
}

/** One event as the file holds it. */
export interface ExportedEvent {
  position: bigint;
  streamName: string;
  revision: bigint;
  id: string;
  type: string;
  data: JsonObject;
  metadata: EventMetadata;
  recordedAt: string;
}

export class ExportFormatError extends Error {
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(`line ${line}: ${problem}`);
    this.name = 'ExportFormatError';
  }
}

export function headerLine(header: ExportHeader): string {
  return JSON.stringify(header);
}

export function eventLine(event: RecordedEvent): string {
  return JSON.stringify({
    position: event.position.toString(),
    streamName: event.streamName,
    revision: event.revision.toString(),
    id: event.id,
    type: event.type,
    data: event.data,
    metadata: event.metadata,
    recordedAt: event.recordedAt.toISOString(),
  });
}

export function trailerLine(trailer: ExportTrailer): string {
  return JSON.stringify(trailer);
}

const DIGITS = /^(0|[1-9][0-9]{0,19})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const U64_MAX = 2n ** 64n - 1n;

function parseObject(text: string, line: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ExportFormatError(line, 'not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ExportFormatError(line, 'not a JSON object');
  }
  return value as Record<string, unknown>;
}

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unsigned(value: unknown, what: string, line: number): bigint {
  if (typeof value !== 'string' || !DIGITS.test(value) || BigInt(value) > U64_MAX) {
    throw new ExportFormatError(line, `${what} must be an unsigned 64-bit integer as a decimal string`);
  }
  return BigInt(value);
}

export function parseHeader(text: string): ExportHeader {
  const value = parseObject(text, 1);
  if (value.format !== FORMAT) {
    throw new ExportFormatError(
      1,
      `not a ledger export (format ${JSON.stringify(value.format)}, expected ${FORMAT})`,
    );
  }
  if (value.version !== FORMAT_VERSION) {
    throw new ExportFormatError(
      1,
      `format version ${JSON.stringify(value.version)} is not supported (${FORMAT_VERSION} is)`,
    );
  }
  const source = value.source as Record<string, unknown> | undefined;
  if (
    typeof value.exportedAt !== 'string' ||
    !isPlainObject(source) ||
    typeof source.eventStore !== 'string' ||
    typeof source.head !== 'string' ||
    !(value.tenant === null || typeof value.tenant === 'string')
  ) {
    throw new ExportFormatError(1, 'the header needs exportedAt, source {eventStore, head} and tenant');
  }
  return {
    format: FORMAT,
    version: FORMAT_VERSION,
    exportedAt: value.exportedAt,
    source: { eventStore: source.eventStore, head: source.head },
    tenant: value.tenant,
  };
}

/** True for the trailer line (it is the only line with `end`). */
export function isTrailer(value: Record<string, unknown>): boolean {
  return value.end === true;
}

export function parseTrailer(value: Record<string, unknown>, line: number): ExportTrailer {
  if (
    !Number.isSafeInteger(value.events) ||
    (value.events as number) < 0 ||
    !(
      value.lastPosition === null ||
      (typeof value.lastPosition === 'string' && DIGITS.test(value.lastPosition))
    ) ||
    typeof value.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(value.sha256)
  ) {
    throw new ExportFormatError(line, 'the trailer needs events, lastPosition and sha256');
  }
  return {
    end: true,
    events: value.events as number,
    lastPosition: value.lastPosition,
    sha256: value.sha256,
    ...(value.chain === undefined ? {} : { chain: parseChain(value.chain, line) }),
  };
}

function parseChain(value: unknown, line: number): ExportChain {
  const bad = () => new ExportFormatError(line, 'the trailer chain needs algorithm, heads and headsOmitted');
  if (!isPlainObject(value) || typeof value.algorithm !== 'string' || !Array.isArray(value.heads))
    throw bad();
  if (!Number.isSafeInteger(value.headsOmitted) || (value.headsOmitted as number) < 0) throw bad();
  if (value.heads.length > MAX_TRAILER_CHAIN_HEADS) throw bad();
  const heads = value.heads.map((h) => {
    if (
      !isPlainObject(h) ||
      typeof h.tenantId !== 'string' ||
      typeof h.seq !== 'string' ||
      !DIGITS.test(h.seq) ||
      typeof h.hash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(h.hash)
    ) {
      throw bad();
    }
    return { tenantId: h.tenantId, seq: h.seq, hash: h.hash };
  });
  return { algorithm: value.algorithm, heads, headsOmitted: value.headsOmitted as number };
}

/** The trailer's chain for a fold of the file's events. */
export function exportChain(algorithm: string, heads: readonly ChainHead[]): ExportChain {
  return {
    algorithm,
    heads: heads
      .slice(0, MAX_TRAILER_CHAIN_HEADS)
      .map((h) => ({ tenantId: h.tenantId, seq: h.seq.toString(), hash: h.hash })),
    headsOmitted: Math.max(0, heads.length - MAX_TRAILER_CHAIN_HEADS),
  };
}

/** Parses one line after the header: an event, or the trailer. */
export function parseLine(
  text: string,
  line: number,
): { kind: 'event'; event: ExportedEvent } | { kind: 'trailer'; trailer: ExportTrailer } {
  const value = parseObject(text, line);
  if (isTrailer(value)) return { kind: 'trailer', trailer: parseTrailer(value, line) };
  const { streamName, id, type, data, metadata, recordedAt } = value;
  if (typeof streamName !== 'string' || streamName.length === 0) {
    throw new ExportFormatError(line, 'streamName must be a non-empty string');
  }
  if (typeof id !== 'string' || !UUID.test(id))
    throw new ExportFormatError(line, 'id must be a lowercase UUID');
  if (typeof type !== 'string' || type.length === 0) {
    throw new ExportFormatError(line, 'type must be a non-empty string');
  }
  if (!isPlainObject(data)) throw new ExportFormatError(line, 'data must be a JSON object');
  if (!isPlainObject(metadata) || typeof metadata.tenantId !== 'string') {
    throw new ExportFormatError(line, 'metadata must be a JSON object with a tenantId');
  }
  if (
    typeof recordedAt !== 'string' ||
    !ISO_INSTANT.test(recordedAt) ||
    Number.isNaN(Date.parse(recordedAt))
  ) {
    throw new ExportFormatError(line, 'recordedAt must be an ISO-8601 UTC instant');
  }
  return {
    kind: 'event',
    event: {
      position: unsigned(value.position, 'position', line),
      streamName,
      revision: unsigned(value.revision, 'revision', line),
      id,
      type,
      data,
      metadata: metadata as unknown as EventMetadata,
      recordedAt,
    },
  };
}
