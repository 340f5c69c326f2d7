import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { parseInstant, requireEntityId, requireText, requireUuid, toIso } from '../../src/domain/validate.js';

describe('parseInstant', () => {
  it.each([
    ['2026-03-01T10:00:00Z', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T10:00Z', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T10:00:00.123456Z', '2026-03-01T10:00:00.123Z'],
    ['2026-03-01T12:00:00+02:00', '2026-03-01T10:00:00.000Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
  ])('parses %s', (input, iso) => {
    expect(toIso(parseInstant(input, 'at'))).toBe(iso);
  });
  it.each([
    '2026-02-30T10:00:00Z',
    '2025-02-29T10:00:00Z',
    '2026-13-01T10:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T10:60:00Z',
    '2026-01-01T10:00:00',
    '2026-01-01',
    '1 March 2026',
    '',
  ])('rejects %j', (input) => {
    expect(() => parseInstant(input, 'at')).toThrow(DomainError);
  });
  it('rejects non-strings', () => {
    expect(() => parseInstant(1_700_000_000_000, 'at')).toThrow(/at must be an ISO-8601 instant/);
  });
});

describe('ids and text', () => {
  it('checks entity ids, UUIDs and free text', () => {
    expect(requireEntityId('Ab_-9', 'id')).toBe('Ab_-9');
    expect(() => requireEntityId('a.b', 'id')).toThrow(DomainError);
    expect(() => requireEntityId('x'.repeat(65), 'id')).toThrow(DomainError);
    expect(() => requireUuid('6F1D7C52-4B0E-4B8E-9A57-2A8F3C0D9E11', 'id')).toThrow(DomainError);
    expect(requireText('  why  ', 'reason')).toBe('why');
    expect(() => requireText('x'.repeat(501), 'reason')).toThrow(/at most 500/);
  });
});
