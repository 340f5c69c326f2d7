import * as nodeCrypto from 'node:crypto';
import { v5 as uuidv5 } from 'uuid';

/**
 * The id vocabulary: the alphabets of tenant ids, entity ids (students, bookings, payouts...: they name
 * streams and accounts), UUIDs and idempotency keys, and the deterministic ids derived from them. Every
 * layer checks ids against these (the HTTP schemas use their `.source`).
 */

/** Tenant ids: no dash or dot, so in `{category}-{tenant}.{id}` the first dot ends the tenant. */
export const TENANT_ID_CHARS = '[a-z0-9_]{1,40}';
export const TENANT_ID_PATTERN = new RegExp(`^${TENANT_ID_CHARS}$`);
/** Entity ids: the alphabet of stream entity ids and account path segments. */
export const ENTITY_ID_CHARS = '[A-Za-z0-9_-]{1,64}';
export const ENTITY_ID_PATTERN = new RegExp(`^${ENTITY_ID_CHARS}$`);
/** Lowercase UUIDs (event, entry and hold ids). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Client idempotency keys (the `Idempotency-Key` header): printable ASCII, no spaces. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** Longest idempotency key any command accepts (keys derived by the ledger itself included). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

export const isTenantId = (value: unknown): value is string =>
  typeof value === 'string' && TENANT_ID_PATTERN.test(value);
export const isEntityId = (value: unknown): value is string =>
  typeof value === 'string' && ENTITY_ID_PATTERN.test(value);
export const isUuid = (value: unknown): value is string =>
  typeof value === 'string' && UUID_PATTERN.test(value);

/** Namespace for all deterministic ids of this project (a fixed random UUID; never change it). */
export const LEDGER_NAMESPACE = '6f1d7c52-4b0e-4b8e-9a57-2a8f3c0d9e11';

/**
 * Deterministic event id: UUID v5 of tenant + command type + idempotency key + index.
 * A retried command produces the same ids, so the store appends nothing new.
 */
export function eventId(
  tenantId: string,
  commandType: string,
  idempotencyKey: string,
  index: number,
): string {
  return ledgerUuidV5(`${tenantId}\u0000${commandType}\u0000${idempotencyKey}\u0000${index}`);
}

/** Deterministic id for anything derived from names (entry ids, hold ids). */
export function deterministicId(...parts: string[]): string {
  return ledgerUuidV5(parts.join('\u0000'));
}

/** The hold a booking places on the student wallet (docs/ledger-flows.md). */
export const bookingHoldId = (tenantId: string, bookingId: string): string =>
  deterministicId('hold', tenantId, bookingId);

/** The hold a payout places on the tutor's available earnings. */
export const payoutHoldId = (tenantId: string, payoutId: string): string =>
  deterministicId('payout-hold', tenantId, payoutId);

// ---------------------------------------------------------------------------------------------------
// UUID v5 (RFC 4122 name-based, SHA-1) in LEDGER_NAMESPACE. These ids are persisted, so the output must
// equal uuid's v5(name, LEDGER_NAMESPACE) for every string (test/domain/ids.unit.test.ts proves it). uuid's
// v5 parses the namespace and UTF-8-encodes through unescape(encodeURIComponent()) on every call, which
// was 7% of the server's CPU under the booking-hold benchmark.

const NAMESPACE_BYTES = Buffer.from(LEDGER_NAMESPACE.replaceAll('-', ''), 'hex');
if (NAMESPACE_BYTES.length !== 16) throw new Error(`LEDGER_NAMESPACE is not a UUID: ${LEDGER_NAMESPACE}`);

const HEX_OF_BYTE: readonly string[] = Array.from({ length: 256 }, (_, byte) =>
  byte.toString(16).padStart(2, '0'),
);

/** Names up to this many UTF-16 units are encoded into one reused buffer (3 UTF-8 bytes per unit at most). */
const SCRATCH_MAX_NAME_UNITS = 1024;
const scratch = Buffer.alloc(16 + 3 * SCRATCH_MAX_NAME_UNITS);
NAMESPACE_BYTES.copy(scratch, 0);

/** Node >= 20.12 has a one-shot crypto.hash (no Hash object); older Node 20 falls back to createHash. */
const oneShotHash = (nodeCrypto as { hash?: (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer })
  .hash;

interface MaybeWellFormed {
  isWellFormed?: () => boolean;
}

/** True when `name` has no lone surrogate (String.prototype.isWellFormed, Node 20+; regex otherwise). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const isWellFormed: (name: string) => boolean =
  typeof (String.prototype as MaybeWellFormed).isWellFormed === 'function'
    ? (name) => (name as unknown as Required<MaybeWellFormed>).isWellFormed()
    : (name) => !LONE_SURROGATE.test(name);

export function ledgerUuidV5(name: string): string {
  // uuid encodes with encodeURIComponent, which throws URIError on a lone surrogate where Buffer would
  // write U+FFFD: let uuid itself answer (throw) so behaviour stays identical. Ids are built from
  // validated ASCII (entity ids, tenant ids, printable-ASCII idempotency keys), so this never runs.
  if (!isWellFormed(name)) return uuidv5(name, LEDGER_NAMESPACE);
  let digest: Buffer;
  if (name.length <= SCRATCH_MAX_NAME_UNITS) {
    const nameBytes = scratch.write(name, 16, 'utf8');
    const input = scratch.subarray(0, 16 + nameBytes);
    digest = oneShotHash
      ? oneShotHash('sha1', input, 'buffer')
      : nodeCrypto.createHash('sha1').update(input).digest();
  } else {
    digest = nodeCrypto.createHash('sha1').update(NAMESPACE_BYTES).update(name, 'utf8').digest();
  }
  const hex = HEX_OF_BYTE;
  return (
    `${hex[digest[0]!]}${hex[digest[1]!]}${hex[digest[2]!]}${hex[digest[3]!]}-` +
    `${hex[digest[4]!]}${hex[digest[5]!]}-` +
    `${hex[(digest[6]! & 0x0f) | 0x50]}${hex[digest[7]!]}-` +
    `${hex[(digest[8]! & 0x3f) | 0x80]}${hex[digest[9]!]}-` +
    `${hex[digest[10]!]}${hex[digest[11]!]}${hex[digest[12]!]}${hex[digest[13]!]}${hex[digest[14]!]}${hex[digest[15]!]}`
  );
}
