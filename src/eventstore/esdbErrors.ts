import { ErrorType, isCommandError } from '@eventstore/db-client';
import {
  EventStoreAccessDeniedError,
  EventStoreDeadlineError,
  EventStoreError,
  EventStoreUnavailableError,
  InvalidAppendError,
  StreamNotFoundError,
} from './port.js';

/** gRPC status codes the client may surface raw (before or outside its own error conversion). */
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAVAILABLE = 14;
const GRPC_UNAUTHENTICATED = 16;

/**
 * Maps whatever @eventstore/db-client throws to the port's typed errors. `context` names the operation
 * ("append to wallet-t.1") so the message says what failed. Wrong expected version is not handled here:
 * append maps it itself because it needs the expectation to tell a conflict from an idempotency breach.
 * Errors that are already ours, or that we cannot classify, are returned unchanged.
 */
export function mapEsdbError(error: unknown, context: string, streamName?: string): Error {
  if (error instanceof EventStoreError) return error;
  if (!(error instanceof Error)) return new Error(`${context}: ${String(error)}`);
  const reason = error.message || error.name;
  if (isCommandError(error)) {
    switch (error.type) {
      case ErrorType.UNAVAILABLE:
        return new EventStoreUnavailableError(`${context}: EventStoreDB is unavailable (${reason})`, {
          cause: error,
        });
      case ErrorType.CANCELLED:
        return new EventStoreUnavailableError(`${context}: EventStoreDB cancelled the call (${reason})`, {
          cause: error,
        });
      case ErrorType.NOT_LEADER:
        // The client reconnects to the leader on the next call; until then this node cannot take writes.
        return new EventStoreUnavailableError(
          `${context}: the EventStoreDB node is not the leader; the client reconnects to the leader, retry`,
          { cause: error },
        );
      case ErrorType.DEADLINE_EXCEEDED:
      case ErrorType.TIMEOUT:
        return new EventStoreDeadlineError(`${context}: EventStoreDB did not answer in time (${reason})`, {
          cause: error,
        });
      case ErrorType.ACCESS_DENIED:
        return new EventStoreAccessDeniedError(
          `${context}: EventStoreDB denied access; check the credentials in EVENTSTORE_URL and the stream ACLs`,
          { cause: error },
        );
      case ErrorType.STREAM_NOT_FOUND:
      case ErrorType.STREAM_DELETED:
        if (streamName !== undefined) return new StreamNotFoundError(streamName);
        break;
      case ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED: {
        const max = (error as Error & { maxAppendSize?: number }).maxAppendSize;
        return new InvalidAppendError(
          `${context}: the append exceeds EventStoreDB's maximum append size${max ? ` of ${max} bytes` : ''}; split it`,
        );
      }
      case ErrorType.INVALID_ARGUMENT:
      case ErrorType.MISSING_REQUIRED_METADATA_PROPERTY:
        return new InvalidAppendError(`${context}: EventStoreDB rejected the request (${reason})`);
      default:
        break;
    }
  }
  const code = (error as Error & { code?: unknown }).code;
  if (code === GRPC_UNAVAILABLE) {
    return new EventStoreUnavailableError(`${context}: EventStoreDB is unavailable (${reason})`, {
      cause: error,
    });
  }
  if (code === GRPC_DEADLINE_EXCEEDED) {
    return new EventStoreDeadlineError(`${context}: EventStoreDB did not answer in time (${reason})`, {
      cause: error,
    });
  }
  if (code === GRPC_PERMISSION_DENIED || code === GRPC_UNAUTHENTICATED) {
    return new EventStoreAccessDeniedError(`${context}: EventStoreDB denied access (${reason})`, {
      cause: error,
    });
  }
  return error;
}

/** Whether a subscription that failed this way may succeed if it subscribes again. */
export function isTransient(error: Error): boolean {
  return error instanceof EventStoreUnavailableError || error instanceof EventStoreDeadlineError;
}
