import {
  type AppendResult,
  type EventToAppend,
  type ExpectedRevision,
  IdempotencyViolationError,
  type JsonObject,
  WrongExpectedRevisionError,
} from './port.js';
import { sameContent } from './validation.js';

export interface StoredEventRef {
  id: string;
  streamName: string;
  revision: bigint;
  position: bigint;
  type: string;
  data: JsonObject;
}

export type AppendDecision =
  | { kind: 'write'; firstRevision: bigint }
  | { kind: 'replay'; result: AppendResult };

/**
 * The one place that decides what an append does, shared by the memory and postgres adapters (the
 * EventStoreDB server makes the same decision for the esdb adapter):
 *  - every event id already stored, in this stream, consecutively, with the same type and data, and the
 *    expectation satisfied as of before the original write -> replay: return the original result;
 *  - some ids stored and others not, or stored elsewhere/with other content -> IdempotencyViolationError;
 *  - otherwise check the expectation against the current revision -> write or WrongExpectedRevisionError.
 */
export function decideAppend(
  streamName: string,
  events: EventToAppend[],
  expected: ExpectedRevision,
  current: bigint | 'no_stream',
  existing: ReadonlyMap<string, StoredEventRef>,
): AppendDecision {
  const found = events.map((e) => existing.get(e.id));
  const foundCount = found.filter((f) => f !== undefined).length;
  if (foundCount > 0) {
    if (foundCount !== events.length) {
      throw new IdempotencyViolationError(
        `append to ${streamName}: ${foundCount} of ${events.length} event ids were appended before; a retry must resend exactly the same events`,
      );
    }
    const refs = found as StoredEventRef[];
    const first = refs[0]!;
    refs.forEach((ref, i) => {
      const proposed = events[i]!;
      if (
        ref.streamName !== streamName ||
        ref.revision !== first.revision + BigInt(i) ||
        !sameContent(ref, proposed)
      ) {
        throw new IdempotencyViolationError(
          `append to ${streamName}: event id ${proposed.id} was already used for different content or another stream position`,
        );
      }
    });
    const revisionBefore: bigint | 'no_stream' = first.revision === 0n ? 'no_stream' : first.revision - 1n;
    if (satisfies(expected, revisionBefore)) {
      const last = refs[refs.length - 1]!;
      return { kind: 'replay', result: { nextExpectedRevision: last.revision, position: last.position } };
    }
    throw new WrongExpectedRevisionError(streamName, expected, current);
  }
  if (!satisfies(expected, current)) throw new WrongExpectedRevisionError(streamName, expected, current);
  return { kind: 'write', firstRevision: current === 'no_stream' ? 0n : current + 1n };
}

export function satisfies(expected: ExpectedRevision, current: bigint | 'no_stream'): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return current === 'no_stream';
    case 'stream_exists':
      return current !== 'no_stream';
    default:
      return current === expected;
  }
}
