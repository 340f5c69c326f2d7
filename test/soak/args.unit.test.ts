import { describe, expect, it } from 'vitest';
import { ArgsError, parseArgs } from '../../soak/args.js';

const seed = () => 42;

describe('soak arguments', () => {
  it('defaults to a two-minute postgres run with 8 clients and 2 apps', () => {
    expect(parseArgs([], seed)).toEqual({
      workloadMs: 120_000,
      clients: 8,
      stack: 'postgres',
      ci: false,
      seed: 42,
      apps: 2,
      keep: false,
    });
  });

  it('reads --minutes (decimals), --clients, --seed in both spellings', () => {
    const o = parseArgs(['--minutes', '1.5', '--clients=16', '--seed', '7'], seed);
    expect(o).toMatchObject({ workloadMs: 90_000, clients: 16, seed: 7 });
  });

  it('--ci shrinks the defaults but explicit values win', () => {
    expect(parseArgs(['--ci'], seed)).toMatchObject({ ci: true, workloadMs: 60_000, clients: 4 });
    expect(parseArgs(['--ci', '--clients', '2'], seed)).toMatchObject({ clients: 2 });
  });

  it('embedded runs one app process', () => {
    expect(parseArgs(['--stack', 'embedded'], seed)).toMatchObject({ stack: 'embedded', apps: 1 });
    expect(() => parseArgs(['--stack', 'embedded', '--apps', '2'], seed)).toThrow(ArgsError);
  });

  it.each([
    [['--minutes', '0']],
    [['--minutes', '241']],
    [['--minutes', 'abc']],
    [['--clients', '0']],
    [['--clients', '65']],
    [['--clients', '2.5']],
    [['--stack', 'mysql']],
    [['--seed', '-1']],
    [['--bogus']],
    [['--clients']],
    [['--clients', '--ci']],
    [['--ci=yes']],
    [['--clients', '2', '--clients', '3']],
    [['positional']],
  ])('refuses %j', (argv) => {
    expect(() => parseArgs(argv, seed)).toThrow(ArgsError);
  });

  it('answers help', () => {
    expect(parseArgs(['--help'], seed)).toBe('help');
  });
});
