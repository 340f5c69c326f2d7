import { DomainError } from './errors.js';

/**
 * Money is an integer number of minor units plus a lowercase ISO 4217 code, as Stripe does. Numbers,
 * not bigint: every amount is a safe integer (checked here), and products that could overflow
 * (amount x bps) are computed in bigint.
 */
export interface Money {
  amount: number;
  currency: string;
}

/**
 * Currencies the ledger can hold, with their minor-unit exponents (ISO 4217). Tenants narrow this with
 * `allowedCurrencies`. Zero-decimal (jpy, krw, vnd, clp) and three-decimal (kwd, bhd, jod, omr, tnd)
 * currencies are here on purpose: amounts are minor units, so nothing else changes for them.
 */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = Object.freeze({
  usd: 2,
  eur: 2,
  gbp: 2,
  aud: 2,
  cad: 2,
  chf: 2,
  nzd: 2,
  sgd: 2,
  hkd: 2,
  sek: 2,
  nok: 2,
  dkk: 2,
  pln: 2,
  czk: 2,
  inr: 2,
  brl: 2,
  mxn: 2,
  zar: 2,
  thb: 2,
  jpy: 0,
  krw: 0,
  vnd: 0,
  clp: 0,
  kwd: 3,
  bhd: 3,
  jod: 3,
  omr: 3,
  tnd: 3,
});

export const BPS_DENOMINATOR = 10_000;

/** The shape of a currency code (which codes the ledger supports is CURRENCY_EXPONENTS). */
export const CURRENCY_CODE_PATTERN = /^[a-z]{3}$/;

export function isKnownCurrency(value: unknown): value is string {
  return typeof value === 'string' && Object.hasOwn(CURRENCY_EXPONENTS, value);
}

export function currencyExponent(currency: string): number {
  const exponent = Object.hasOwn(CURRENCY_EXPONENTS, currency) ? CURRENCY_EXPONENTS[currency] : undefined;
  if (exponent === undefined) {
    throw new DomainError('validation_failed', `unknown currency ${JSON.stringify(currency)}`, {
      field: 'currency',
    });
  }
  return exponent;
}

export function assertCurrency(value: unknown, field = 'currency'): string {
  if (!isKnownCurrency(value)) {
    throw new DomainError(
      'validation_failed',
      `${field}: unknown currency ${JSON.stringify(value)}; expected a lowercase ISO 4217 code the ledger supports`,
      { field },
    );
  }
  return value;
}

export interface AmountOptions {
  field?: string;
  /** Zero is invalid for almost every money movement; allow it only where "nothing" is meaningful. */
  allowZero?: boolean;
}

/**
 * Checks an amount in minor units: a number, an integer (no fractions of a cent), not NaN/Infinity,
 * not negative, not zero (unless allowed), at most Number.MAX_SAFE_INTEGER.
 */
export function assertAmount(value: unknown, options: AmountOptions = {}): number {
  const field = options.field ?? 'amount';
  const fail = (why: string): never => {
    throw new DomainError('validation_failed', `${field} ${why}`, { field, value: String(value) });
  };
  if (typeof value !== 'number') return fail('must be a number of minor units');
  if (Number.isNaN(value)) return fail('is NaN');
  if (!Number.isFinite(value)) return fail('must be finite');
  if (!Number.isInteger(value)) return fail('must be an integer number of minor units (no fractions)');
  if (value < 0) return fail('must not be negative');
  if (value > Number.MAX_SAFE_INTEGER) return fail(`must be at most ${Number.MAX_SAFE_INTEGER}`);
  if (value === 0 && !options.allowZero) return fail('must be greater than zero');
  // -0 passes the checks above when zero is allowed; normalise it so JSON and equality stay simple.
  return value === 0 ? 0 : value;
}

export interface ParseMoneyOptions extends AmountOptions {
  /** When given, the currency must also be one of these (tenant settings). */
  allowedCurrencies?: readonly string[];
}

export function parseMoney(input: unknown, options: ParseMoneyOptions = {}): Money {
  const field = options.field ?? 'amount';
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new DomainError('validation_failed', `${field} must be an object {amount, currency}`, { field });
  }
  const raw = input as { amount?: unknown; currency?: unknown };
  const currency = assertCurrency(raw.currency, `${field}.currency`);
  if (options.allowedCurrencies && !options.allowedCurrencies.includes(currency)) {
    throw new DomainError(
      'validation_failed',
      `${field}.currency ${currency} is not allowed for this tenant (allowed: ${options.allowedCurrencies.join(', ')})`,
      { field: `${field}.currency`, allowed: [...options.allowedCurrencies] },
    );
  }
  const amount = assertAmount(raw.amount, { field: `${field}.amount`, allowZero: options.allowZero });
  return { amount, currency };
}

