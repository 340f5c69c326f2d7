import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { onUnauthenticated } from './api';
import { Layout } from './components/Layout';
import { AccountPage } from './pages/Account';
import { AccountsPage } from './pages/Accounts';
import { AdjustmentsPage } from './pages/Adjustments';
import { AnalyticsPage } from './pages/Analytics';
import { DocumentPage, DocumentsPage } from './pages/Documents';
import { EntryPage, EventPage } from './pages/Entry';
import { ExportsPage } from './pages/Exports';
import { FinancePage } from './pages/Finance';
import { SearchPage } from './pages/Search';
import { SignIn } from './pages/SignIn';
import { StoryPage } from './pages/Story';
import { type Route, useRoute } from './router';
import { currentPrincipal, type Principal, takeTokenFromFragment } from './session';

function Page({ route, principal }: { route: Route; principal: Principal }) {
  const [first = 'search', second, third] = route.segments;
  switch (first) {
    case 'search':
      return <SearchPage route={route} />;
    case 'accounts':
      return second ? (
        <AccountPage key={second} route={route} account={second} />
      ) : (
        <AccountsPage route={route} />
      );
    case 'entries':
      if (second) return <EntryPage entryId={second} />;
      break;
    case 'events':
      if (second) return <EventPage eventId={second} />;
      break;
    case 'story':
      if (second && third) return <StoryPage kind={second} id={third} />;
      break;
    case 'finance':
      return <FinancePage />;
    case 'analytics':
      return <AnalyticsPage route={route} />;
    case 'exports':
      return <ExportsPage />;
    case 'documents':
      return second ? <DocumentPage key={second} documentId={second} /> : <DocumentsPage route={route} />;
    case 'adjustments':
      return <AdjustmentsPage principal={principal} />;
  }
  return (
    <section>
      <h1 tabIndex={-1}>Not found</h1>
      <p>
        There is no page <code>{route.segments.join('/')}</code> in the console, {principal.sub}.
      </p>
    </section>
  );
}

function App() {
  const [principal, setPrincipal] = useState<Principal | null>(() => {
    takeTokenFromFragment();
    return currentPrincipal();
  });
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const route = useRoute();

  useEffect(
    () =>
      onUnauthenticated(() => {
        setNotice('Your session ended (the token expired or was refused). Sign in again.');
        setPrincipal(null);
      }),
    [],
  );
  // A sign-in link opened in a tab that is already signed in replaces the session's token.
  useEffect(() => {
    const onHash = () => {
      if (takeTokenFromFragment()) setPrincipal(currentPrincipal());
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  // Move focus to the new page's heading, so keyboard and screen reader users land on it.
  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus({ preventScroll: false });
  }, [route]);

  if (!principal) {
    return (
      <SignIn
        {...(notice ? { notice } : {})}
        onSignedIn={() => {
          setNotice(undefined);
          setPrincipal(currentPrincipal());
        }}
      />
    );
  }
  return (
    <Layout principal={principal} route={route} onSignOut={() => setPrincipal(null)}>
      <Page route={route} principal={principal} />
    </Layout>
  );
}

render(<App />, document.getElementById('app')!);
