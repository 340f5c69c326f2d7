import type { Database } from '../db/database.js';
import { accountInfo } from '../domain/accounts.js';
import { queryAsTenant } from './readTransaction.js';
import { LIVE_SCHEMA } from './schema.js';

/**
 * Every account's posted totals at an instant (the accountant's closing balances of a period), from the
 * as-of index of the postings read model: per account and currency, the totals after its last posting
 * before the instant. Posted only: holds are not yet money moved.
 */
const S = LIVE_SCHEMA;

/** Accounts listed in one export at most (a tenant with more is refused loudly, not cut off). */
export const MAX_BALANCE_ROWS = 200_000;

export interface BalanceAsOfRow {
  account: string;
  kind: string;
  currency: string;
  debitsPosted: number;
  creditsPosted: number;
  /** On the account's normal side: credits - debits for credit-normal accounts, the reverse otherwise. */
  balance: number;
}

export class BalancesAsOfQueries {
  constructor(private readonly db: Database) {}

  async balancesAsOf(tenantId: string, asOf: Date): Promise<BalanceAsOfRow[]> {
    const [rows] = await queryAsTenant(this.db, tenantId, [
      {
        sql: `SELECT DISTINCT ON (account, currency) account, currency, debits_posted, credits_posted
                FROM ${S}.postings
               WHERE tenant_id = ? AND occurred_at < ?::timestamptz
               ORDER BY account, currency, occurred_at DESC, position DESC, line DESC
               LIMIT ?`,
        bindings: [tenantId, asOf.toISOString(), MAX_BALANCE_ROWS + 1],
      },
    ]);
    if (rows!.length > MAX_BALANCE_ROWS) {
      throw new Error(`more than ${MAX_BALANCE_ROWS} account balances: export them per account instead`);
    }
    return rows!.map((r) => {
      const account = String(r.account);
      const info = accountInfo(account);
      const debits = Number(r.debits_posted);
      const credits = Number(r.credits_posted);
      return {
        account,
        kind: info.kind,
        currency: String(r.currency),
        debitsPosted: debits,
        creditsPosted: credits,
        balance: info.normalSide === 'credit' ? credits - debits : debits - credits,
      };
    });
  }
}
