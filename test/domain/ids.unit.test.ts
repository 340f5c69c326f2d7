import fc from 'fast-check';
import { v5 as uuidv5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import {
  bookingHoldId,
  deterministicId,
  eventId,
  LEDGER_NAMESPACE,
  ledgerUuidV5,
  payoutHoldId,
} from '../../src/domain/ids.js';

/** The uuid library's v5, which every id persisted so far was made with. */
const reference = (name: string): string => uuidv5(name, LEDGER_NAMESPACE);

/** Either the id, or the error it threw (uuid throws URIError on a lone surrogate). */
function outcome(make: () => string): { id: string } | { error: string } {
  try {
    return { id: make() };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}

const asciiPart = fc.string({ unit: 'grapheme-ascii', maxLength: 80 });

describe('ledgerUuidV5 equals uuid v5 in LEDGER_NAMESPACE', () => {
  it('for arbitrary UTF-16 strings, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (name) => {
        expect(outcome(() => ledgerUuidV5(name))).toEqual(outcome(() => reference(name)));
      }),
      { numRuns: 5_000 },
    );
  });

  it('for any code-unit soup (surrogate halves in every position)', () => {
    const unit = fc.oneof(
      fc.integer({ min: 0, max: 0x7f }),
      fc.integer({ min: 0xd800, max: 0xdfff }),
      fc.integer({ min: 0, max: 0xffff }),
    );
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 40 }), (codes) => {
        const name = String.fromCharCode(...codes);
        expect(outcome(() => ledgerUuidV5(name))).toEqual(outcome(() => reference(name)));
      }),
      { numRuns: 5_000 },
    );
  });

  it('for names around the reused-buffer bound (1024 units) with multi-byte characters', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 1100 }),
        fc.constantFrom('a', 'é', '€', '😀'),
        (length, char) => {
          // Slicing may cut an emoji in half: a lone surrogate at the end must also behave like uuid.
          const name = char.repeat(Math.ceil(length / char.length)).slice(0, length);
          expect(outcome(() => ledgerUuidV5(name))).toEqual(outcome(() => reference(name)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('for the shapes ids really have: tenant\\0type\\0key\\0index and deterministicId parts', () => {
    fc.assert(
      fc.property(
        asciiPart,
        asciiPart,
        asciiPart,
        fc.nat({ max: 1_000 }),
        fc.array(asciiPart, { maxLength: 6 }),
        (tenant, type, key, index, parts) => {
          expect(eventId(tenant, type, key, index)).toBe(reference(`${tenant}\0${type}\0${key}\0${index}`));
          expect(deterministicId(...parts)).toBe(reference(parts.join('\0')));
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('throws uuid’s URIError for a lone surrogate rather than hashing U+FFFD', () => {
    expect(() => deterministicId('hold', 'tenant_a', 'b\ud800')).toThrow(URIError);
    expect(() => deterministicId('hold', 'tenant_a', '\udc00b')).toThrow(URIError);
  });
});

describe('known ids (computed with uuid 14 v5; a change on either side must fail here)', () => {
  it.each([
    ['', 'ff174f0e-d708-59e1-a5b2-fc0230ed9a44'],
    ['hold\0tenant_a\0booking-1', '53d42975-9aa1-598c-a855-1bb84bef9634'],
    ['tenant_a\0PlaceBookingHold\0key-1\x000', '39a27809-2492-5bb3-acba-13f19c31516d'],
    ['entry\0t\0Cmd\0k', '5b8661ad-1eea-52e3-9d80-7b325396878d'],
    ['€😀 ünï', '4cb412d1-dc21-5fcf-a5d2-74f9051aee97'],
  ])('%j', (name, expected) => {
    expect(ledgerUuidV5(name)).toBe(expected);
    expect(reference(name)).toBe(expected);
  });

  it('for a 2000-character name (hashed outside the reused buffer)', () => {
    expect(ledgerUuidV5('x'.repeat(2000))).toBe('bde0636b-33ce-5972-a58f-e8b382ad63e5');
    expect(reference('x'.repeat(2000))).toBe('bde0636b-33ce-5972-a58f-e8b382ad63e5');
  });

  it('through the public helpers', () => {
    expect(bookingHoldId('tenant_a', 'booking-1')).toBe('53d42975-9aa1-598c-a855-1bb84bef9634');
    expect(eventId('tenant_a', 'PlaceBookingHold', 'key-1', 0)).toBe('39a27809-2492-5bb3-acba-13f19c31516d');
    expect(deterministicId('entry', 't', 'Cmd', 'k')).toBe('5b8661ad-1eea-52e3-9d80-7b325396878d');
    expect(payoutHoldId('tenant_a', 'payout-1')).toBe(reference('payout-hold\0tenant_a\0payout-1'));
  });
});
