/**
 * Errors of the command layer (the domain's rejections are DomainError from src/domain/errors.ts).
 * The API maps `code` to HTTP: concurrency_conflict -> 409, idempotency_key_reused -> 422.
 */
export abstract class CommandError extends Error {
  abstract readonly code: string;
}

/** The stream kept changing under us for every attempt; the client may retry the request. */
export class ConcurrencyConflictError extends CommandError {
  readonly code = 'concurrency_conflict';
  constructor(
    readonly streamName: string,
    readonly attempts: number,
  ) {
    super(`stream ${streamName}: still conflicting after ${attempts} attempts`);
    this.name = 'ConcurrencyConflictError';
  }
}

/** The same idempotency key was used before for a different command payload (docs/architecture.md, invariant 7). */
export class IdempotencyKeyReusedError extends CommandError {
  readonly code = 'idempotency_key_reused';
  constructor(
    readonly idempotencyKey: string,
    readonly commandType: string,
    readonly streamName: string,
  ) {
    super(
      `idempotency key ${JSON.stringify(idempotencyKey)} was already used for a different ${commandType} on ${streamName}`,
    );
    this.name = 'IdempotencyKeyReusedError';
  }
}

/** Too many commands are queued for one stream in this process; shed load instead of growing without bound. */
export class StreamBusyError extends CommandError {
  readonly code = 'stream_busy';
  constructor(
    readonly streamName: string,
    readonly queued: number,
  ) {
    super(`stream ${streamName}: ${queued} commands already queued in this process`);
    this.name = 'StreamBusyError';
  }
}
