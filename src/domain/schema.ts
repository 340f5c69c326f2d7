import { type Static, type TObject, type TProperties, type TSchema, Type } from '@sinclair/typebox';
import { ENTITY_ID_PATTERN, TENANT_ID_PATTERN, UUID_PATTERN } from './ids.js';
import { CURRENCY_CODE_PATTERN } from './money.js';

/**
 * The building blocks of what the ledger stores: every event's data and metadata is a TypeBox schema
 * made of these, and the schema is the one definition of both the TypeScript type (`Static`) and the
 * runtime check that decoding a stored event performs (events.ts). They describe exactly what the
 * deciders write: a stored event that does not match is malformed.
 */

/** Objects never carry fields their schema does not name. */
export const strictObject = <T extends TProperties>(properties: T): TObject<T> =>
  Type.Object(properties, { additionalProperties: false });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const TenantIdSchema = Type.String({ pattern: TENANT_ID_PATTERN.source });
export const EntityIdSchema = Type.String({ pattern: ENTITY_ID_PATTERN.source });
export const UuidSchema = Type.String({ pattern: UUID_PATTERN.source });
export const CurrencySchema = Type.String({ pattern: CURRENCY_CODE_PATTERN.source });
/** Minor units: a non-negative safe integer (zero where "nothing" is meaningful, e.g. a free cancellation). */
export const AmountSchema = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
export const PositiveAmountSchema = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
/** A count (chunks, items, transactions scanned). */
export const CountSchema = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/**
 * Instants as events store them: UTC, millisecond precision, the form of Date#toISOString (which writes
 * years outside 0000-9999 as +YYYYYY / -YYYYYY: a deadline computed from a late date can get there).
 */
export const InstantSchema = Type.String({
  pattern: '^(\\d{4}|[+-]\\d{6})-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$',
});
/** Free text (reasons, descriptions), non-empty, at most `maxLength` characters. */
export const TextSchema = (maxLength = 500) => Type.String({ minLength: 1, maxLength });
/** An id issued by Stripe (pi_..., re_..., tr_..., po_...). */
export const StripeIdSchema = Type.String({ minLength: 1, maxLength: 255 });
export const SideSchema = Type.Union([Type.Literal('debit'), Type.Literal('credit')]);
export const EffectSchema = Type.Union([Type.Literal('post'), Type.Literal('hold'), Type.Literal('release')]);

/** Who caused an event (or asked for a command). */
export const ActorSchema = strictObject({
  id: Type.String({ minLength: 1, maxLength: 200 }),
  role: Type.String({ minLength: 1, maxLength: 64 }),
});
export type Actor = Static<typeof ActorSchema>;
