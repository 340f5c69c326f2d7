import type { ComponentChildren } from 'preact';
import { type Loaded, problemText } from '../hooks';
import { formatDateTime, formatMoney } from '../money';
import { href } from '../router';

export function Money({ amount, currency }: { amount: number; currency: string }) {
  return (
    <span class={`money${amount < 0 ? ' negative' : ''}`} data-minor={amount} data-currency={currency}>
      {formatMoney(amount, currency)}
    </span>
  );
}

export function DateTime({ iso }: { iso: string }) {
  return <time dateTime={iso}>{formatDateTime(iso)}</time>;
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function ErrorBox({ error, what }: { error: Error; what: string }) {
  return (
    <div class="error" role="alert">
      <strong>Could not load {what}.</strong> {problemText(error)}
    </div>
  );
}

/** Renders a load's three states; `children` only once the value is there. */
export function Async<T>({
  loaded,
  what,
  children,
}: {
  loaded: Loaded<T>;
  what: string;
  children: (value: T) => ComponentChildren;
}) {
  if (loaded.state === 'loading') return <Loading what={what} />;
  if (loaded.state === 'error') return <ErrorBox error={loaded.error} what={what} />;
  return <>{children(loaded.value)}</>;
}

export function AccountLink({ account, currency }: { account: string; currency?: string }) {
  return (
    <a class="mono" href={href('accounts', account, currency ? { currency } : {})}>
      {account}
    </a>
  );
}

export function EntryLink({ entryId, label }: { entryId: string; label?: string }) {
  return (
    <a class="mono" href={href('entries', entryId)} title={`journal entry ${entryId}`}>
      {label ?? shortId(entryId)}
    </a>
  );
}

export function EventLink({ eventId, label }: { eventId: string; label?: string }) {
  return (
    <a class="mono" href={href('events', eventId)} title={`event ${eventId}`}>
      {label ?? shortId(eventId)}
    </a>
  );
}

/** First block of a UUID (the full id is in the title and the link). */
export function shortId(id: string): string {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-/.test(id) ? id.slice(0, 8) : id;
}

export function Badge({ children, tone }: { children: ComponentChildren; tone?: 'ok' | 'warn' | 'bad' }) {
  return <span class={`badge${tone ? ` ${tone}` : ''}`}>{children}</span>;
}

export function PageTitle({ children, sub }: { children: ComponentChildren; sub?: ComponentChildren }) {
  return (
    <header class="page-title">
      <h1 tabIndex={-1}>{children}</h1>
      {sub ? <p class="sub">{sub}</p> : null}
    </header>
  );
}

/** A table that scrolls sideways inside itself on a narrow screen instead of breaking the page. */
export function TableWrap({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard.
    <section class="table-wrap" aria-label={label} tabIndex={0}>
      {children}
    </section>
  );
}
