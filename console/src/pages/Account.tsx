import { useMemo, useState } from 'preact/hooks';
import { api, query } from '../api';
import { Chart } from '../components/Chart';
import { DownloadCsv } from '../components/DownloadCsv';
import { Async, Badge, DateTime, EntryLink, Money, PageTitle, TableWrap } from '../components/ui';
import { useLoad } from '../hooks';
import { formatMoney, minorDigits, toUnits } from '../money';
import { href, navigate, type Route } from '../router';
import type { AccountBalance, AccountSummary, BalanceSeries, Statement } from '../types';

const PAGE = 50;

/** `2030-01-02T03:04` (a datetime-local value, read as UTC) <-> ISO instant. */
function localToIso(value: string): string | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return null;
  const d = new Date(`${value}Z`);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
function isoToLocal(iso: string): string {
  return iso.slice(0, 19);
}

export function AccountPage({ route, account }: { route: Route; account: string }) {
  const currencyParam = route.params.get('currency') ?? undefined;
  const asOf = route.params.get('asOf') ?? undefined;
  const accounts = useLoad(
    (signal) =>
      api<{ items: AccountSummary[] }>(`/v1/accounts${query({ prefix: account, limit: 50 })}`, { signal }),
    [account],
  );
  return (
    <section>
      <PageTitle sub="Balance now and as of any moment, its history, and every entry that made it.">
        <span class="mono">{account}</span>
      </PageTitle>
      <Async loaded={accounts} what="the account">
        {(page) => {
          const rows = page.items.filter((a) => a.account === account);
          if (rows.length === 0) return <p class="empty">No entry has touched this account yet.</p>;
          const current = rows.find((r) => r.currency === currencyParam) ?? rows[0]!;
          return (
            <>
              {rows.length > 1 ? (
                <nav aria-label="Currencies" class="pager">
                  {rows.map((r) => (
                    <a
                      key={r.currency}
                      href={href('accounts', account, { currency: r.currency })}
                      aria-current={r.currency === current.currency ? 'page' : undefined}
                    >
                      {r.currency.toUpperCase()}
                    </a>
                  ))}
                </nav>
              ) : null}
              <AccountBody account={current} asOf={asOf} />
            </>
          );
        }}
      </Async>
    </section>
  );
}

function AccountBody({ account, asOf }: { account: AccountSummary; asOf: string | undefined }) {
  const { currency } = account;
  return (
    <>
      <p>
        <Badge>{account.kind}</Badge> normal side {account.normalSide} · {account.version} entries · last
        moved <DateTime iso={account.lastOccurredAt} />
      </p>
      <section class="cards" aria-label="Balance now">
        <Card label="Posted" amount={account.posted} currency={currency} />
        <Card label="Pending (held)" amount={account.pending} currency={currency} />
        <Card label="Available" amount={account.available} currency={currency} />
      </section>
      <AsOf account={account.account} currency={currency} side={account.normalSide} asOf={asOf} />
      <BalanceChart account={account.account} currency={currency} />
      <StatementTable account={account.account} currency={currency} />
    </>
  );
}

function Card({ label, amount, currency }: { label: string; amount: number; currency: string }) {
  return (
    <div class="card">
      <div class="label">{label}</div>
      <div class="value">
        <Money amount={amount} currency={currency} />
      </div>
    </div>
  );
}

/** Net posted balance in the account's normal direction (as the API's balances give it). */
function posted(b: AccountBalance, side: 'debit' | 'credit'): number {
  return side === 'credit' ? b.creditsPosted - b.debitsPosted : b.debitsPosted - b.creditsPosted;
}
function pending(b: AccountBalance, side: 'debit' | 'credit'): number {
  return side === 'credit' ? b.debitsPending - b.creditsPending : b.creditsPending - b.debitsPending;
}

function AsOf({
  account,
  currency,
  side,
  asOf,
}: {
  account: string;
  currency: string;
  side: 'debit' | 'credit';
  asOf: string | undefined;
}) {
  const [value, setValue] = useState(asOf ? isoToLocal(asOf) : '');
  const [invalid, setInvalid] = useState(false);
  const balance = useLoad(
    (signal) =>
      asOf
        ? api<AccountBalance>(`/v1/accounts/${encodeURIComponent(account)}/balance${query({ asOf })}`, {
            signal,
          })
        : Promise.resolve(null),
    [account, asOf],
  );
  return (
    <section aria-labelledby="asof-title">
      <h2 id="asof-title">Balance as of a moment</h2>
      <form
        class="fields"
        onSubmit={(e) => {
          e.preventDefault();
          const iso = localToIso(value);
          setInvalid(iso === null);
          if (iso) navigate(href('accounts', account, { currency, asOf: iso }));
        }}
      >
        <div class="field">
          <label for="asof">Date and time (UTC)</label>
          <input
            id="asof"
            type="datetime-local"
            step={1}
            value={value}
            aria-invalid={invalid ? 'true' : undefined}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          />
        </div>
        <button type="submit">Show balance</button>
      </form>
      {invalid ? (
        <p class="error" role="alert">
          Enter a date and a time.
        </p>
      ) : null}
      {asOf ? (
        <Async loaded={balance} what="the balance as of that moment">
          {(b) =>
            b ? (
              <section class="cards" aria-label={`Balance as of ${asOf}`} data-testid="as-of-balance">
                <p class="card-wide">
                  As of <DateTime iso={asOf} /> (after position{' '}
                  {b.position === '-1' ? 'none yet' : b.position}):
                </p>
                <Card label="Posted" amount={posted(b, side)} currency={currency} />
                <Card label="Pending (held)" amount={pending(b, side)} currency={currency} />
                <Card label="Available" amount={b.available} currency={currency} />
              </section>
            ) : null
          }
        </Async>
      ) : null}
    </section>
  );
}

