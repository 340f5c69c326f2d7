import { useState } from 'preact/hooks';
import { api, apiBlob, query } from '../api';
import { Async, Badge, DateTime, EventLink, Money, PageTitle, TableWrap } from '../components/ui';
import { problemText, useLoad } from '../hooks';
import { href, navigate, type Route } from '../router';
import type { DocumentDetail, DocumentList } from '../types';

/**
 * Receipts, invoices and credit notes (docs/documents.md), found the way a payments dashboard finds
 * them: by number (or its start), kind, series, owner, what they are about and when they were issued;
 * every filter is in the URL, so a filtered list is a link. The PDF is fetched with the session's
 * token (a plain link could not send it) and opened or saved from memory.
 */
const KINDS = ['', 'receipt', 'refund_receipt', 'invoice', 'credit_note'] as const;
const KIND_LABEL: Record<string, string> = {
  receipt: 'Receipt',
  refund_receipt: 'Refund receipt',
  invoice: 'Invoice',
  credit_note: 'Credit note',
};
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const FILTERS = ['number', 'kind', 'series', 'ownerKind', 'ownerId', 'subject', 'from', 'to'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

function filtersOf(route: Route): Filters {
  const f = {} as Filters;
  for (const key of FILTERS) f[key] = route.params.get(key) ?? '';
  if (f.ownerKind === '') f.ownerKind = 'tutor';
  return f;
}

/** The API's query for the filters (days are UTC, the end day included). */
function apiQuery(f: Filters, cursor: string | undefined): string {
  const nextDay = (day: string) => new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString();
  return query({
    number: f.number.trim().toUpperCase() || undefined,
    kind: f.kind || undefined,
    series: f.series.trim() || undefined,
    owner: f.ownerId.trim() ? `${f.ownerKind}:${f.ownerId.trim()}` : undefined,
    subject: f.subject.trim() || undefined,
    from: DAY.test(f.from) ? `${f.from}T00:00:00.000Z` : undefined,
    to: DAY.test(f.to) ? nextDay(f.to) : undefined,
    cursor,
    limit: 50,
  });
}

/** Fetches a document's PDF and opens it in a new tab or saves it. */
async function pdfAction(documentId: string, number: string, mode: 'open' | 'download'): Promise<void> {
  const blob = await apiBlob(`/v1/documents/${encodeURIComponent(documentId)}.pdf`, 'application/pdf');
  const url = URL.createObjectURL(blob);
  if (mode === 'open') {
    window.open(url, '_blank', 'noopener');
  } else {
    const a = document.createElement('a');
    a.href = url;
    a.download = `${number}.pdf`;
    document.body.append(a);
    a.click();
    a.remove();
  }
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function PdfButtons({ documentId, number }: { documentId: string; number: string }) {
  const [error, setError] = useState<string | null>(null);
  const run = (mode: 'open' | 'download') => async () => {
    setError(null);
    try {
      await pdfAction(documentId, number, mode);
    } catch (e) {
      setError(problemText(e as Error));
    }
  };
  return (
    <span class="pdf-actions">
      <button type="button" class="secondary" onClick={run('open')} aria-label={`Open PDF of ${number}`}>
        Open PDF
      </button>{' '}
      <button
        type="button"
        class="secondary"
        onClick={run('download')}
        aria-label={`Download PDF of ${number}`}
      >
        Download
      </button>
      {error ? (
        <span class="error" role="alert">
          {' '}
          {error}
        </span>
      ) : null}
    </span>
  );
}

export function DocumentsPage({ route }: { route: Route }) {
  const applied = filtersOf(route);
  const [form, setForm] = useState<Filters>(applied);
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors.at(-1);
  const key = FILTERS.map((k) => applied[k]).join('\u0000');
  const page = useLoad(
    (signal) => api<DocumentList>(`/v1/documents${apiQuery(applied, cursor)}`, { signal }),
    [key, cursor],
  );
  const input = (name: keyof Filters) => (e: Event) =>
    setForm({ ...form, [name]: (e.target as HTMLInputElement | HTMLSelectElement).value });
  const datesValid = (!form.from || DAY.test(form.from)) && (!form.to || DAY.test(form.to));
  return (
    <section>
      <PageTitle sub="Receipts, invoices and credit notes as issued, newest first, with their PDFs.">
        Documents
      </PageTitle>
      <form
        class="fields"
        aria-label="Filter documents"
        onSubmit={(e) => {
          e.preventDefault();
          setCursors([]);
          const params: Record<string, string> = {};
          for (const k of FILTERS) params[k] = form[k].trim();
          if (!params.ownerId) params.ownerKind = '';
          navigate(href('documents', params));
        }}
      >
        <div class="field">
          <label for="doc-number">Number</label>
          <input
            id="doc-number"
            type="search"
            value={form.number}
            placeholder="INV-2026-000001"
            onInput={input('number')}
          />
        </div>
        <div class="field">
          <label for="doc-kind">Type</label>
          <select id="doc-kind" value={form.kind} onChange={input('kind')}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k ? KIND_LABEL[k] : 'any'}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="doc-series">Series</label>
          <input
            id="doc-series"
            value={form.series}
            size={14}
            placeholder="invoice-2026"
            onInput={input('series')}
          />
        </div>
        <div class="field">
          <label for="doc-owner-kind">Owner is a</label>
          <select id="doc-owner-kind" value={form.ownerKind} onChange={input('ownerKind')}>
            <option value="tutor">tutor</option>
            <option value="student">student</option>
          </select>
        </div>
        <div class="field">
          <label for="doc-owner">Owner id</label>
          <input id="doc-owner" value={form.ownerId} size={12} placeholder="u1" onInput={input('ownerId')} />
        </div>
        <div class="field">
          <label for="doc-subject">About</label>
          <input
            id="doc-subject"
            value={form.subject}
            size={16}
            placeholder="booking:b1"
            onInput={input('subject')}
          />
        </div>
        <div class="field">
          <label for="doc-from">Issued from (UTC)</label>
          <input id="doc-from" type="date" value={form.from} onInput={input('from')} />
        </div>
        <div class="field">
          <label for="doc-to">Issued until (UTC, included)</label>
          <input id="doc-to" type="date" value={form.to} onInput={input('to')} />
        </div>
        <button type="submit" disabled={!datesValid}>
          Find
        </button>
      </form>
      <Async loaded={page} what="the documents">
        {(p) => (
          <>
            <TableWrap label="Documents">
              <table>
                <caption>Documents, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Number</th>
                    <th scope="col">Type</th>
                    <th scope="col">Owner</th>
                    <th scope="col">About</th>
                    <th scope="col">Issued</th>
                    <th scope="col" class="num">
                      Total
                    </th>
                    <th scope="col">PDF</th>
                  </tr>
                </thead>
                <tbody>
                  {p.items.length === 0 ? (
                    <tr>
                      <td colSpan={7} class="empty">
                        No documents match.
                      </td>
                    </tr>
                  ) : null}
                  {p.items.map((d) => (
                    <tr key={d.documentId}>
                      <td data-label="Number">
                        <a class="mono nowrap" href={href('documents', d.documentId)}>
                          {d.number}
                        </a>
                      </td>
                      <td data-label="Type">
                        <Badge>{KIND_LABEL[d.kind] ?? d.kind}</Badge>
                      </td>
                      <td data-label="Owner" class="mono">
                        {d.owner.kind}:{d.owner.id}
                      </td>
                      <td data-label="About" class="mono">
                        {d.subject.kind}:{d.subject.id}
                      </td>
                      <td data-label="Issued">
                        <DateTime iso={d.issuedAt} />
                      </td>
                      <td class="num" data-label="Total">
                        <Money amount={d.total} currency={d.currency} />
                      </td>
                      <td data-label="PDF">
                        <PdfButtons documentId={d.documentId} number={d.number} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
            <nav class="pager" aria-label="Document pages">
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

export function DocumentPage({ documentId }: { documentId: string }) {
  const doc = useLoad(
    (signal) => api<DocumentDetail>(`/v1/documents/${encodeURIComponent(documentId)}`, { signal }),
    [documentId],
  );
  return (
    <Async loaded={doc} what="the document">
      {(d) => (
        <section>
          <PageTitle sub={`${d.issuer.name} to ${d.recipient.name}`}>
            {KIND_LABEL[d.kind] ?? d.kind} <span class="mono">{d.number}</span>
          </PageTitle>
          <PdfButtons documentId={d.documentId} number={d.number} />
          <TableWrap label="Lines">
            <table>
              <caption>Lines</caption>
              <thead>
                <tr>
                  <th scope="col">Description</th>
                  <th scope="col" class="num">
                    Net
                  </th>
                  <th scope="col" class="num">
                    Tax
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.lines.map((l, i) => (
                  <tr key={i}>
                    <td data-label="Description">{l.description}</td>
                    <td class="num" data-label="Net">
                      <Money amount={l.amount} currency={d.currency} />
                    </td>
                    <td class="num" data-label="Tax">
                      <Money amount={l.taxAmount} currency={d.currency} />
                    </td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row">Subtotal</th>
                  <td class="num" colSpan={2}>
                    <Money amount={d.subtotal} currency={d.currency} />
                  </td>
                </tr>
                <tr>
                  <th scope="row">
                    Tax
                    {d.taxRate
                      ? ` (${d.taxRate.rateBps / 100}%${d.taxRate.inclusive ? ', included' : ''})`
                      : ''}
                  </th>
                  <td class="num" colSpan={2}>
                    <Money amount={d.tax} currency={d.currency} />
                  </td>
                </tr>
                <tr>
                  <th scope="row">Total</th>
                  <td class="num" colSpan={2} data-testid="document-total">
                    <Money amount={d.total} currency={d.currency} />
                  </td>
                </tr>
              </tfoot>
            </table>
          </TableWrap>
          <dl class="facts">
            <dt>Issued</dt>
            <dd>
              <DateTime iso={d.issuedAt} />
            </dd>
            <dt>Series</dt>
            <dd>
              <a class="mono" href={href('documents', { series: d.seriesId })}>
                {d.seriesId}
              </a>{' '}
              number {d.sequence}
            </dd>
            <dt>Owner</dt>
            <dd>
              <a
                class="mono"
                href={href('documents', { ownerKind: d.owner.kind, ownerId: d.owner.id })}
                title="every document of this owner"
              >
                {d.owner.kind}:{d.owner.id}
              </a>
            </dd>
            <dt>About</dt>
            <dd>
              <a class="mono" href={href('documents', { subject: `${d.subject.kind}:${d.subject.id}` })}>
                {d.subject.kind}:{d.subject.id}
              </a>
            </dd>
            {d.references ? (
              <>
                <dt>Corrects</dt>
                <dd>
                  <a class="mono" href={href('documents', d.references.documentId)}>
                    {d.references.number}
                  </a>
                </dd>
              </>
            ) : null}
            <dt>Paid / settled</dt>
            <dd>{d.settlement}</dd>
            <dt>Caused by</dt>
            <dd>
              {d.source.eventType} ·{' '}
              {d.source.eventType === 'CommissionMonthClosed' ? (
                <span class="mono" title="the month's id: no single event">
                  {d.source.eventId}
                </span>
              ) : (
                <EventLink eventId={d.source.eventId} label={d.source.eventId} />
              )}
            </dd>
            <dt>PDF SHA-256</dt>
            <dd class="mono">{d.pdfSha256}</dd>
          </dl>
        </section>
      )}
    </Async>
  );
}
