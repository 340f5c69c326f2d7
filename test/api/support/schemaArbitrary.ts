import fc from 'fast-check';

/**
 * fast-check arbitraries from the JSON Schemas of the OpenAPI document the app serves, for the schema
 * fuzz (test/api/schemaFuzz.e2e.test.ts). `valid` values satisfy the schema as the app's validator
 * reads it, including the values that pass a schema and still have to be refused by the app (leap
 * seconds, years 0000 and 9999, the largest integers); `hostile` ones mix in, at every leaf, values
 * from the boundary lists below, and at every object missing required and unknown properties.
 *
 * Covers the subset of JSON Schema the document uses ($ref to components, anyOf, enum, const, type
 * lists, string pattern/format/length, integer and number bounds, arrays, objects with properties,
 * additionalProperties, propertyNames and property counts); anything else is an error, so a schema
 * the fuzz cannot read fails loudly instead of being skipped.
 */
export type JsonSchema = Record<string, unknown>;

/** A JSON text JSON.stringify cannot produce: -0, integers past 2^53, 1e400. */
export class RawJson {
  constructor(readonly text: string) {}
}

const RAW_MARK = '\u0001raw\u0001';

/** JSON text of `value`, with RawJson tokens written out verbatim. */
export function toJsonText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof RawJson) {
      raws.push(v.text);
      return `${RAW_MARK}${raws.length - 1}`;
    }
    return v;
  });
  return text.replace(/"\\u0001raw\\u0001(\d+)"/g, (_m, i: string) => raws[Number(i)]!);
}

export const LEAP_SECOND = '2030-06-30T23:59:60Z';

/** Instants a date-time schema accepts (RFC 3339 as ajv-formats reads it) that the app must still check. */
export const ODD_VALID_DATE_TIMES = [
  LEAP_SECOND,
  '2016-12-31T23:59:60Z',
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '1970-01-01T00:00:00Z',
  '2024-02-29T12:00:00Z',
  '2030-01-01T00:00:00+14:00',
  '2030-01-01T00:00:00-23:59',
  '2030-01-01T00:00:00.123456789Z',
  '2030-01-01t10:00:00z',
];

/** Strings at the edges: calendars, integer widths, number spellings, Unicode, sizes. */
export const BOUNDARY_STRINGS: readonly string[] = [
  ...ODD_VALID_DATE_TIMES,
  '10000-01-01T00:00:00Z',
  '+010000-01-01T00:00:00Z',
  '-000001-01-01T00:00:00Z',
  '2030-02-30T00:00:00Z',
  '2030-13-01T00:00:00Z',
  '2030-01-01T24:00:00Z',
  '2030-01-01',
  '0000-00',
  '10000',
  '9223372036854775808', // 2^63
  '9223372036854775807',
  '18446744073709551616',
  '9999999999999999999',
  '9007199254740992',
  '9007199254740991',
  '-9007199254740992',
  '-0',
  '-1',
  '0',
  '00',
  '01',
  '1e3',
  '1e309',
  '0x10',
  '1_000',
  ' 1',
  '1.5',
  'NaN',
  'Infinity',
  '-Infinity',
  'null',
  'true',
  '[]',
  '{}',
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\uD800', // lone surrogates
  '\uDFFF',
  'x\uD83D',
  '\u202Eevil\u202C', // right-to-left override
  '\u200B', // zero width space
  'a\u200Db',
  '\uFEFF',
  '\u2028',
  'שלום',
  'مرحبا',
  'e\u0301',
  'Ａ',
  'İ',
  '😀',
  '😀'.repeat(64),
  '../../etc/passwd',
  "' OR 1=1 --",
  '<script>alert(1)</script>',
  'usd',
  'USD',
  'x'.repeat(65),
  'x'.repeat(401),
  'x'.repeat(10_000),
];

