import type { ComponentChildren } from 'preact';
import { href, type Route } from '../router';
import { type Principal, signOut } from '../session';

const NAV: Array<{ key: string; label: string }> = [
  { key: 'search', label: 'Search' },
  { key: 'accounts', label: 'Accounts' },
  { key: 'finance', label: 'Trial balance' },
  { key: 'reconciliation', label: 'Reconciliation' },
  { key: 'adjustments', label: 'Adjustments' },
  { key: 'analytics', label: 'Analytics' },
  { key: 'documents', label: 'Documents' },
  { key: 'exports', label: 'Exports' },
];

export function Layout({
  principal,
  route,
  onSignOut,
  children,
}: {
  principal: Principal;
  route: Route;
  onSignOut: () => void;
  children: ComponentChildren;
}) {
  const current = route.segments[0] ?? 'search';
  return (
    <>
      {/* A button, not an anchor: the fragment holds the route, so `#main` would navigate away. */}
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href={href('search')}>
          WeMaster Ledger <span>finance console</span>
        </a>
        <nav aria-label="Console">
          <ul>
            {NAV.map((n) => (
              <li key={n.key}>
                <a href={href(n.key)} aria-current={current === n.key ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={principal.roles.join(', ')}>
            {principal.sub} · <strong>{principal.tenant}</strong>
          </span>
          <button
            type="button"
            class="link"
            onClick={() => {
              signOut();
              onSignOut();
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
