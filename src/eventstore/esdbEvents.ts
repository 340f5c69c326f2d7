import type { AllStreamResolvedEvent, Position, ResolvedEvent } from '@eventstore/db-client';
import type { EventMetadata, JsonObject, RecordedEvent } from './port.js';

/**
 * Our single `position` is the event's $all COMMIT position. Why commit and not prepare: EventStoreDB
 * orders $all by (commit, prepare) and a reader sees an event only once its commit is written, so the
 * commit position is the one that increases in the order events become visible; for every event written
 * through gRPC (each append is an implicit transaction) EventStoreDB reports commit == prepare for the
 * event itself, so nothing is lost by keeping one number. The append result's `position.commit` is the
 * commit position of the append's last event, which is what AppendResult.position promises. Explicit
 * multi-append transactions (TCP API only, not used by this project) would give several events the same
 * commit position; `toRecordedEvent` refuses events whose position is not reported rather than guess.
 */
export function allPosition(position: bigint): Position {
  return { commit: position, prepare: position };
}

/** EventStoreDB sends 2^64-1 when it has no $all position for an event (stream reads before v22.6). */
const NO_POSITION = 0xffff_ffff_ffff_ffffn;

/** Streams and event types starting with '$' belong to EventStoreDB itself (and to our id claims). */
export function isSystemEvent(streamName: string, type: string): boolean {
  return streamName.startsWith('$') || type.startsWith('$');
}

function isJsonObject(value: unknown): value is JsonObject {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  );
}

export class ForeignEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForeignEventError';
  }
}

/** Converts a resolved event from the client; throws ForeignEventError for events we did not write. */
export function toRecordedEvent(resolved: ResolvedEvent | AllStreamResolvedEvent): RecordedEvent {
  const event = resolved.event;
  if (!event) throw new ForeignEventError('EventStoreDB returned a link without its event (deleted target)');
  const where = `event ${event.id} in ${event.streamId}@${event.revision}`;
  if (!event.isJson || !isJsonObject(event.data)) {
    throw new ForeignEventError(`${where} is not a JSON object event; it was not written by this ledger`);
  }
  if (!isJsonObject(event.metadata)) {
    throw new ForeignEventError(`${where} has no JSON metadata; it was not written by this ledger`);
  }
  const commit = event.position?.commit ?? resolved.commitPosition;
  if (commit === undefined || commit === NO_POSITION) {
    throw new ForeignEventError(
      `${where}: EventStoreDB did not report its $all position (needs EventStoreDB 22.6 or later)`,
    );
  }
  return {
    id: event.id,
    type: event.type,
    streamName: event.streamId,
    revision: event.revision,
    position: commit,
    data: event.data,
    metadata: event.metadata as unknown as EventMetadata,
    recordedAt: event.created,
  };
}
