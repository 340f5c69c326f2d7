import type { AuditEvent } from '../types';
import { AccountLink, DateTime, EventLink, Money, shortId, TableWrap } from './ui';

export interface PostingRow {
  line: number;
  account: string;
  side: 'debit' | 'credit';
  effect: 'post' | 'hold' | 'release';
  amount: number;
  currency: string;
}

/** An entry's postings: debit and credit columns, hold/release marked. */
export function PostingsTable({ postings, caption }: { postings: PostingRow[]; caption: string }) {
  return (
    <TableWrap label={caption}>
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Account</th>
            <th scope="col">Effect</th>
            <th scope="col" class="num">
              Debit
            </th>
            <th scope="col" class="num">
              Credit
            </th>
          </tr>
        </thead>
        <tbody>
          {postings.map((p) => (
            <tr key={p.line}>
              <td>
                <AccountLink account={p.account} currency={p.currency} />
              </td>
              <td>{p.effect === 'post' ? 'posted' : p.effect === 'hold' ? 'held' : 'hold released'}</td>
              <td class="num">
                {p.side === 'debit' ? <Money amount={p.amount} currency={p.currency} /> : null}
              </td>
              <td class="num">
                {p.side === 'credit' ? <Money amount={p.amount} currency={p.currency} /> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

/** Who, when, in which stream, caused by what, correlated with what. */
export function EventFacts({ event }: { event: AuditEvent }) {
  return (
    <dl class="facts">
      <dt>When</dt>
      <dd>
        <DateTime iso={event.occurredAt} /> (position {event.position})
      </dd>
      <dt>Actor</dt>
      <dd>
        {event.actor.id} ({event.actor.role})
      </dd>
      <dt>Stream</dt>
      <dd class="mono">{event.streamName}</dd>
      <dt>Event</dt>
      <dd>
        <EventLink eventId={event.eventId} label={event.eventId} />
      </dd>
      <dt>Caused by</dt>
      <dd class="mono">{event.causationId}</dd>
      <dt>Correlation</dt>
      <dd class="mono">{event.correlationId}</dd>
    </dl>
  );
}

export function EventSummary({ event }: { event: AuditEvent }) {
  return (
    <span class="meta">
      <DateTime iso={event.occurredAt} /> · {event.actor.id} ({event.actor.role}) ·{' '}
      <span class="mono">{event.streamName}</span> · caused by{' '}
      <span class="mono" title={event.causationId}>
        {shortId(event.causationId)}
      </span>
    </span>
  );
}