/** JSON numbers (and non-numbers) at the edges; RawJson for what JavaScript numbers cannot spell. */
export const BOUNDARY_NUMBERS: readonly unknown[] = [
  new RawJson('-0'),
  new RawJson('9223372036854775808'),
  new RawJson('9999999999999999999'),
  new RawJson('1e400'),
  new RawJson('1.0'),
  2 ** 53,
  2 ** 53 - 1,
  -(2 ** 53),
  2 ** 31,
  1e308,
  -1,
  0,
  0.5,
  Number.MIN_VALUE,
];

const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constantFrom(...BOUNDARY_STRINGS), weight: 6 },
  { arbitrary: fc.constantFrom(...BOUNDARY_NUMBERS), weight: 3 },
  { arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { '': 1 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 },
);

/** Anything at all where a value is expected. */
export const hostileValue: fc.Arbitrary<unknown> = hostileLeaf;

export interface SchemaArbitraryOptions {
  /** Resolves `#/components/schemas/X`. */
  resolve(ref: string): JsonSchema;
  /** Mix boundary values into every leaf and break objects now and then. */
  hostile: boolean;
  /**
   * Values worth sending for a property of this name (seeded ids, a supported currency, an allowed
   * URL): preferred to arbitrary ones that pass the schema, so requests get past the ledger's own checks.
   */
  known?: (propertyName: string) => readonly unknown[];
  /**
   * The request a careful client sends: required properties only, known values whenever there are
   * some, instants in the coming days, small integers. The fuzz's first request to each route is plain,
   * so every route is reached past its schemas whatever the seed.
   */
  plain?: boolean;
}

/** Values for `schema`: valid ones, or (hostile) valid ones broken at random places. */
export function schemaArbitrary(schema: JsonSchema, options: SchemaArbitraryOptions): fc.Arbitrary<unknown> {
  return validArbitrary(schema, options, 0);
}

function leaf(valid: fc.Arbitrary<unknown>, options: SchemaArbitraryOptions): fc.Arbitrary<unknown> {
  if (!options.hostile) return valid;
  return fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: hostileLeaf, weight: 1 });
}

function validArbitrary(
  schema: JsonSchema,
  options: SchemaArbitraryOptions,
  depth: number,
): fc.Arbitrary<unknown> {
  if (depth > 12) throw new Error('schema nests deeper than 12 levels');
  if (typeof schema.$ref === 'string')
    return validArbitrary(options.resolve(schema.$ref), options, depth + 1);
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (alternatives) return fc.oneof(...alternatives.map((s) => validArbitrary(s, options, depth + 1)));
  if ('const' in schema) return leaf(fc.constant(schema.const), options);
  if (Array.isArray(schema.enum)) return leaf(fc.constantFrom(...(schema.enum as unknown[])), options);
  const type = schema.type;
  if (Array.isArray(type)) {
    return fc.oneof(...type.map((t) => validArbitrary({ ...schema, type: t }, options, depth + 1)));
  }
  switch (type) {
    case 'string':
      return leaf(options.plain ? plainString(schema) : stringArbitrary(schema), options);
    case 'integer':
      return leaf(options.plain ? plainInteger(schema) : integerArbitrary(schema), options);
    case 'number':
      return leaf(
        fc.double({
          noNaN: true,
          noDefaultInfinity: true,
          ...(typeof schema.minimum === 'number' ? { min: schema.minimum } : {}),
          ...(typeof schema.maximum === 'number' ? { max: schema.maximum } : {}),
        }),
        options,
      );
    case 'boolean':
      return leaf(fc.boolean(), options);
    case 'null':
      return leaf(fc.constant(null), options);
    case 'array':
      return arrayArbitrary(schema, options, depth);
    case 'object':
      return objectArbitrary(schema, options, depth);
    case undefined:
      // No type: an object schema with properties, or anything.
      if (schema.properties || schema.additionalProperties) return objectArbitrary(schema, options, depth);
      return hostileLeaf;
    default:
      throw new Error(`schema fuzz: type ${String(type)} is not supported`);
  }
}

