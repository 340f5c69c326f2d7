import type { FormObject, FormValue } from './formParser.js';
import { FakeStripeError } from './types.js';

/**
 * Stripe's parameter rules as the fake applies them: unknown parameters refused, types checked,
 * metadata bounds. Every refusal is a 400 `invalid_request_error` with `code`, `param`, `message` and
 * `doc_url`, not stored under the idempotency key (Stripe's rule for validation failures).
 */

export function invalidParam(param: string, message: string, code = 'parameter_invalid'): FakeStripeError {
  return new FakeStripeError(400, { type: 'invalid_request_error', code, message, param }, false);
}

export function missing(id: string, noun: string, param = 'id'): FakeStripeError {
  return new FakeStripeError(
    404,
    { type: 'invalid_request_error', code: 'resource_missing', message: `No such ${noun}: '${id}'`, param },
    false,
  );
}

/** A refusal of the request as a whole (state, funds), stored under the idempotency key like Stripe. */
export function refused(
  code: string,
  message: string,
  param?: string,
  status = 400,
  type: 'invalid_request_error' | 'card_error' = 'invalid_request_error',
): FakeStripeError {
  return new FakeStripeError(status, { type, code, message, ...(param ? { param } : {}) }, true);
}

export function allowOnly(params: FormObject, allowed: readonly string[]): void {
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key))
      throw invalidParam(key, `Received unknown parameter: ${key}`, 'parameter_unknown');
  }
}

export function optionalString(params: FormObject, name: string): string | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidParam(name, `Invalid ${name}: must be a string`);
  return v;
}

export function requireString(params: FormObject, name: string): string {
  const v = optionalString(params, name);
  if (v === undefined || v === '')
    throw invalidParam(name, `Missing required param: ${name}.`, 'parameter_missing');
  return v;
}

export function oneOf<T extends string>(
  params: FormObject,
  name: string,
  values: readonly T[],
): T | undefined {
  const v = optionalString(params, name);
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v)) {
    throw invalidParam(name, `Invalid ${name}: must be one of ${values.join(', ')}`);
  }
  return v as T;
}

export function toInt(text: string, name: string): number {
  if (!/^-?\d{1,16}$/.test(text)) throw invalidParam(name, `Invalid integer: ${text}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw invalidParam(name, `Invalid integer: ${text}`);
  return n;
}

export function requireAmount(params: FormObject, name: string, min: number): number {
  const v = params[name];
  if (v === undefined) throw invalidParam(name, `Missing required param: ${name}.`, 'parameter_missing');
  if (typeof v !== 'string') throw invalidParam(name, `Invalid integer: ${name}`);
  const n = toInt(v, name);
  if (n < min) throw invalidParam(name, `Amount must be at least ${min}`, 'amount_too_small');
  if (n > 99_999_999) throw invalidParam(name, 'Amount must be no more than 99999999', 'amount_too_large');
  return n;
}

const CURRENCIES = new Set([
  'usd',
  'eur',
  'gbp',
  'cad',
  'aud',
  'jpy',
  'chf',
  'sek',
  'nok',
  'dkk',
  'pln',
  'vnd',
]);

export function requireCurrency(params: FormObject): string {
  const v = optionalString(params, 'currency');
  if (v === undefined)
    throw invalidParam('currency', 'Missing required param: currency.', 'parameter_missing');
  const lower = v.toLowerCase();
  if (!CURRENCIES.has(lower)) throw invalidParam('currency', `Invalid currency: ${v}.`, 'invalid_currency');
  return lower;
}

export function readBoolean(params: FormObject, name: string): boolean | undefined {
  const v = optionalString(params, name);
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw invalidParam(name, `Invalid boolean: ${v}`);
  return v === 'true';
}

export function readStringList(params: FormObject, name: string): string[] | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) {
    throw invalidParam(name, `Invalid array: ${name}`);
  }
  return v;
}

/** A hash parameter (`capabilities[transfers][requested]=true`), its own keys checked. */
export function readHash(
  params: FormObject,
  name: string,
  allowed: readonly string[],
): FormObject | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidParam(name, `Invalid ${name}: must be a hash`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key))
      throw invalidParam(
        `${name}[${key}]`,
        `Received unknown parameter: ${name}[${key}]`,
        'parameter_unknown',
      );
  }
  return v;
}

/** Stripe's metadata rules: at most 50 keys, keys up to 40 characters, values up to 500. */
export function readMetadata(params: FormObject): Record<string, string> {
  const v: FormValue | undefined = params.metadata;
  if (v === undefined || v === '') return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw invalidParam('metadata', 'Invalid metadata: must be a hash');
  const entries = Object.entries(v);
  if (entries.length > 50) throw invalidParam('metadata', 'Invalid metadata: at most 50 keys');
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw invalidParam(`metadata[${key}]`, 'Metadata values must be strings');
    if (key.length > 40) throw invalidParam(`metadata[${key}]`, 'Metadata keys can be at most 40 characters');
    if (value.length > 500)
      throw invalidParam(`metadata[${key}]`, 'Metadata values can be at most 500 characters');
    out[key] = value;
  }
  return out;
}

export function expandList(params: FormObject): string[] {
  const e = params.expand;
  if (e === undefined) return [];
  if (Array.isArray(e) && e.every((x): x is string => typeof x === 'string')) return e;
  throw invalidParam('expand', 'Invalid array: expand');
}
