import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantViolation } from '../../src/domain/errors.js';
import {
  assertBalanced,
  captureEntry,
  type Effect,
  holdEntry,
  type JournalEntry,
  type Posting,
  postEntry,
  releaseEntry,
} from '../../src/domain/journal.js';
import { uuid } from './fixtures.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 200);
const p = (
  account: string,
  side: 'debit' | 'credit',
  amount: number,
  effect: Effect = 'post',
  currency = 'usd',
) => ({ account, side, effect, amount, currency }) satisfies Posting;
const entry = (postings: Posting[]): JournalEntry => ({ entryId: uuid('e'), description: 'test', postings });

describe('assertBalanced', () => {
  it('accepts an entry whose debits equal credits per currency and effect', () => {
    assertBalanced(entry([p('a', 'debit', 100), p('b', 'credit', 60), p('c', 'credit', 40)]));
    assertBalanced(
      entry([
        p('a', 'debit', 100, 'release'),
        p('b', 'credit', 100, 'release'),
        p('a', 'debit', 70),
        p('c', 'credit', 70),
        p('x', 'debit', 5, 'post', 'eur'),
        p('y', 'credit', 5, 'post', 'eur'),
      ]),
    );
  });
  it.each<[string, Posting[]]>([
    ['debits above credits', [p('a', 'debit', 101), p('b', 'credit', 100)]],
    ['balanced only across currencies', [p('a', 'debit', 100), p('b', 'credit', 100, 'post', 'eur')]],
    ['balanced only across effects', [p('a', 'debit', 100, 'hold'), p('b', 'credit', 100, 'post')]],
    ['a single posting', [p('a', 'debit', 100)]],
    ['no postings', []],
    ['a zero amount', [p('a', 'debit', 0), p('b', 'credit', 0)]],
    ['a negative amount', [p('a', 'debit', -5), p('b', 'credit', -5)]],
    ['a fractional amount', [p('a', 'debit', 1.5), p('b', 'credit', 1.5)]],
    ['an unsafe amount', [p('a', 'debit', 2 ** 60), p('b', 'credit', 2 ** 60)]],
    ['a bad currency', [p('a', 'debit', 1, 'post', 'USD'), p('b', 'credit', 1, 'post', 'USD')]],
  ])('rejects %s', (_why, postings) => {
    expect(() => assertBalanced(entry(postings))).toThrow(InvariantViolation);
  });

  const lineArb = fc.record({
    amount: fc.integer({ min: 1, max: 1_000_000_000 }),
    currency: fc.constantFrom('usd', 'eur', 'jpy'),
    effect: fc.constantFrom<Effect>('post', 'hold', 'release'),
    debit: fc.constantFrom('student:s1:wallet', 'stripe:balance', 'clearing:booking:b1'),
    credit: fc.constantFrom('platform:revenue:commission', 'tutor:t1:earnings:pending'),
  });

  it('property: entries built from balanced pairs pass, and any perturbed amount fails', () => {
    fc.assert(
      fc.property(
        fc.array(lineArb, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.integer({ min: 1, max: 1000 }),
        (lines, pick, delta) => {
          const postings = lines.flatMap((l) => [
            p(l.debit, 'debit', l.amount, l.effect, l.currency),
            p(l.credit, 'credit', l.amount, l.effect, l.currency),
          ]);
          const shuffled = [...postings].sort((a, b) => a.account.localeCompare(b.account));
          assertBalanced(entry(shuffled));
          const index = pick % shuffled.length;
          const broken = shuffled.map((x, i) => (i === index ? { ...x, amount: x.amount + delta } : x));
          expect(() => assertBalanced(entry(broken))).toThrow(InvariantViolation);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('entry builders', () => {
  const hold = { debitAccount: 'student:s1:wallet', creditAccount: 'clearing:booking:b1', amount: 1000 };

  it('postEntry posts the lines and drops zero-amount lines', () => {
    const e = postEntry({
      entryId: uuid('p'),
      description: 'capture',
      currency: 'usd',
      lines: [
        { account: 'student:s1:wallet', side: 'debit', amount: 1 },
        { account: 'tutor:t1:earnings:pending', side: 'credit', amount: 1 },
        { account: 'platform:revenue:commission', side: 'credit', amount: 0 },
      ],
    });
    expect(e).toEqual({
      entryId: uuid('p'),
      description: 'capture',
      postings: [p('student:s1:wallet', 'debit', 1), p('tutor:t1:earnings:pending', 'credit', 1)],
    });
    expect('holdId' in e).toBe(false);
  });

  it('postEntry refuses unbalanced lines', () => {
    expect(() =>
      postEntry({
        entryId: uuid('p'),
        description: 'bad',
        currency: 'usd',
        lines: [
          { account: 'a', side: 'debit', amount: 2 },
          { account: 'b', side: 'credit', amount: 1 },
        ],
      }),
    ).toThrow(InvariantViolation);
  });

  it('holdEntry reserves on both sides with the hold id', () => {
    expect(
      holdEntry({ entryId: uuid('h'), holdId: uuid('hold'), description: 'hold', currency: 'usd', hold }),
    ).toEqual({
      entryId: uuid('h'),
      holdId: uuid('hold'),
      description: 'hold',
      postings: [
        p('student:s1:wallet', 'debit', 1000, 'hold'),
        p('clearing:booking:b1', 'credit', 1000, 'hold'),
      ],
    });
  });

  it('captureEntry releases the whole hold and posts possibly less', () => {
    const e = captureEntry({
      entryId: uuid('c'),
      holdId: uuid('hold'),
      description: 'capture',
      currency: 'usd',
      hold,
      lines: [
        { account: 'student:s1:wallet', side: 'debit', amount: 800 },
        { account: 'tutor:t1:earnings:pending', side: 'credit', amount: 640 },
        { account: 'platform:revenue:commission', side: 'credit', amount: 160 },
      ],
    });
    expect(e.postings).toEqual([
      p('student:s1:wallet', 'debit', 1000, 'release'),
      p('clearing:booking:b1', 'credit', 1000, 'release'),
      p('student:s1:wallet', 'debit', 800),
      p('tutor:t1:earnings:pending', 'credit', 640),
      p('platform:revenue:commission', 'credit', 160),
    ]);
  });

  it('releaseEntry releases, optionally posting a fee', () => {
    const plain = releaseEntry({
      entryId: uuid('r'),
      holdId: uuid('hold'),
      description: 'void',
      currency: 'usd',
      hold,
    });
    expect(plain.postings).toEqual([
      p('student:s1:wallet', 'debit', 1000, 'release'),
      p('clearing:booking:b1', 'credit', 1000, 'release'),
    ]);
    const withFee = releaseEntry({
      entryId: uuid('r'),
      holdId: uuid('hold'),
      description: 'late cancel',
      currency: 'usd',
      hold,
      lines: [
        { account: 'student:s1:wallet', side: 'debit', amount: 500 },
        { account: 'platform:revenue:commission', side: 'credit', amount: 500 },
      ],
    });
    expect(withFee.postings).toHaveLength(4);
  });
});
