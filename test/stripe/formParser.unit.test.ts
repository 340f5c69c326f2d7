import { describe, expect, it } from 'vitest';
import { FormParseError, parseForm } from '../../src/stripe/fake/formParser.js';

describe('Stripe form parameters', () => {
  it('parses nested hashes, indexed and pushed arrays, and decodes values', () => {
    expect(
      parseForm(
        'amount=100&metadata[topUpId]=t%201&metadata[note]=a+b&expand[]=x&expand[]=y&types[0]=card&types[1]=sepa&created[gte]=5',
      ),
    ).toEqual({
      amount: '100',
      metadata: { topUpId: 't 1', note: 'a b' },
      expand: ['x', 'y'],
      types: ['card', 'sepa'],
      created: { gte: '5' },
    });
    expect(parseForm('')).toEqual({});
    expect(parseForm('a%5Bb%5D=1')).toEqual({ a: { b: '1' } });
  });

  it('rejects conflicting, malformed and hostile names', () => {
    expect(() => parseForm('a=1&a[b]=2')).toThrow(FormParseError);
    expect(() => parseForm('a[b=1')).toThrow(FormParseError);
    expect(() => parseForm('__proto__[x]=1')).toThrow(FormParseError);
    expect(() => parseForm('a[b][c][d][e][f][g]=1')).toThrow(FormParseError);
    expect(() => parseForm(Array.from({ length: 1_001 }, (_, i) => `k${i}=1`).join('&'))).toThrow(
      FormParseError,
    );
  });
});