const DATE_TIME = fc.oneof(
  {
    arbitrary: fc
      .date({
        min: new Date('2000-01-01T00:00:00Z'),
        max: new Date('2045-12-31T23:59:59Z'),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString()),
    weight: 4,
  },
  {
    // Near now, both sides: schedules, report windows, due tasks.
    arbitrary: fc
      .integer({ min: -30 * 86_400, max: 30 * 86_400 })
      .map((s) => new Date(Date.now() + s * 1000).toISOString()),
    weight: 4,
  },
  { arbitrary: fc.constantFrom(...ODD_VALID_DATE_TIMES), weight: 2 },
);

function stringArbitrary(schema: JsonSchema): fc.Arbitrary<string> {
  const minLength = typeof schema.minLength === 'number' ? schema.minLength : 0;
  const maxLength = typeof schema.maxLength === 'number' ? schema.maxLength : undefined;
  const fits = (s: string) => s.length >= minLength && (maxLength === undefined || s.length <= maxLength);
  if (schema.format === 'date-time') return DATE_TIME.filter(fits);
  if (schema.format === 'uuid') return fc.uuid();
  if (schema.format !== undefined) throw new Error(`schema fuzz: string format ${String(schema.format)}`);
  if (typeof schema.pattern === 'string') {
    const pattern = new RegExp(schema.pattern, 'u');
    return fc.stringMatching(pattern, { size: 'small' }).filter(fits);
  }
  return fc.oneof(
    fc.string({ minLength, maxLength: Math.min(maxLength ?? 40, 40) }),
    fc.string({ unit: 'grapheme', minLength, maxLength: Math.min(maxLength ?? 20, 20) }),
    fc.constantFrom(...BOUNDARY_STRINGS.filter(fits)).filter(fits),
  );
}

function plainString(schema: JsonSchema): fc.Arbitrary<string> {
  if (schema.format === 'date-time') {
    return fc
      .integer({ min: 1, max: 7 })
      .map((days) => new Date(Date.now() + days * 86_400_000).toISOString());
  }
  return stringArbitrary(schema);
}

function plainInteger(schema: JsonSchema): fc.Arbitrary<number> {
  const min = typeof schema.minimum === 'number' ? schema.minimum : 0;
  const max = typeof schema.maximum === 'number' ? schema.maximum : 1_000;
  const low = Math.max(min, Math.min(1, max));
  return fc.integer({ min: low, max: Math.max(low, Math.min(max, 1_000)) });
}

function integerArbitrary(schema: JsonSchema): fc.Arbitrary<number> {
  const min = typeof schema.minimum === 'number' ? schema.minimum : Number.MIN_SAFE_INTEGER;
  const max = typeof schema.maximum === 'number' ? schema.maximum : Number.MAX_SAFE_INTEGER;
  const edges = [min, max, min + 1, max - 1, 0, 1, 100, 1_000, 5_000, 2 ** 31 - 1, 2 ** 31].filter(
    (n) => n >= min && n <= max && Number.isSafeInteger(n),
  );
  const small = fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31 - 1) });
  // The whole range, drawn within it: filtering maxSafeInteger() down to a narrow range (1..27) almost
  // never accepts once the bias is off, and fast-check's filter retries synchronously forever (it hung
  // the fuzz, and vitest's timeout cannot fire while the loop holds the event loop).
  const wide = fc.integer({
    min: Math.max(min, Number.MIN_SAFE_INTEGER),
    max: Math.min(max, Number.MAX_SAFE_INTEGER),
  });
  return fc.oneof(
    { arbitrary: small, weight: 5 },
    { arbitrary: fc.constantFrom(...edges), weight: 3 },
    { arbitrary: wide, weight: 1 },
  );
}

