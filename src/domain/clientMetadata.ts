import { type Static, Type } from '@sinclair/typebox';
import { validationFailed } from './validate.js';

/**
 * Client metadata: the caller's own key/value strings on a money-moving command (an order number, a
 * cost centre, a campaign), kept with every event the command and the flow steps it triggers append
 * (EventMetadata.clientMetadata), in the read models (journal_entries.client_metadata), returned on
 * entries and statements and filterable by `?metadata[key]=value`. The API calls the field `metadata`;
 * inside, `clientMetadata` keeps it apart from the event metadata (tenant, actor, causation) that every
 * event carries.
 *
 * Bounded like Stripe's metadata, a little tighter: at most 20 keys, a key 1-40 characters of
 * [A-Za-z0-9_.:-] (no brackets, so `metadata[key]` in a query string is unambiguous), a value 1-500
 * characters without control characters (an empty value means nothing in an append-only record).
 */
export const MAX_CLIENT_METADATA_KEYS = 20;
export const CLIENT_METADATA_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,40}$/;
export const MAX_CLIENT_METADATA_VALUE_LENGTH = 500;
const VALUE_PATTERN = '^[^\\u0000-\\u001f\\u007f]*$';
const VALUE_REGEX = new RegExp(VALUE_PATTERN, 'u');

export const ClientMetadataKeySchema = Type.String({ pattern: CLIENT_METADATA_KEY_PATTERN.source });
export const ClientMetadataValueSchema = Type.String({
  minLength: 1,
  maxLength: MAX_CLIENT_METADATA_VALUE_LENGTH,
  pattern: VALUE_PATTERN,
});

export const ClientMetadataSchema = Type.Record(ClientMetadataKeySchema, ClientMetadataValueSchema, {
  // A key outside the key pattern is refused, not merely left unchecked.
  additionalProperties: false,
  minProperties: 1,
  maxProperties: MAX_CLIENT_METADATA_KEYS,
});
export type ClientMetadata = Static<typeof ClientMetadataSchema>;

/**
 * Checks metadata from outside (the API validated it already; process managers and tests call the
 * command layer directly): a DomainError('validation_failed') naming the key otherwise. An empty object
 * is no metadata (undefined), so `{}` and an absent field append the same events.
 */
export function parseClientMetadata(value: unknown): ClientMetadata | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    validationFailed('metadata must be an object of string values', { field: 'metadata' });
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return undefined;
  if (entries.length > MAX_CLIENT_METADATA_KEYS) {
    validationFailed(`metadata may have at most ${MAX_CLIENT_METADATA_KEYS} keys`, { field: 'metadata' });
  }
  const out: Array<[string, string]> = [];
  for (const [key, v] of entries) {
    if (!CLIENT_METADATA_KEY_PATTERN.test(key)) {
      validationFailed('metadata keys must be 1-40 characters of [A-Za-z0-9_.:-]', {
        field: 'metadata',
        key,
      });
    }
    if (
      typeof v !== 'string' ||
      v.length === 0 ||
      v.length > MAX_CLIENT_METADATA_VALUE_LENGTH ||
      !VALUE_REGEX.test(v)
    ) {
      validationFailed(
        `metadata values must be strings of 1-${MAX_CLIENT_METADATA_VALUE_LENGTH} characters without control characters`,
        { field: 'metadata', key },
      );
    }
    out.push([key, v]);
  }
  // fromEntries defines own properties: a key such as __proto__ stays a key.
  return Object.fromEntries(out);
}

/** Metadata in one canonical form (keys sorted): what the read models store and hashes cover. */
export function canonicalClientMetadata(metadata: ClientMetadata): ClientMetadata {
  return Object.fromEntries(
    Object.keys(metadata)
      .sort()
      .map((key) => [key, metadata[key]!]),
  );
}
