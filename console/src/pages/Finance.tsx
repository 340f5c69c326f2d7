import { api } from '../api';
import { AccountLink, Async, Badge, DateTime, Money, PageTitle, TableWrap } from '../components/ui';
import { useLoad } from '../hooks';
import { href } from '../router';
import type { OpenClearing, TrialBalance, TrialBalanceGroups } from '../types';

export function FinancePage() {
  const trial = useLoad((signal) => api<TrialBalance>('/v1/ledger/trial-balance', { signal }), []);
  const groups = useLoad(
    (signal) => api<TrialBalanceGroups>('/v1/ledger/trial-balance/groups', { signal }),
    [],
  );
  const clearing = useLoad((signal) => api<OpenClearing>('/v1/ledger/clearing?limit=200', { signal }), []);
  return (
    <section>
      <PageTitle sub="Posted and pending debits must equal credits in every currency.">
        Trial balance
      </PageTitle>
      <Async loaded={trial} what="the trial balance">
        {(tb) => (
          <>
            <p>{tb.balanced ? <Badge tone="ok">balanced</Badge> : <Badge tone="bad">NOT balanced</Badge>}</p>
            <TableWrap label="Trial balance per currency">
              <table>
                <caption>Totals per currency</caption>
                <thead>
                  <tr>
                    <th scope="col">Currency</th>
                    <th scope="col" class="num">
                      Debits posted
                    </th>
                    <th scope="col" class="num">
                      Credits posted
                    </th>
                    <th scope="col" class="num">
                      Debits pending
                    </th>
                    <th scope="col" class="num">
                      Credits pending
                    </th>
                    <th scope="col" class="num">
                      Difference
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {tb.currencies.length === 0 ? (
                    <tr>
                      <td colSpan={6} class="empty">
                        Nothing posted yet.
                      </td>
                    </tr>
                  ) : null}
                  {tb.currencies.map((c) => (
                    <tr key={c.currency}>
                      <th scope="row">{c.currency.toUpperCase()}</th>
                      <td class="num">
                        <Money amount={c.debitsPosted} currency={c.currency} />
                      </td>
                      <td class="num">
                        <Money amount={c.creditsPosted} currency={c.currency} />
                      </td>
                      <td class="num">
                        <Money amount={c.debitsPending} currency={c.currency} />
                      </td>
                      <td class="num">
                        <Money amount={c.creditsPending} currency={c.currency} />
                      </td>
                      <td class="num">
                        <Money amount={c.postedDifference + c.pendingDifference} currency={c.currency} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          </>
        )}
      </Async>

      <h2 id="groups-title">By account group</h2>
      <Async loaded={groups} what="the account groups">
        {(g) => (
          <TableWrap label="Trial balance by account group">
            <table>
              <caption>Each group's totals; open a group for its accounts</caption>
              <thead>
                <tr>
                  <th scope="col">Group</th>
                  <th scope="col">Kind</th>
                  <th scope="col" class="num">
                    Accounts
                  </th>
                  <th scope="col" class="num">
                    Debits posted
                  </th>
                  <th scope="col" class="num">
                    Credits posted
                  </th>
                  <th scope="col" class="num">
                    Held
                  </th>
                </tr>
              </thead>
              <tbody>
                {g.groups.map((row) => (
                  <tr key={`${row.currency}/${row.group}`}>
                    <td>
                      <a
                        class="mono"
                        href={href('accounts', {
                          prefix: row.prefix,
                          currency: row.currency,
                          kind: row.kind === 'unknown' ? undefined : row.kind,
                        })}
                      >
                        {row.group}
                      </a>{' '}
                      <span class="help">{row.currency.toUpperCase()}</span>
                    </td>
                    <td>
                      <Badge>{row.kind}</Badge>
                    </td>
                    <td class="num">{row.accounts}</td>
                    <td class="num">
                      <Money amount={row.debitsPosted} currency={row.currency} />
                    </td>
                    <td class="num">
                      <Money amount={row.creditsPosted} currency={row.currency} />
                    </td>
                    <td class="num">
                      <Money amount={row.debitsPending - row.creditsPending} currency={row.currency} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>

      <h2 id="clearing-title">Clearing accounts not back at zero</h2>
      <p class="help">
        Money in flight between two streams returns to zero when its flow completes; the oldest first.
      </p>
      <Async loaded={clearing} what="the open clearing accounts">
        {(c) =>
          c.accounts.length === 0 ? (
            <p role="status">
              <Badge tone="ok">all clear</Badge> every clearing account is back at zero.
            </p>
          ) : (
            <TableWrap label="Open clearing accounts">
              <table>
                <caption>
                  As of <DateTime iso={c.asOf} />
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Account</th>
                    <th scope="col" class="num">
                      Balance
                    </th>
                    <th scope="col" class="num">
                      Held
                    </th>
                    <th scope="col">Open for</th>
                  </tr>
                </thead>
                <tbody>
                  {c.accounts.map(({ account: a, ageSeconds }) => (
                    <tr key={`${a.account}/${a.currency}`}>
                      <td>
                        <AccountLink account={a.account} currency={a.currency} />
                      </td>
                      <td class="num">
                        <Money amount={a.posted} currency={a.currency} />
                      </td>
                      <td class="num">
                        <Money amount={-a.pending} currency={a.currency} />
                      </td>
                      <td>
                        <Badge
                          tone={
                            ageSeconds > 30 * 86_400 ? 'bad' : ageSeconds > 7 * 86_400 ? 'warn' : undefined
                          }
                        >
                          {age(ageSeconds)}
                        </Badge>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )
        }
      </Async>
    </section>
  );
}

/** 90061 -> "1 d 1 h"; buckets a finance admin reads at a glance. */
function age(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return `${m} min`;
}
