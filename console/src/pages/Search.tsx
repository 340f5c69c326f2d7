import { useState } from 'preact/hooks';
import { api, query } from '../api';
import { Async, Badge, DateTime, PageTitle } from '../components/ui';
import { useLoad } from '../hooks';
import { KIND_LABELS, linkOf } from '../links';
import { href, navigate, type Route } from '../router';
import type { SearchResults } from '../types';

/**
 * The box's words as the search API takes them: `key=value` words are metadata filters
 * (`metadata[key]=value`: entries whose command carried the pair), the rest is the query.
 */
export function searchQuery(text: string): string {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const filters: Record<string, string> = {};
  const rest: string[] = [];
  for (const word of words) {
    const pair = /^([A-Za-z0-9_.:-]{1,40})=(.+)$/.exec(word);
    if (pair) filters[`metadata[${pair[1]}]`] = pair[2]!;
    else rest.push(word);
  }
  return query({ q: rest.join(' '), ...filters, limit: 50 });
}

export function SearchPage({ route }: { route: Route }) {
  const q = route.params.get('q') ?? '';
  const [text, setText] = useState(q);
  const results = useLoad(
    (signal) => (q ? api<SearchResults>(`/v1/search${searchQuery(q)}`, { signal }) : Promise.resolve(null)),
    [q],
  );
  return (
    <section>
      <PageTitle sub="A student, tutor, booking, payout, top-up, refund, journal entry, event id, idempotency key, Stripe object (pi_, ch_, re_, dp_, po_, tr_, acct_) or account; key=value finds the entries whose metadata has that pair.">
        Search
      </PageTitle>
      <form
        aria-label="Search the ledger"
        class="search-box"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href('search', { q: text.trim() }));
        }}
      >
        <label for="q" class="visually-hidden">
          Search the ledger
        </label>
        <input
          id="q"
          name="q"
          type="search"
          value={text}
          placeholder="bk_123, pi_3Nx…, student id, entry id, order=A-1…"
          autocomplete="off"
          spellcheck={false}
          onInput={(e) => setText((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Search</button>
      </form>
      {q ? (
        <Async loaded={results} what="search results">
          {(r) =>
            r && r.results.length > 0 ? (
              <>
                <p role="status">
                  {r.results.length} result{r.results.length === 1 ? '' : 's'} for <code>{r.query}</code>
                </p>
                <ul class="results" aria-label="Search results">
                  {r.results.map((res) => (
                    <li key={`${res.kind}:${res.id}`}>
                      <span class="kind">
                        <Badge>{KIND_LABELS[res.kind] ?? res.kind}</Badge>
                      </span>
                      <strong class="mono">{res.id}</strong>
                      {res.lastEventType ? (
                        <span class="meta">
                          {res.events > 1 ? `${res.events} events, last ` : ''}
                          {res.lastEventType}
                          {res.lastOccurredAt ? (
                            <>
                              {' '}
                              · <DateTime iso={res.lastOccurredAt} />
                            </>
                          ) : null}
                        </span>
                      ) : null}
                      <span class="links">
                        {linkOf(res.kind, res.id, res.currency).map((l) => (
                          <a key={l.href} href={l.href}>
                            {l.label}
                          </a>
                        ))}
                      </span>
                    </li>
                  ))}
                </ul>
              </>
            ) : (
              <p role="status" class="empty">
                Nothing in this tenant matches <code>{q}</code>.
              </p>
            )
          }
        </Async>
      ) : null}
    </section>
  );
}
