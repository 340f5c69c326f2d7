import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PersistentMap } from '../../src/lib/persistentMap.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 100);

describe('PersistentMap', () => {
  it('sets, gets and keeps earlier versions unchanged', () => {
    const empty = PersistentMap.empty<number>();
    const one = empty.set('a', 1);
    const two = one.set('b', 2);
    const replaced = two.set('a', 3);
    expect(empty.size).toBe(0);
    expect(one.get('a')).toBe(1);
    expect(one.has('b')).toBe(false);
    expect(two.toJSON()).toEqual({ a: 1, b: 2 });
    expect(replaced.toJSON()).toEqual({ a: 3, b: 2 });
    expect(replaced.size).toBe(2);
    expect(two.get('a')).toBe(1);
  });

  it('treats prototype names as ordinary keys', () => {
    const map = PersistentMap.empty<boolean>();
    expect(map.get('constructor')).toBeUndefined();
    expect(map.get('__proto__')).toBeUndefined();
    const set = map.set('__proto__', true).set('constructor', true);
    expect([...set.keys()].sort()).toEqual(['__proto__', 'constructor']);
    expect(Object.keys(set.toJSON()).sort()).toEqual(['__proto__', 'constructor']);
  });

  it('property: behaves like a Map over any sequence of sets, and old versions never change', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 6 }), fc.integer()), { maxLength: 150 }),
        (ops) => {
          const model = new Map<string, number>();
          let map = PersistentMap.empty<number>();
          const versions: Array<[PersistentMap<number>, Map<string, number>]> = [];
          for (const [key, value] of ops) {
            map = map.set(key, value);
            model.set(key, value);
            versions.push([map, new Map(model)]);
          }
          for (const [version, snapshot] of versions) {
            expect(version.size).toBe(snapshot.size);
            for (const [key, value] of snapshot) expect(version.get(key)).toBe(value);
          }
          expect(new Map(map.entries())).toEqual(model);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('stays fast for large aggregates (structural sharing, not copying)', () => {
    let map = PersistentMap.empty<number>();
    for (let i = 0; i < 20_000; i++) map = map.set(`hold-${i}`, i);
    expect(map.size).toBe(20_000);
    expect(map.get('hold-19999')).toBe(19_999);
  });
});
