import type { Knex } from 'knex';
import type { Posting } from '../domain/journal.js';
import { balanceKey, type Totals } from './balances.js';
import type { ReadModelSchema } from './schema.js';
import { type Column, int8 } from './sql.js';

/**
 * The bi-temporal as-of index (docs/ledger-flows.md, "Backdated entries and closed periods").
 *
 * `effective_postings` holds, per posting line, the account's totals after it **in effective order**
 * (effective_at, position, line), as known from `known_at` on. A line recorded in effective order
 * (the common case: effective at or after every line the account already has) gets one row, the same
 * totals as its `postings` row. A backdated line gets its own row (the totals of everything known
 * before it that is effective before it, plus itself) and a new version of every row already known
 * that is effective after it (its totals plus the line), known from the backdated line's time. Old
 * versions stay: they are what was known before.
 *
 * So "balance as of effective time T, as known at time K" is the first row of the index
 * (tenant, account, currency, effective_at DESC, position DESC, line DESC, known_at DESC) with
 * effective_at <= T and known_at <= K: the last line effective by T among those known by K, in its
 * version known at K. One backward index seek, both conditions index conditions (no filter): it
 * passes over only index tuples known after K (lines backdated after K and their versions).
 * Since no entry is effective after it was recorded, T is first lowered to K (nothing effective
 * after K can be known at K), so a question about the distant past never walks the recent lines.
 *
 * The price is paid on the write side and only by backdated lines: one new version per line of the
 * account effective after the backdated one (bounded in practice by the open periods: nothing is
 * backdated into a closed one).
 */

export const EFFECTIVE_POSTING_COLUMNS: readonly Column[] = [
  ['tenant_id', 'text'],
  ['account', 'text'],
  ['currency', 'text'],
  ['effective_at', 'timestamptz'],
  ['position', 'int8'],
  ['line', 'int4'],
  ['entry_id', 'text'],
  ['side', 'text'],
  ['effect', 'text'],
  ['amount', 'int8'],
  ['debits_pending', 'int8'],
  ['debits_posted', 'int8'],
  ['credits_pending', 'int8'],
  ['credits_posted', 'int8'],
  ['version', 'int8'],
  ['known_at', 'timestamptz'],
  ['known_position', 'int8'],
];

export const EFFECTIVE_AS_OF_INDEX = {
  name: 'effective_postings_as_of',
  columns: '(tenant_id, account, currency, effective_at DESC, position DESC, line DESC, known_at DESC)',
} as const;

