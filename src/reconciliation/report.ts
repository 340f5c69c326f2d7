import type { ReconciliationItem, ReconciliationRun } from './types.js';

/** The report as JSON (the run with its summary, drift and listed exceptions). */
export function reportJson(run: ReconciliationRun): string {
  return `${JSON.stringify(run, null, 2)}\n`;
}

const COLUMNS: Array<keyof ReconciliationItem> = [
  'classification',
  'stripeObjectId',
  'balanceTransactionId',
  'type',
  'currency',
  'stripeAmount',
  'ledgerAmount',
  'stripeFee',
  'ledgerFee',
  'feeBooked',
  'detail',
];

/** RFC 4180 CSV of the exceptions, one per line, with a header. */
export function reportCsv(run: ReconciliationRun): string {
  const lines = [COLUMNS.join(',')];
  for (const item of run.items) lines.push(COLUMNS.map((c) => csvCell(item[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  // Quote anything with a separator, quote or newline; neutralise spreadsheet formulas.
  const safe = /^[=+\-@]/.test(text) && !/^-?\d+$/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
