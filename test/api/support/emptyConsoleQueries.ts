import type { ConsoleQueries } from '../../../src/projections/consoleQueries.js';

/**
 * The console's reads over an empty ledger, for the shell harness (no database): every lookup finds
 * nothing, every list is empty. The routes' behaviour on real data is tested on the real stack
 * (test/console/financeApi.e2e.test.ts); this lets the role x route matrix and the fuzz reach them.
 */
export const emptyConsoleQueries: ConsoleQueries = {
  projectedPosition: async () => -1n,
  search: async () => [],
  listAccounts: async () => ({ items: [], nextCursor: null }),
  accountCurrencies: async () => [],
  getStatement: async () => null,
  getBalanceSeries: async () => null,
  accountSpan: async () => null,
  getJournal: async () => ({ items: [], nextCursor: null }),
  getEvent: async () => null,
  eventIdOfEntry: async () => null,
  getCauses: async () => null,
  getStory: async () => ({ events: [], postings: [], balances: [], truncated: false }),
  getTrialBalanceGroups: async () => [],
  getOpenClearing: async () => [],
  getAnalytics: async () => [],
  listReferences: async () => [],
};