/** floor(a * b / c) for non-negative safe integers, exact (bigint intermediate, no float rounding). */
export function mulDivFloor(a: number, b: number, c: number): number {
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || !Number.isSafeInteger(c)) {
    throw new RangeError(`mulDivFloor needs safe integers, got ${a}, ${b}, ${c}`);
  }
  if (a < 0 || b < 0 || c <= 0) throw new RangeError(`mulDivFloor needs a, b >= 0 and c > 0`);
  const result = (BigInt(a) * BigInt(b)) / BigInt(c);
  if (result > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`mulDivFloor(${a}, ${b}, ${c}) exceeds Number.MAX_SAFE_INTEGER`);
  }
  return Number(result);
}

export interface BpsSplit {
  /** floor(amount * bps / 10000): the side that rounds down (commission, fee). */
  part: number;
  /** amount - part: the side that gets the remainder (tutor share), so part + rest === amount. */
  rest: number;
}

/**
 * Splits an amount by basis points. Rounding rule: the bps side is floored, the remainder goes to the
 * other side. So the platform never rounds in its own favour, and the parts always sum to the whole.
 */
export function splitByBps(amount: number, bps: number): BpsSplit {
  assertAmount(amount, { field: 'amount', allowZero: true });
  if (!Number.isInteger(bps) || bps < 0 || bps > BPS_DENOMINATOR) {
    throw new DomainError('validation_failed', `bps must be an integer from 0 to ${BPS_DENOMINATOR}`, {
      field: 'bps',
    });
  }
  const part = mulDivFloor(amount, bps, BPS_DENOMINATOR);
  return { part, rest: amount - part };
}

/**
 * Allocates `total` across parts in proportion to non-negative integer weights (largest remainder
 * method). Rounding rule: every part gets floor(total * w / sum(w)); the units left over go one each to
 * the parts with the largest fractional remainders, ties to the earlier part. The result always sums
 * exactly to `total`, no part is negative, and a zero weight always gets zero.
 */
export function allocateProportionally(total: number, weights: readonly number[]): number[] {
  assertAmount(total, { field: 'total', allowZero: true });
  if (weights.length === 0) {
    throw new DomainError('validation_failed', 'allocation needs at least one part', { field: 'parts' });
  }
  let weightSum = 0n;
  for (const w of weights) {
    if (!Number.isSafeInteger(w) || w < 0) {
      throw new DomainError('validation_failed', 'allocation weights must be non-negative safe integers', {
        field: 'parts',
      });
    }
    weightSum += BigInt(w);
  }
  if (weightSum === 0n) {
    throw new DomainError('validation_failed', 'allocation weights must not all be zero', { field: 'parts' });
  }
  const bigTotal = BigInt(total);
  const floors: bigint[] = [];
  const remainders: bigint[] = [];
  let allocated = 0n;
  for (const w of weights) {
    const product = bigTotal * BigInt(w);
    const share = product / weightSum;
    floors.push(share);
    remainders.push(product % weightSum);
    allocated += share;
  }
  let leftover = bigTotal - allocated;
  // leftover < number of parts with a non-zero remainder, so this loop is bounded by weights.length.
  const order = weights
    .map((_, index) => index)
    .sort((a, b) => {
      const ra = remainders[a]!;
      const rb = remainders[b]!;
      return ra === rb ? a - b : rb > ra ? 1 : -1;
    });
  for (const index of order) {
    if (leftover === 0n) break;
    if (remainders[index]! === 0n) break;
    floors[index] = floors[index]! + 1n;
    leftover -= 1n;
  }
  return floors.map((f) => Number(f));
}

/**
 * Cumulative proportional share: how much of `part` (of a `whole`) belongs to the slice
 * (before, before + amount]. Summing it over consecutive slices that end at `whole` gives exactly `part`,
 * each slice's share is between 0 and amount, and the complement (amount - share) also never overshoots
 * `whole - part`. Used for partial refunds: no refund can take more of the commission or the tutor
 * share than is left, and the last refund takes exactly what remains of each.
 */
export function cumulativeShare(part: number, whole: number, before: number, amount: number): number {
  if (!(whole > 0 && part >= 0 && part <= whole && before >= 0 && amount >= 0 && before + amount <= whole)) {
    throw new RangeError(
      `cumulativeShare(part=${part}, whole=${whole}, before=${before}, amount=${amount}) out of range`,
    );
  }
  return mulDivFloor(before + amount, part, whole) - mulDivFloor(before, part, whole);
}

/** Human-readable money for descriptions, e.g. `12.34 USD`, `1500 JPY`, `1.250 KWD`. */
export function formatMoney(money: Money): string {
  const exponent = currencyExponent(money.currency);
  const code = money.currency.toUpperCase();
  if (exponent === 0) return `${money.amount} ${code}`;
  const digits = String(money.amount).padStart(exponent + 1, '0');
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)} ${code}`;
}

export function assertSameCurrency(expected: string, actual: string, what: string): void {
  if (expected !== actual) {
    throw new DomainError('currency_mismatch', `${what} is in ${expected}, not ${actual}`, {
      expected,
      actual,
    });
  }
}
