import { Type } from '@fastify/type-provider-typebox';
import { ConcurrencyConflictError, IdempotencyKeyReusedError, StreamBusyError } from '../commands/errors.js';
import { DomainError, type DomainErrorCode } from '../domain/errors.js';
import {
  EventStoreDeadlineError,
  EventStoreUnavailableError,
  IdempotencyViolationError,
  InvalidAppendError,
  WrongExpectedRevisionError,
} from '../eventstore/port.js';
import { ReadQueueFullError } from '../projections/readTransaction.js';

/**
 * RFC 9457 problem details with a stable machine-readable `code`. Clients act on `code`; `title` and
 * `detail` are for humans and may change.
 */
export type ProblemCode =
  | 'validation_failed'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'concurrency_conflict'
  | 'insufficient_funds'
  | 'invalid_state'
  | 'currency_mismatch'
  | 'limit_exceeded'
  | 'account_limit_exceeded'
  | 'idempotency_key_reused'
  | 'idempotency_key_in_use'
  | 'payload_too_large'
  | 'headers_too_large'
  | 'request_timeout'
  | 'unsupported_media_type'
  | 'currency_in_use'
  | 'payout_account_not_ready'
  | 'spending_limit_exceeded'
  | 'promo_code_rejected'
  | 'referral_rejected'
  | 'period_closed'
  | 'rate_limited'
  | 'unavailable'
  | 'projection_stalled'
  | 'internal_error';

const STATUS: Record<ProblemCode, number> = {
  validation_failed: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  concurrency_conflict: 409,
  idempotency_key_in_use: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  headers_too_large: 431,
  request_timeout: 408,
  currency_in_use: 422,
  payout_account_not_ready: 422,
  spending_limit_exceeded: 422,
  promo_code_rejected: 422,
  referral_rejected: 422,
  period_closed: 422,
  insufficient_funds: 422,
  invalid_state: 422,
  currency_mismatch: 422,
  limit_exceeded: 422,
  account_limit_exceeded: 422,
  idempotency_key_reused: 422,
  rate_limited: 429,
  internal_error: 500,
  unavailable: 503,
  projection_stalled: 503,
};

const TITLE: Record<ProblemCode, string> = {
  validation_failed: 'The request is not valid',
  unauthenticated: 'Authentication required',
  forbidden: 'Not allowed',
  not_found: 'Not found',
  concurrency_conflict: 'Concurrent modification, retry the request',
  idempotency_key_in_use: 'A request with this Idempotency-Key is still running',
  payload_too_large: 'Request body too large',
  unsupported_media_type: 'Unsupported media type',
  headers_too_large: 'Request headers too large',
  request_timeout: 'Request timeout',
  currency_in_use: 'The ledger holds money in this currency',
  payout_account_not_ready: "The tutor's payout account cannot take payouts yet",
  spending_limit_exceeded: "Over the wallet's spending limit",
  promo_code_rejected: 'The promo code cannot be redeemed on this purchase',
  referral_rejected: 'The referral code cannot be used',
  period_closed: 'The accounting period is closed',
  insufficient_funds: 'Insufficient funds',
  invalid_state: 'Not possible in the current state',
  currency_mismatch: 'Currency mismatch',
  limit_exceeded: 'Limit exceeded',
  account_limit_exceeded: "Above the ledger's limit for an account",
  idempotency_key_reused: 'Idempotency-Key reused with a different request',
  rate_limited: 'Too many requests',
  internal_error: 'Internal error',
  unavailable: 'Service unavailable, retry later',
  projection_stalled: "This tenant's read models are stopped at an event they cannot apply",
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    /** Validation failures: where and what. */
    errors: Type.Optional(
      Type.Array(
        Type.Object({ path: Type.String(), message: Type.String() }, { additionalProperties: false }),
      ),
    ),
    /** Domain details (amounts, states); never secrets. */
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    /** Readiness: which dependencies failed. */
    failing: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false, $id: 'Problem' },
);

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  instance?: string;
  errors?: Array<{ path: string; message: string }>;
  details?: Record<string, unknown>;
  failing?: string[];
}

/** An error the API turns into a problem response as is. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    detail?: string,
    readonly extra: {
      errors?: Problem['errors'];
      details?: Record<string, unknown>;
      failing?: string[];
      retryAfterSeconds?: number;
    } = {},
  ) {
    super(detail ?? TITLE[code]);
    this.name = 'ApiError';
    this.status = STATUS[code];
  }
}

export function statusOf(code: ProblemCode): number {
  return STATUS[code];
}

export function problem(
  code: ProblemCode,
  detail: string | undefined,
  extra: ApiError['extra'] = {},
): Problem {
  const p: Problem = {
    type: `https://wemaster.dev/problems/${code.replaceAll('_', '-')}`,
    title: TITLE[code],
    status: STATUS[code],
    code,
  };
  if (detail !== undefined) p.detail = detail;
  if (extra.errors) p.errors = extra.errors;
  if (extra.details) p.details = extra.details;
  if (extra.failing) p.failing = extra.failing;
  return p;
}

const DOMAIN_CODES: Record<DomainErrorCode, ProblemCode> = {
  validation_failed: 'validation_failed',
  insufficient_funds: 'insufficient_funds',
  invalid_state: 'invalid_state',
  not_found: 'not_found',
  currency_mismatch: 'currency_mismatch',
  limit_exceeded: 'limit_exceeded',
  account_limit_exceeded: 'account_limit_exceeded',
  forbidden: 'forbidden',
  payout_account_not_ready: 'payout_account_not_ready',
  spending_limit_exceeded: 'spending_limit_exceeded',
  promo_code_rejected: 'promo_code_rejected',
  referral_rejected: 'referral_rejected',
  period_closed: 'period_closed',
};

/**
 * Maps anything thrown below the API to an ApiError, or null for an unexpected error (a bug: 500).
 * Only errors whose meaning we know are translated; the rest must surface as 500 and be logged.
 */
export function toApiError(error: unknown): ApiError | null {
  if (error instanceof ApiError) return error;
  if (error instanceof DomainError) {
    return new ApiError(DOMAIN_CODES[error.code], error.message, { details: error.details });
  }
  // The command layer retries optimistic-concurrency conflicts (bounded); one that still escapes is a 409.
  if (error instanceof ConcurrencyConflictError || error instanceof WrongExpectedRevisionError) {
    return new ApiError('concurrency_conflict', undefined, { retryAfterSeconds: 1 });
  }
  if (error instanceof IdempotencyKeyReusedError) {
    return new ApiError('idempotency_key_reused', 'this Idempotency-Key was used for a different request');
  }
  if (error instanceof StreamBusyError) {
    return new ApiError('unavailable', 'too many concurrent requests on one account', {
      retryAfterSeconds: 1,
    });
  }
  // The same deterministic event ids with different content: the key was reused for another request.
  if (error instanceof IdempotencyViolationError)
    return new ApiError('idempotency_key_reused', error.message);
  if (error instanceof InvalidAppendError) return new ApiError('validation_failed', error.message);
  if (error instanceof ReadQueueFullError) {
    return new ApiError('unavailable', 'too many reads waiting; retry shortly', { retryAfterSeconds: 1 });
  }
  if (error instanceof EventStoreUnavailableError || error instanceof EventStoreDeadlineError) {
    return new ApiError('unavailable', 'event store unavailable', { retryAfterSeconds: 1 });
  }
  return null;
}
