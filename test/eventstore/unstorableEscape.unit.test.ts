import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidAppendError } from '../../src/eventstore/port.js';
import { hasUnstorableEscape, validateAppend } from '../../src/eventstore/validation.js';

/** The check validateAppend ran on every serialized event before the pre-filter (kept verbatim). */
const REFERENCE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** Strings dense in what the pattern looks at: backslash runs, u/U, surrogate and NUL escape digits. */
const escapeSoup = fc
  .array(
    fc.constantFrom(
      '\\',
      '\\\\',
      'u',
      'U',
      'd8',
      'DB',
      'df',
      '00',
      '0000',
      'a',
      '"',
      'x',
      '\u0000',
      '\ud800',
    ),
    {
      maxLength: 30,
    },
  )
  .map((parts) => parts.join(''));

describe('hasUnstorableEscape answers exactly what the regex alone answered', () => {
  it('on raw strings and on their JSON serializations', () => {
    fc.assert(
      fc.property(fc.oneof(escapeSoup, fc.string({ unit: 'binary' })), (text) => {
        expect(hasUnstorableEscape(text)).toBe(REFERENCE.test(text));
        const json = JSON.stringify({ note: text, nested: [text] });
        expect(hasUnstorableEscape(json)).toBe(REFERENCE.test(json));
      }),
      { numRuns: 20_000 },
    );
  });

  it('on serialized JSON values of any shape', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const json = JSON.stringify(value);
        expect(hasUnstorableEscape(json)).toBe(REFERENCE.test(json));
      }),
      { numRuns: 5_000 },
    );
  });

  it('still makes validateAppend refuse NUL and lone surrogates in data and metadata, and only those', () => {
    const append = (data: Record<string, unknown>, metadata: Record<string, unknown>) => () =>
      validateAppend(
        'booking-tenant_a.b1',
        [{ id: '0b1e7c52-4b0e-5b8e-9a57-2a8f3c0d9e11', type: 'BookingHoldPlaced', data, metadata }],
        { expectedRevision: 'any' },
      );
    for (const bad of ['a\u0000b', '\ud800', 'x\udfff', '\\\u0000']) {
      expect(append({ note: bad }, {})).toThrow(InvalidAppendError);
      expect(append({}, { note: [bad] })).toThrow(/NUL characters or unpaired surrogates/);
    }
    for (const fine of ['\\u0000', '\\ud800', 'U+D800', '😀', '\u0001', '\\\\u0000']) {
      expect(append({ note: fine }, { note: fine })).not.toThrow();
    }
  });
});
