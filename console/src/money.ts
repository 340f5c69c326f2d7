/**
 * Money as people read it: integer minor units (the API's only form) shown in money units with the
 * currency, through Intl.NumberFormat, which knows each currency's decimals (usd 2, jpy 0, kwd 3).
 * The decimal is built as a string from the integer, so no float rounding touches an amount.
 */
const formatters = new Map<string, Intl.NumberFormat>();
const LOCALE = 'en-US';

function formatter(currency: string): Intl.NumberFormat {
  const key = currency.toUpperCase();
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.NumberFormat(LOCALE, { style: 'currency', currency: key, currencyDisplay: 'code' });
    formatters.set(key, f);
  }
  return f;
}

/** Decimals of a currency's minor unit (2 for usd). */
export function minorDigits(currency: string): number {
  return formatter(currency).resolvedOptions().maximumFractionDigits ?? 2;
}

/** The exact decimal string of `minor` minor units: 123456 usd -> "1234.56". */
export function decimalString(minor: number, currency: string): string {
  const digits = minorDigits(currency);
  const negative = minor < 0;
  const text = Math.abs(minor)
    .toString()
    .padStart(digits + 1, '0');
  const whole = digits === 0 ? text : text.slice(0, -digits);
  const fraction = digits === 0 ? '' : `.${text.slice(-digits)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** 123456 usd -> "USD 1,234.56". */
export function formatMoney(minor: number, currency: string): string {
  // Intl formats a decimal string exactly (ES2023 Intl.NumberFormat v3).
  return formatter(currency).format(decimalString(minor, currency) as Intl.StringNumericLiteral);
}

/** Money units as a number for charts (display only; amounts stay integers everywhere else). */
export function toUnits(minor: number, currency: string): number {
  return minor / 10 ** minorDigits(currency);
}

/** Parses what a person typed ("1,234.5") into minor units, or null if it is not an amount. */
export function parseMoneyInput(text: string, currency: string): number | null {
  const digits = minorDigits(currency);
  const cleaned = text.trim().replaceAll(',', '').replaceAll(' ', '');
  const match = /^(\d{1,15})(?:\.(\d*))?$/.exec(cleaned);
  if (!match) return null;
  const fraction = match[2] ?? '';
  if (fraction.length > digits) return null;
  const minor = Number(match[1]!) * 10 ** digits + Number(fraction.padEnd(digits, '0') || '0');
  return Number.isSafeInteger(minor) ? minor : null;
}

export function formatDateTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d.toLocaleString(LOCALE, { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC' }) + ' UTC';
}
