import { useState } from 'preact/hooks';
import { api, query } from '../api';
import { AccountLink, Async, Badge, DateTime, Money, PageTitle, TableWrap } from '../components/ui';
import { useLoad } from '../hooks';
import { href, navigate, type Route } from '../router';
import type { AccountPage } from '../types';

const KINDS = ['', 'asset', 'liability', 'revenue', 'expense', 'clearing'] as const;

export function AccountsPage({ route }: { route: Route }) {
  const prefix = route.params.get('prefix') ?? '';
  const kind = route.params.get('kind') ?? '';
  const currency = route.params.get('currency') ?? '';
  const [form, setForm] = useState({ prefix, kind, currency });
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors.at(-1);
  const page = useLoad(
    (signal) =>
      api<AccountPage>(`/v1/accounts${query({ prefix, kind, currency, cursor, limit: 50 })}`, { signal }),
    [prefix, kind, currency, cursor],
  );
  return (
    <section>
      <PageTitle sub="Every account of the tenant with its balance, in path order.">Accounts</PageTitle>
      <form
        class="fields"
        onSubmit={(e) => {
          e.preventDefault();
          setCursors([]);
          navigate(
            href('accounts', { prefix: form.prefix.trim(), kind: form.kind, currency: form.currency }),
          );
        }}
      >
        <div class="field">
          <label for="prefix">Path starts with</label>
          <input
            id="prefix"
            value={form.prefix}
            placeholder="student:, clearing:booking:"
            onInput={(e) => setForm({ ...form, prefix: (e.target as HTMLInputElement).value })}
          />
        </div>
        <div class="field">
          <label for="kind">Kind</label>
          <select
            id="kind"
            value={form.kind}
            onChange={(e) => setForm({ ...form, kind: (e.target as HTMLSelectElement).value })}
          >
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k || 'any'}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="currency">Currency</label>
          <input
            id="currency"
            value={form.currency}
            size={5}
            maxLength={3}
            placeholder="usd"
            onInput={(e) =>
              setForm({ ...form, currency: (e.target as HTMLInputElement).value.toLowerCase() })
            }
          />
        </div>
        <button type="submit">Filter</button>
      </form>
      <Async loaded={page} what="the accounts">
        {(p) => (
          <>
            <TableWrap label="Accounts">
              <table>
                <caption>
                  Accounts{prefix ? ` starting with ${prefix}` : ''}
                  {kind ? ` (${kind})` : ''}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Account</th>
                    <th scope="col">Kind</th>
                    <th scope="col" class="num">
                      Posted
                    </th>
                    <th scope="col" class="num">
                      Held
                    </th>
                    <th scope="col" class="num">
                      Available
                    </th>
                    <th scope="col">Last moved</th>
                  </tr>
                </thead>
                <tbody>
                  {p.items.length === 0 ? (
                    <tr>
                      <td colSpan={6} class="empty">
                        No accounts match.
                      </td>
                    </tr>
                  ) : null}
                  {p.items.map((a) => (
                    <tr key={`${a.account}/${a.currency}`}>
                      <td data-label="Account">
                        <AccountLink account={a.account} currency={a.currency} />
                      </td>
                      <td data-label="Kind">
                        <Badge>{a.kind}</Badge>
                      </td>
                      <td class="num" data-label="Posted">
                        <Money amount={a.posted} currency={a.currency} />
                      </td>
                      <td class="num" data-label="Held">
                        <Money amount={a.pending} currency={a.currency} />
                      </td>
                      <td class="num" data-label="Available">
                        <Money amount={a.available} currency={a.currency} />
                      </td>
                      <td data-label="Last moved">
                        <DateTime iso={a.lastOccurredAt} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
            <nav class="pager" aria-label="Account pages">
              <button
                type="button"
                class="secondary"
                disabled={cursors.length === 0}
                onClick={() => setCursors(cursors.slice(0, -1))}
              >
                Previous
              </button>
              <button
                type="button"
                class="secondary"
                disabled={!p.nextCursor}
                onClick={() => p.nextCursor && setCursors([...cursors, p.nextCursor])}
              >
                Next
              </button>
            </nav>
          </>
        )}
      </Async>
    </section>
  );
}
