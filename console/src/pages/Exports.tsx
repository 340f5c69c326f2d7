import { useState } from 'preact/hooks';
import { query } from '../api';
import { DownloadCsv } from '../components/DownloadCsv';
import { PageTitle } from '../components/ui';

function monthStart(offset: number): string {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1)).toISOString().slice(0, 10);
}

export function ExportsPage() {
  const [from, setFrom] = useState(monthStart(0));
  const [to, setTo] = useState(monthStart(1));
  const valid = /^\d{4}-\d{2}-\d{2}$/.test(from) && /^\d{4}-\d{2}-\d{2}$/.test(to) && from < to;
  return (
    <section>
      <PageTitle sub="CSV files for an accountant: the same rows the API returns, streamed.">
        Exports
      </PageTitle>
      <h2>Journal of a period</h2>
      <p class="help">
        One row per posting of every journal entry whose time falls in the period (UTC, the end day excluded),
        in time order. Amounts are integers in minor units with their currency.
      </p>
      <div class="fields">
        <div class="field">
          <label for="from">From (UTC)</label>
          <input
            id="from"
            type="date"
            value={from}
            onInput={(e) => setFrom((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="to">To, excluded (UTC)</label>
          <input
            id="to"
            type="date"
            value={to}
            onInput={(e) => setTo((e.target as HTMLInputElement).value)}
          />
        </div>
      </div>
      {valid ? (
        <DownloadCsv
          path={`/v1/journal.csv${query({ from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z` })}`}
          filename={`journal-${from}-${to}.csv`}
          label="Export journal (CSV)"
        />
      ) : (
        <p class="error" role="alert">
          Choose a start day before the end day.
        </p>
      )}
      <h2>Statement of an account</h2>
      <p>Open the account (from Search or Accounts) and use “Export statement (CSV)”.</p>
    </section>
  );
}