export async function createEffectivePostingsTable(knex: Knex, schema: ReadModelSchema): Promise<void> {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS ${schema}.effective_postings (
      tenant_id text NOT NULL,
      account text NOT NULL,
      currency text NOT NULL,
      effective_at timestamptz NOT NULL,
      position bigint NOT NULL,
      line integer NOT NULL,
      entry_id text NOT NULL,
      side text NOT NULL,
      effect text NOT NULL,
      amount bigint NOT NULL,
      debits_pending bigint NOT NULL,
      debits_posted bigint NOT NULL,
      credits_pending bigint NOT NULL,
      credits_posted bigint NOT NULL,
      version bigint NOT NULL,
      known_at timestamptz NOT NULL,
      known_position bigint NOT NULL
    )`);
}

export function effectivePostingsIndexStatement(schema: ReadModelSchema): string {
  return `CREATE INDEX IF NOT EXISTS ${EFFECTIVE_AS_OF_INDEX.name} ON ${schema}.effective_postings ${EFFECTIVE_AS_OF_INDEX.columns}`;
}

/** A line effective before a line its account already has: written by `applyLateLines`. */
export interface LateLine {
  tenantId: string;
  account: string;
  currency: string;
  effectiveAt: string;
  position: bigint;
  line: number;
  entryId: string;
  posting: Posting;
  knownAt: string;
  /** The entry's first line on this account: the account's version (entries so far) rises by one. */
  firstOnAccount: boolean;
}

/** What one posting line adds to an account's four totals. */
export function deltaOf(p: Posting): Totals {
  const d = { debitsPending: 0, debitsPosted: 0, creditsPending: 0, creditsPosted: 0 };
  const sign = p.effect === 'release' ? -1 : 1;
  if (p.side === 'debit') {
    if (p.effect === 'post') d.debitsPosted = p.amount;
    else d.debitsPending = sign * p.amount;
  } else if (p.effect === 'post') d.creditsPosted = p.amount;
  else d.creditsPending = sign * p.amount;
  return d;
}

const sumTotals = (a: Totals, b: Totals): Totals => ({
  debitsPending: a.debitsPending + b.debitsPending,
  debitsPosted: a.debitsPosted + b.debitsPosted,
  creditsPending: a.creditsPending + b.creditsPending,
  creditsPosted: a.creditsPosted + b.creditsPosted,
});

/**
 * Writes backdated lines in position order. The lines of one entry on one account (a capture's release
 * and post on the wallet) are written together: each one's own row (the totals before the entry plus
 * its lines so far), then one version of every row of the account known before the entry and effective
 * after it (plus all of them). Set-based, two statements per backdated entry and account.
 */
export async function applyLateLines(
  trx: Knex.Transaction,
  schema: ReadModelSchema,
  lines: readonly LateLine[],
): Promise<void> {
  const t = `${schema}.effective_postings`;
  // Groups in order of first appearance: positions increase, and accounts of one position are independent.
  const groups = new Map<string, LateLine[]>();
  for (const l of lines) {
    const k = `${l.position}\u0000${balanceKey(l.tenantId, l.account, l.currency)}`;
    const group = groups.get(k);
    if (group) group.push(l);
    else groups.set(k, [l]);
  }
  for (const group of groups.values()) {
    const first = group[0]!;
    const key = [first.tenantId, first.account, first.currency];
    let cumulative: Totals = { debitsPending: 0, debitsPosted: 0, creditsPending: 0, creditsPosted: 0 };
    let versionStep = 0;
    for (const l of group) {
      cumulative = sumTotals(cumulative, deltaOf(l.posting));
      if (l.firstOnAccount) versionStep = 1;
      await trx.raw(
        `INSERT INTO ${t} (tenant_id, account, currency, effective_at, position, line, entry_id, side, effect, amount,
                           debits_pending, debits_posted, credits_pending, credits_posted, version, known_at, known_position)
         SELECT ?, ?, ?, ?::timestamptz, ?::int8, ?, ?, ?, ?, ?,
                coalesce(b.debits_pending, 0) + ?, coalesce(b.debits_posted, 0) + ?,
                coalesce(b.credits_pending, 0) + ?, coalesce(b.credits_posted, 0) + ?,
                coalesce(b.version, 0) + ?, ?::timestamptz, ?::int8
           FROM (SELECT 1) one
           LEFT JOIN LATERAL (
             SELECT debits_pending, debits_posted, credits_pending, credits_posted, version FROM ${t}
              WHERE tenant_id = ? AND account = ? AND currency = ?
                AND (effective_at, position) < (?::timestamptz, ?::int8) AND known_position < ?::int8
              ORDER BY effective_at DESC, position DESC, line DESC, known_position DESC LIMIT 1) b ON true`,
        [
          ...key,
          l.effectiveAt,
          int8(l.position),
          l.line,
          l.entryId,
          l.posting.side,
          l.posting.effect,
          l.posting.amount,
          cumulative.debitsPending,
          cumulative.debitsPosted,
          cumulative.creditsPending,
          cumulative.creditsPosted,
          versionStep,
          l.knownAt,
          int8(l.position),
          ...key,
          l.effectiveAt,
          int8(l.position),
          int8(l.position),
        ],
      );
    }
    await trx.raw(
      `INSERT INTO ${t} (tenant_id, account, currency, effective_at, position, line, entry_id, side, effect, amount,
                         debits_pending, debits_posted, credits_pending, credits_posted, version, known_at, known_position)
       SELECT tenant_id, account, currency, effective_at, position, line, entry_id, side, effect, amount,
              debits_pending + ?, debits_posted + ?, credits_pending + ?, credits_posted + ?, version + ?,
              -- never known before the line it versions (recorded times need not rise with positions)
              greatest(?::timestamptz, known_at), ?::int8
         FROM (SELECT DISTINCT ON (effective_at, position, line) * FROM ${t}
                WHERE tenant_id = ? AND account = ? AND currency = ?
                  AND (effective_at, position) > (?::timestamptz, ?::int8) AND known_position < ?::int8
                ORDER BY effective_at, position, line, known_position DESC) v`,
      [
        cumulative.debitsPending,
        cumulative.debitsPosted,
        cumulative.creditsPending,
        cumulative.creditsPosted,
        versionStep,
        first.knownAt,
        int8(first.position),
        ...key,
        first.effectiveAt,
        int8(first.position),
        int8(first.position),
      ],
    );
  }
}

/** The latest effective time of each account among `keys` (null: no line yet). */
export async function loadMaxEffective(
  trx: Knex | Knex.Transaction,
  schema: ReadModelSchema,
  keys: ReadonlyArray<readonly [string, string, string]>,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (keys.length === 0) return out;
  const result = (await trx.raw(
    `SELECT k.tenant_id, k.account, k.currency, m.effective_at
       FROM unnest(?::text[], ?::text[], ?::text[]) AS k(tenant_id, account, currency)
       JOIN LATERAL (
         SELECT e.effective_at FROM ${schema}.effective_postings e
          WHERE e.tenant_id = k.tenant_id AND e.account = k.account AND e.currency = k.currency
          ORDER BY e.effective_at DESC, e.position DESC, e.line DESC, e.known_at DESC LIMIT 1) m ON true`,
    [keys.map((k) => k[0]), keys.map((k) => k[1]), keys.map((k) => k[2])],
  )) as { rows: Array<{ tenant_id: string; account: string; currency: string; effective_at: Date }> };
  for (const r of result.rows) {
    out.set(balanceKey(r.tenant_id, r.account, r.currency), r.effective_at.toISOString());
  }
  return out;
}

/**
 * The bi-temporal as-of seek: the account's totals after its last line effective by `asOf`, as known at
 * `knownAt` (now when absent). `asOf` is first lowered to `knownAt`: nothing is effective after it was
 * recorded, so nothing effective after K is known at K. Both bounds are index conditions of
 * EFFECTIVE_AS_OF_INDEX (test/projections/bitemporal.int.test.ts shows the plan).
 */
export function effectiveSeek(
  schema: string,
  tenantId: string,
  account: string,
  currency: string,
  asOf: Date,
  knownAt?: Date,
): [string, Array<string | number>] {
  const t = knownAt !== undefined && knownAt < asOf ? knownAt : asOf;
  return knownAt === undefined
    ? [
        `SELECT * FROM ${schema}.effective_postings WHERE tenant_id = ? AND account = ? AND currency = ?
            AND effective_at <= ?
          ORDER BY effective_at DESC, position DESC, line DESC, known_at DESC LIMIT 1`,
        [tenantId, account, currency, t.toISOString()],
      ]
    : [
        `SELECT * FROM ${schema}.effective_postings WHERE tenant_id = ? AND account = ? AND currency = ?
            AND effective_at <= ? AND known_at <= ?
          ORDER BY effective_at DESC, position DESC, line DESC, known_at DESC LIMIT 1`,
        [tenantId, account, currency, t.toISOString(), knownAt.toISOString()],
      ];
}
