/**
 * Typed domain errors with stable codes. The API maps codes to HTTP statuses; clients act on codes.
 * A rejected command appends nothing (invariant 8).
 */
export type DomainErrorCode =
  | 'validation_failed'
  | 'insufficient_funds'
  | 'invalid_state'
  | 'not_found'
  | 'currency_mismatch'
  | 'limit_exceeded'
  | 'forbidden';

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    /** Machine-readable details for the client (amounts, states), never secrets. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** A broken invariant: a bug, never a user error. Thrown loudly, never caught and ignored. */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'InvariantViolation';
  }
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantViolation(typeof message === 'string' ? message : message());
}
