import { DomainError } from './errors.js';
import { assertCurrency, assertSameCurrency, formatMoney } from './money.js';
import { requireEntityId, validationFailed } from './validate.js';

/**
 * Guards the deciders share: each written once, so every aggregate refuses the same things the same way.
 */

/**
 * The id a command names for its stream's own entity (the wallet's student, the tutor, the Stripe
 * object): a valid entity id and, once the stream has one, the same.
 */
export function requireStreamEntity(
  current: string | null,
  value: unknown,
  field: string,
  misdirected: (id: string, current: string) => string,
): string {
  const id = requireEntityId(value, field);
  if (current !== null && current !== id) validationFailed(misdirected(id, current), { field });
  return id;
}

/**
 * The currency of a new money movement on a stream whose currency its first money event fixed: a
 * supported currency and, once the stream has one, the same (`what` names the stream in the error).
 */
export function requireStreamCurrency(current: string | null, value: unknown, what: string): string {
  const currency = assertCurrency(value);
  if (current !== null) assertSameCurrency(current, currency, what);
  return currency;
}

/**
 * A constrained account can pay `amount`: its available balance (0 before its first money event) is at
 * least that. `holder` names the account's owner in the error ("the wallet", "the tutor").
 */
export function requireAvailable(
  balance: { available: number; currency: string | null },
  amount: number,
  what: string,
  holder: string,
): void {
  const available = balance.currency === null ? 0 : balance.available;
  if (amount > available) {
    const money = (value: number) =>
      balance.currency === null ? String(value) : formatMoney({ amount: value, currency: balance.currency });
    throw new DomainError(
      'insufficient_funds',
      `${what}: ${holder} has ${money(available)} available, needs ${money(amount)}`,
      { available, requested: amount },
    );
  }
}

/** The two parts of a split add up to its whole (tutor share + commission = captured, ...). */
export function requireSplit(total: number, a: number, b: number, names: [string, string, string]): void {
  if (a + b !== total) {
    validationFailed(`${names[1]} + ${names[2]} must equal ${names[0]}`, {
      [names[0]]: total,
      [names[1]]: a,
      [names[2]]: b,
    });
  }
}
