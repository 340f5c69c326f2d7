import { api } from '../api';
import { EventFacts, PostingsTable } from '../components/EventParts';
import { Async, DateTime, EventLink, PageTitle } from '../components/ui';
import { useLoad } from '../hooks';
import type { AuditEvent, CausalChain, EntryDetail, LedgerEvent } from '../types';

export function EntryPage({ entryId }: { entryId: string }) {
  const entry = useLoad(
    (signal) => api<EntryDetail>(`/v1/entries/${encodeURIComponent(entryId)}`, { signal }),
    [entryId],
  );
  const causes = useLoad(
    (signal) => api<CausalChain>(`/v1/entries/${encodeURIComponent(entryId)}/causes`, { signal }),
    [entryId],
  );
  return (
    <section>
      <PageTitle sub="A journal entry: its balanced postings, who made it and why.">
        Journal entry <span class="mono">{entryId}</span>
      </PageTitle>
      <Async loaded={entry} what="the entry">
        {(e) => (
          <>
            <p class="description">{e.description}</p>
            <PostingsTable postings={e.postings.map((p, line) => ({ ...p, line }))} caption="Postings" />
            <dl class="facts">
              <dt>Event</dt>
              <dd>
                {e.eventType} · <EventLink eventId={e.eventId} label={e.eventId} />
              </dd>
              <dt>When</dt>
              <dd>
                <DateTime iso={e.occurredAt} /> (position {e.position})
              </dd>
              <dt>Actor</dt>
              <dd>
                {e.actor.id} ({e.actor.role})
              </dd>
              <dt>Stream</dt>
              <dd class="mono">{e.streamName}</dd>
              {e.holdId ? (
                <>
                  <dt>Hold</dt>
                  <dd class="mono">{e.holdId}</dd>
                </>
              ) : null}
            </dl>
          </>
        )}
      </Async>
      <Async loaded={causes} what="the causes">
        {(c) => <Causes chain={c} />}
      </Async>
    </section>
  );
}

export function EventPage({ eventId }: { eventId: string }) {
  const event = useLoad(
    (signal) => api<LedgerEvent>(`/v1/events/${encodeURIComponent(eventId)}`, { signal }),
    [eventId],
  );
  const causes = useLoad(
    (signal) => api<CausalChain>(`/v1/events/${encodeURIComponent(eventId)}/causes`, { signal }),
    [eventId],
  );
  return (
    <section>
      <PageTitle sub="One event of the ledger, and the chain of causes back to the request that started it.">
        Event <span class="mono">{eventId}</span>
      </PageTitle>
      <Async loaded={event} what="the event">
        {(e) => (
          <>
            <h2>{e.event.eventType}</h2>
            <EventFacts event={e.event} />
            {e.postings.length > 0 ? <PostingsTable postings={e.postings} caption="Postings" /> : null}
            <details>
              <summary>Event data</summary>
              <pre class="data">{JSON.stringify(e.data, null, 2)}</pre>
            </details>
          </>
        )}
      </Async>
      <Async loaded={causes} what="the causes">
        {(c) => <Causes chain={c} />}
      </Async>
    </section>
  );
}

const ORIGIN: Record<string, string> = {
  request: 'an API request',
  stripe: 'Stripe (a webhook or a payment)',
  scheduler: 'the scheduler (hold expiry, earnings clearing)',
  unknown: 'something outside the ledger',
};

function Causes({ chain }: { chain: CausalChain }) {
  return (
    <section aria-labelledby="causes-title">
      <h2 id="causes-title">Chain of causes</h2>
      <ol class="timeline" aria-label="From this event back to its origin">
        {chain.chain.map((e: AuditEvent, i: number) => (
          <li key={e.eventId}>
            <div class="head">
              <span class="type">{e.eventType}</span>
              <span class="meta">
                {i === 0 ? 'this event' : 'which was caused by'} · <DateTime iso={e.occurredAt} /> ·{' '}
                {e.actor.id} ({e.actor.role}) · <span class="mono">{e.streamName}</span>
              </span>
            </div>
            <EventLink eventId={e.eventId} label={e.eventId} />
          </li>
        ))}
        {chain.origin ? (
          <li>
            <div class="head">
              <span class="type">Started by {ORIGIN[chain.origin.kind]}</span>
            </div>
            <span class="mono">{chain.origin.id}</span>
          </li>
        ) : null}
      </ol>
      {chain.effects.length > 0 ? (
        <>
          <h3>It caused</h3>
          <ul>
            {chain.effects.map((e) => (
              <li key={e.eventId}>
                {e.eventType} in <span class="mono">{e.streamName}</span> · <EventLink eventId={e.eventId} />
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}
