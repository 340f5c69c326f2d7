import { PLATFORM_ADJUSTMENTS } from './accounts.js';
import { type JournalEntry, postEntry, type Side } from './journal.js';
import { formatMoney } from './money.js';

/**
 * The entry of a finance-admin manual adjustment, whichever stream makes it (a wallet, a tutor's
 * earnings, or an unconstrained ledger account): the adjusted account on `direction` and
 * platform:adjustments on the other side, so every adjustment shows as the platform's cost or gain.
 * `label` names the adjusted account in the description where the stream alone does not.
 */
export function manualAdjustmentEntry(input: {
  entryId: string;
  adjustmentId: string;
  account: string;
  label?: string;
  direction: Side;
  amount: number;
  currency: string;
  reason: string;
}): JournalEntry {
  const { entryId, adjustmentId, account, label, direction, amount, currency, reason } = input;
  const what = [direction, ...(label === undefined ? [] : [label]), formatMoney({ amount, currency })];
  return postEntry({
    entryId,
    currency,
    description: `Manual adjustment ${adjustmentId} (${what.join(' ')}): ${reason}`,
    lines: [
      { account, side: direction, amount },
      { account: PLATFORM_ADJUSTMENTS, side: direction === 'debit' ? 'credit' : 'debit', amount },
    ],
  });
}