function arrayArbitrary(
  schema: JsonSchema,
  options: SchemaArbitraryOptions,
  depth: number,
): fc.Arbitrary<unknown> {
  const items = (schema.items ?? {}) as JsonSchema;
  const minLength = typeof schema.minItems === 'number' ? schema.minItems : 0;
  if (options.plain) {
    return fc.array(validArbitrary(items, options, depth + 1), {
      minLength,
      maxLength: Math.max(minLength, 1),
    });
  }
  const maxLength = Math.min(
    typeof schema.maxItems === 'number' ? schema.maxItems : 4,
    Math.max(minLength, 4),
  );
  const item = validArbitrary(items, options, depth + 1);
  const array = schema.uniqueItems
    ? fc.uniqueArray(item, { minLength, maxLength, selector: (v) => toJsonText(v) })
    : fc.array(item, { minLength, maxLength });
  return leaf(array, options);
}

const PROPERTY_NAME = /^[A-Za-z0-9_.:-]{1,40}$/;

function objectArbitrary(
  schema: JsonSchema,
  options: SchemaArbitraryOptions,
  depth: number,
): fc.Arbitrary<unknown> {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, property] of Object.entries(properties)) {
    const valid = validArbitrary(property, options, depth + 1);
    const known = (options.known?.(name) ?? []).filter((v) => plausibleFor(v, property));
    if (options.plain && !required.has(name)) continue;
    model[name] =
      known.length > 0 && options.plain
        ? fc.constantFrom(...known)
        : known.length > 0
          ? fc.oneof(
              { arbitrary: valid, weight: 1 },
              { arbitrary: leaf(fc.constantFrom(...known), options), weight: 4 },
            )
          : valid;
  }
  const known = fc.record(model, { requiredKeys: [...required].filter((k) => k in model) });
  let object: fc.Arbitrary<Record<string, unknown>> = known as fc.Arbitrary<Record<string, unknown>>;
  const additional = schema.additionalProperties;
  if (additional && typeof additional === 'object' && !options.plain) {
    const names = (schema.propertyNames as JsonSchema | undefined)?.pattern;
    const key = fc.stringMatching(typeof names === 'string' ? new RegExp(names) : PROPERTY_NAME, {
      size: 'xsmall',
    });
    const minKeys = typeof schema.minProperties === 'number' ? schema.minProperties : 0;
    const maxKeys = Math.min(typeof schema.maxProperties === 'number' ? schema.maxProperties : 3, 3);
    const extra = fc.dictionary(key, validArbitrary(additional as JsonSchema, options, depth + 1), {
      minKeys: Math.min(minKeys, maxKeys),
      maxKeys,
    });
    object = fc.tuple(known, extra).map(([k, e]) => ({ ...e, ...(k as Record<string, unknown>) }));
  }
  if (!options.hostile) return object;
  // Broken objects: a required property missing, an unknown one added, or not an object at all.
  return fc.oneof(
    { arbitrary: object, weight: 8 },
    {
      arbitrary: fc
        .tuple(object, fc.constantFrom(...(required.size > 0 ? [...required] : ['x'])))
        .map(([o, drop]) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== drop))),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(object, fc.constantFrom('unknownField', '__proto__', 'constructor', ''), hostileLeaf)
        .map(([o, k, v]) => {
          const copy: Record<string, unknown> = { ...o };
          Object.defineProperty(copy, k, { value: v, enumerable: true, configurable: true, writable: true });
          return copy;
        }),
      weight: 1,
    },
    { arbitrary: hostileLeaf, weight: 1 },
  );
}

/**
 * Whether a known value suits a schema well enough to offer it (a date-only `from` to a date pattern, a
 * date-time one to a date-time format): the shape checks only, the validator decides the rest.
 */
export function plausibleFor(value: unknown, schema: JsonSchema): boolean {
  if (Array.isArray(schema.enum)) return schema.enum.includes(value);
  if (typeof value === 'string') {
    if (schema.type !== undefined && schema.type !== 'string') return false;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) return false;
    if (schema.format === 'date-time' && !/^\d{4}-\d{2}-\d{2}T/.test(value)) return false;
    return true;
  }
  if (typeof value === 'number') return schema.type === 'integer' || schema.type === 'number';
  if (Array.isArray(value)) return schema.type === 'array';
  return true;
}
