import {
  CLIENT_METADATA_KEY_PATTERN,
  type ClientMetadata,
  MAX_CLIENT_METADATA_KEYS,
} from '../domain/clientMetadata.js';
import { DomainError } from '../domain/errors.js';
import { parseInstant } from '../domain/validate.js';
import { ApiError } from './problem.js';

/**
 * Request strings that passed their JSON schema turned into the values the ledger works with. A schema
 * says "digits" or "date-time"; these say "a position the store can hold" and "an instant the ledger and
 * Postgres can represent", so such input is a 400 here rather than a 500 further down.
 */

/**
 * Largest global position or stream revision a client may name. Positions are strings in JSON (64-bit),
 * but the stores hand them to their drivers as safe integers, so a log never grows past 2^53 - 1.
 */
export const MAX_POSITION = BigInt(Number.MAX_SAFE_INTEGER);

/** The shape of a position in JSON (src/api/schemas.ts `Position`). */
const POSITION_DIGITS = /^(0|[1-9][0-9]{0,18})$/;

/**
 * A position or revision query parameter. Most routes' schemas check its digits first, but a GET route
 * without a querystring schema (the webhook endpoint reads) passes `consistentWith` through unchecked,
 * so the shape is checked here too rather than let `BigInt("month")` throw a 500.
 */
export function positionParam(value: unknown, where: string): bigint {
  if (typeof value !== 'string' || !POSITION_DIGITS.test(value)) {
    throw new ApiError('validation_failed', `${where} must be a position (decimal digits)`, {
      errors: [{ path: where, message: 'must be a position (decimal digits)' }],
    });
  }
  const position = BigInt(value);
  if (position > MAX_POSITION) {
    throw new ApiError('validation_failed', `${where} must be at most ${MAX_POSITION}`, {
      errors: [{ path: where, message: `at most ${MAX_POSITION}` }],
    });
  }
  return position;
}

/** 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: years Postgres and ISO-8601 both write plainly. */
const MIN_INSTANT_MS = -62_135_596_800_000;
const MAX_INSTANT_MS = 253_402_300_799_999;

/**
 * An ISO-8601 instant from a request (with a zone), parsed by the domain's parser (which refuses leap
 * seconds and impossible calendar dates), within years 1 to 9999.
 */
export function instantParam(value: string, where: string): Date {
  let ms: number;
  try {
    ms = parseInstant(value, where);
  } catch (error) {
    if (error instanceof DomainError) {
      throw new ApiError('validation_failed', error.message, {
        errors: [{ path: where, message: error.message }],
      });
    }
    throw error;
  }
  if (ms < MIN_INSTANT_MS || ms > MAX_INSTANT_MS) {
    const message = 'must be an instant from year 1 to year 9999';
    throw new ApiError('validation_failed', `${where} ${message}`, { errors: [{ path: where, message }] });
  }
  return new Date(ms);
}

const METADATA_FILTER_KEY = /^metadata\[(.*)\]$/;

/**
 * The `metadata[key]=value` parameters of a query (their shape checked by the route's querystring
 * schema, schemas.ts metadataFilterProperties) as one filter: entries must carry every pair. Undefined
 * when none was given; more pairs than a command may carry can match nothing and are a 400.
 */
export function metadataFilterParam(query: unknown): ClientMetadata | undefined {
  if (query === null || typeof query !== 'object') return undefined;
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(query as Record<string, unknown>)) {
    const key = METADATA_FILTER_KEY.exec(name)?.[1];
    if (key === undefined) continue;
    if (!CLIENT_METADATA_KEY_PATTERN.test(key) || typeof value !== 'string' || value.length === 0) {
      throw new ApiError('validation_failed', `querystring/${name} must be metadata[key]=value`, {
        errors: [{ path: `querystring/${name}`, message: 'must be metadata[key]=value' }],
      });
    }
    pairs.push([key, value]);
  }
  if (pairs.length === 0) return undefined;
  if (pairs.length > MAX_CLIENT_METADATA_KEYS) {
    throw new ApiError('validation_failed', `at most ${MAX_CLIENT_METADATA_KEYS} metadata filters`, {
      errors: [{ path: 'querystring', message: `at most ${MAX_CLIENT_METADATA_KEYS} metadata filters` }],
    });
  }
  return Object.fromEntries(pairs);
}

/** The backdating fields of a request body, the instant normalised (absent fields stay absent). */
export function backdatingOf(
  effectiveAt: string | undefined,
  corrects: string | undefined,
  where = 'body',
): { effectiveAt?: string; corrects?: string } {
  return {
    ...(effectiveAt !== undefined
      ? { effectiveAt: instantParam(effectiveAt, `${where}/effectiveAt`).toISOString() }
      : {}),
    ...(corrects !== undefined ? { corrects } : {}),
  };
}