function BalanceChart({ account, currency }: { account: string; currency: string }) {
  const series = useLoad(
    (signal) =>
      api<BalanceSeries>(
        `/v1/accounts/${encodeURIComponent(account)}/balance-series${query({ currency, points: 240 })}`,
        { signal },
      ),
    [account, currency],
  );
  const format = useMemo(
    () => (v: number) => formatMoney(Math.round(v * 10 ** minorDigits(currency)), currency),
    [currency],
  );
  return (
    <section aria-labelledby="chart-title">
      <h2 id="chart-title">Balance over time</h2>
      <Async loaded={series} what="the balance history">
        {(s) => <SeriesChart series={s} format={format} />}
      </Async>
    </section>
  );
}

function SeriesChart({ series, format }: { series: BalanceSeries; format: (v: number) => string }) {
  const data = useMemo(() => {
    const x = series.points.map((p) => Math.floor(Date.parse(p.at) / 1000));
    return {
      x,
      lines: [
        {
          label: 'Available',
          color: '#0b5cad',
          style: 'step' as const,
          values: series.points.map((p) => toUnits(p.available, series.currency)),
        },
        {
          label: 'Posted',
          color: '#8250df',
          style: 'step' as const,
          values: series.points.map((p) => toUnits(p.posted, series.currency)),
        },
      ],
    };
  }, [series]);
  const first = series.points[0];
  const last = series.points.at(-1);
  return (
    <>
      <Chart
        x={data.x}
        series={data.lines}
        format={format}
        label={`Balance of ${series.account} from ${first?.at ?? ''} to ${last?.at ?? ''}: available ${
          last ? formatMoney(last.available, series.currency) : ''
        } at the end`}
      />
      <p class="help">
        {series.points.length} points, each the as-of balance at that instant; drag across the chart to zoom,
        double-click to reset.
      </p>
    </>
  );
}

function StatementTable({ account, currency }: { account: string; currency: string }) {
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors.at(-1);
  const statement = useLoad(
    (signal) =>
      api<Statement>(
        `/v1/accounts/${encodeURIComponent(account)}/statement${query({ currency, limit: PAGE, cursor })}`,
        { signal },
      ),
    [account, currency, cursor],
  );
  return (
    <section aria-labelledby="statement-title">
      <h2 id="statement-title">Statement</h2>
      <p class="help">
        Newest first, one line per journal entry (a capture that releases a hold and posts the charge is one
        line), with the balance after it.
      </p>
      <DownloadCsv
        path={`/v1/accounts/${encodeURIComponent(account)}/statement.csv${query({ currency, order: 'asc' })}`}
        filename={`statement-${account.replaceAll(':', '_')}-${currency}.csv`}
        label="Export statement (CSV)"
      />
      <Async loaded={statement} what="the statement">
        {(s) => (
          <>
            <TableWrap label="Statement lines">
              <table class="stack">
                <caption>
                  Entries on {account} ({currency.toUpperCase()})
                </caption>
                <thead>
                  <tr>
                    <th scope="col">When (UTC)</th>
                    <th scope="col">What</th>
                    <th scope="col" class="num">
                      Posted change
                    </th>
                    <th scope="col" class="num">
                      Held change
                    </th>
                    <th scope="col" class="num">
                      Available after
                    </th>
                    <th scope="col">Entry</th>
                  </tr>
                </thead>
                <tbody>
                  {s.items.length === 0 ? (
                    <tr>
                      <td colSpan={6} class="empty">
                        No entries.
                      </td>
                    </tr>
                  ) : null}
                  {s.items.map((line) => (
                    <tr key={line.entryId}>
                      <td data-label="When (UTC)">
                        <DateTime iso={line.occurredAt} />
                      </td>
                      <td data-label="What">
                        <div>
                          <strong>{line.eventType}</strong>
                          <div class="help">{line.description}</div>
                        </div>
                      </td>
                      <td class="num" data-label="Posted change">
                        <Money amount={line.change.posted} currency={currency} />
                      </td>
                      <td class="num" data-label="Held change">
                        <Money amount={line.change.pending} currency={currency} />
                      </td>
                      <td class="num" data-label="Available after">
                        <Money amount={line.balanceAfter.available} currency={currency} />
                      </td>
                      <td data-label="Entry">
                        <EntryLink entryId={line.entryId} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
            <nav class="pager" aria-label="Statement pages">
              <button
                type="button"
                class="secondary"
                disabled={cursors.length === 0}
                onClick={() => setCursors(cursors.slice(0, -1))}
              >
                Newer
              </button>
              <button
                type="button"
                class="secondary"
                disabled={!s.nextCursor}
                onClick={() => s.nextCursor && setCursors([...cursors, s.nextCursor])}
              >
                Older
              </button>
            </nav>
          </>
        )}
      </Async>
    </section>
  );
}
