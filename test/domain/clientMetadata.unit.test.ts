import { Value } from '@sinclair/typebox/value';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { METADATA_FILTER, MetadataIn } from '../../src/api/financeSchemas.js';
import { MetadataIn as ApiMetadataIn, METADATA_FILTER_PATTERN } from '../../src/api/schemas.js';
import {
  ClientMetadataSchema,
  canonicalClientMetadata,
  MAX_CLIENT_METADATA_KEYS,
  parseClientMetadata,
} from '../../src/domain/clientMetadata.js';
import { DomainError } from '../../src/domain/errors.js';
import { EventMetadataSchema } from '../../src/domain/metadata.js';

const keyArb = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/);
// No control characters (code points below 0x20, and 0x7f).
const valueArb = fc
  .string({ minLength: 1, maxLength: 500 })
  .filter((v) => [...v].every((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f));
const metadataArb = fc.dictionary(keyArb, valueArb, { minKeys: 1, maxKeys: MAX_CLIENT_METADATA_KEYS });
const anyArb = fc.oneof(
  metadataArb,
  fc.dictionary(fc.string({ maxLength: 45 }), fc.oneof(fc.string({ maxLength: 505 }), fc.integer()), {
    maxKeys: 22,
  }),
  fc.anything(),
);

describe('client metadata', () => {
  it('parseClientMetadata accepts exactly what the event schema stores ({} and undefined are none)', () => {
    fc.assert(
      fc.property(anyArb, (value) => {
        let parsed: ReturnType<typeof parseClientMetadata>;
        try {
          parsed = parseClientMetadata(value);
        } catch (error) {
          expect(error).toBeInstanceOf(DomainError);
          expect(Value.Check(ClientMetadataSchema, value)).toBe(false);
          return;
        }
        if (parsed === undefined) {
          expect(
            value === undefined || (typeof value === 'object' && Object.keys(value ?? {}).length === 0),
          ).toBe(true);
        } else {
          expect(Value.Check(ClientMetadataSchema, parsed)).toBe(true);
          expect(parsed).toEqual(value);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps keys such as __proto__ as keys', () => {
    const value = JSON.parse('{"__proto__":"x","constructor":"y"}') as unknown;
    expect(Object.keys(parseClientMetadata(value)!)).toEqual(['__proto__', 'constructor']);
  });

  it('an event whose metadata carries {} or a non-string value does not decode; old events without it do', () => {
    const base = {
      tenantId: 't1',
      correlationId: 'c',
      causationId: 'c',
      actor: { id: 'a', role: 'service' },
      idempotencyKey: 'k',
      occurredAt: '2026-01-01T00:00:00.000Z',
      schemaVersion: 1,
    };
    expect(Value.Check(EventMetadataSchema, base)).toBe(true);
    expect(Value.Check(EventMetadataSchema, { ...base, clientMetadata: { a: 'b' } })).toBe(true);
    expect(Value.Check(EventMetadataSchema, { ...base, clientMetadata: {} })).toBe(false);
    expect(Value.Check(EventMetadataSchema, { ...base, clientMetadata: { a: 1 } })).toBe(false);
  });

  it('the API schemas accept what the domain accepts and refuse the rest (one rule in three places)', () => {
    const ajv = new Ajv({ allErrors: false });
    const api = ajv.compile(ApiMetadataIn);
    const finance = ajv.compile(MetadataIn);
    const filterValue = ajv.compile(Object.values(METADATA_FILTER.patternProperties)[0]!);
    expect(Object.keys(METADATA_FILTER.patternProperties)).toEqual([METADATA_FILTER_PATTERN]);
    fc.assert(
      fc.property(anyArb, (value) => {
        if (value === undefined) return; // an absent field: the route never validates it
        let ok = true;
        try {
          parseClientMetadata(value);
        } catch {
          ok = false;
        }
        expect(api(value)).toBe(ok);
        expect(finance(value)).toBe(ok);
        if (ok && value && typeof value === 'object') {
          for (const v of Object.values(value)) expect(filterValue(v)).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('canonical metadata sorts its keys', () => {
    expect(Object.keys(canonicalClientMetadata({ b: '1', a: '2' }))).toEqual(['a', 'b']);
  });
});
