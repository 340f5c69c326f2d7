import { useState } from 'preact/hooks';
import { apiCsv } from '../api';
import { problemText } from '../hooks';

/**
 * Downloads a CSV export with the session's bearer token (a plain link could not send it): fetches the
 * same URL a script would, then saves the text.
 */
export function DownloadCsv({ path, filename, label }: { path: string; filename: string; label: string }) {
  const [state, setState] = useState<{ busy: boolean; error: string | null; rows: number | null }>({
    busy: false,
    error: null,
    rows: null,
  });
  return (
    <p class="download">
      <button
        type="button"
        class="secondary"
        disabled={state.busy}
        onClick={async () => {
          setState({ busy: true, error: null, rows: null });
          try {
            const text = await apiCsv(path);
            const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
            const a = document.createElement('a');
            a.href = url;
            a.download = filename;
            document.body.append(a);
            a.click();
            a.remove();
            setTimeout(() => URL.revokeObjectURL(url), 10_000);
            // Comment lines (the ledger's chain head at the end of an export) are not rows.
            const lines = text
              .trimEnd()
              .split('\n')
              .filter((line) => !line.startsWith('#'));
            setState({ busy: false, error: null, rows: Math.max(0, lines.length - 1) });
          } catch (error) {
            setState({ busy: false, error: problemText(error as Error), rows: null });
          }
        }}
      >
        {state.busy ? 'Exporting…' : label}
      </button>{' '}
      {state.rows !== null ? <span role="status">{state.rows} rows exported.</span> : null}
      {state.error ? (
        <span class="error" role="alert">
          {state.error}
        </span>
      ) : null}
    </p>
  );
}
