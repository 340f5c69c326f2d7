import { api } from '../api';
import { EventSummary, PostingsTable } from '../components/EventParts';
import {
  AccountLink,
  Async,
  Badge,
  EntryLink,
  EventLink,
  Money,
  PageTitle,
  TableWrap,
} from '../components/ui';
import { useLoad } from '../hooks';
import { KIND_LABELS } from '../links';
import { href } from '../router';
import type { Story } from '../types';

/**
 * The money story of anything events refer to: every event of the flow in every stream, in order, with
 * its postings, actor, cause and correlation, the Stripe objects involved and the current state. The
 * page knows no flow: a new flow's events appear here as they are.
 */
export function StoryPage({ kind, id }: { kind: string; id: string }) {
  const story = useLoad(
    (signal) => api<Story>(`/v1/stories/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`, { signal }),
    [kind, id],
  );
  return (
    <section>
      <PageTitle sub="Every event of this flow, in every stream, in the order the ledger recorded them.">
        {KIND_LABELS[kind] ?? kind} <span class="mono">{id}</span>
      </PageTitle>
      <Async loaded={story} what="the story">
        {(s) => (
          <>
            <h2>Now</h2>
            <dl class="facts">
              <dt>State</dt>
              <dd>
                {s.state.status ? <Badge>{s.state.status}</Badge> : null} last event{' '}
                <strong>{s.state.lastEventType ?? '—'}</strong>
              </dd>
              <dt>Streams</dt>
              <dd>
                {s.streams.map((st) => (
                  <span key={st} class="mono chip">
                    {st}
                  </span>
                ))}
              </dd>
              <dt>Stripe objects</dt>
              <dd>
                {s.stripeObjects.length === 0
                  ? 'none'
                  : s.stripeObjects.map((o) => (
                      <a key={o} class="mono chip" href={href('story', 'stripe', o)}>
                        {o}
                      </a>
                    ))}
              </dd>
              {s.state.view
                ? Object.entries(s.state.view)
                    .filter(([k]) => k !== 'status')
                    .map(([k, v]) => [
                      <dt key={`${k}-t`}>{k}</dt>,
                      <dd key={`${k}-d`} class="mono">
                        {typeof v === 'object' ? JSON.stringify(v) : String(v)}
                      </dd>,
                    ])
                : null}
            </dl>
            {s.accounts.length > 0 ? (
              <TableWrap label="Accounts this flow touched">
                <table>
                  <caption>Accounts this flow touched, balances now</caption>
                  <thead>
                    <tr>
                      <th scope="col">Account</th>
                      <th scope="col" class="num">
                        Posted
                      </th>
                      <th scope="col" class="num">
                        Held
                      </th>
                      <th scope="col" class="num">
                        Available
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.accounts.map((a) => (
                      <tr key={`${a.account}/${a.currency}`}>
                        <td>
                          <AccountLink account={a.account} currency={a.currency} />
                        </td>
                        <td class="num">
                          <Money amount={a.posted} currency={a.currency} />
                        </td>
                        <td class="num">
                          <Money amount={a.pending} currency={a.currency} />
                        </td>
                        <td class="num">
                          <Money amount={a.available} currency={a.currency} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            ) : null}
            <h2>
              {s.events.length} event{s.events.length === 1 ? '' : 's'}
              {s.truncated ? ' (the first ones; more exist)' : ''}
            </h2>
            <ol class="timeline" aria-label="Events in order">
              {s.events.map(({ event, data, postings, stripeObjects }) => (
                <li key={event.eventId}>
                  <div class="head">
                    <span class="type">{event.eventType}</span>
                    <EventSummary event={event} />
                  </div>
                  <div class="meta">
                    <EventLink eventId={event.eventId} label="causes" />
                    {event.entryId ? (
                      <>
                        {' · '}
                        <EntryLink entryId={event.entryId} label="journal entry" />
                      </>
                    ) : null}
                    {stripeObjects.length > 0 ? <> · Stripe: {stripeObjects.join(', ')}</> : null}
                  </div>
                  {typeof (data.entry as { description?: unknown } | undefined)?.description === 'string' ? (
                    <p class="description">{(data.entry as { description: string }).description}</p>
                  ) : null}
                  {postings.length > 0 ? (
                    <PostingsTable postings={postings} caption={`Postings of ${event.eventType}`} />
                  ) : null}
                  <details>
                    <summary>Event data</summary>
                    <pre class="data">{JSON.stringify(withoutEntry(data), null, 2)}</pre>
                  </details>
                </li>
              ))}
            </ol>
          </>
        )}
      </Async>
    </section>
  );
}

function withoutEntry(data: Record<string, unknown>): Record<string, unknown> {
  const { entry: _entry, ...rest } = data;
  return rest;
}
