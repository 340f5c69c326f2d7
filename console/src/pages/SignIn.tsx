import { useState } from 'preact/hooks';
import { signIn } from '../session';

export function SignIn({ onSignedIn, notice }: { onSignedIn: () => void; notice?: string }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <main id="main" class="sign-in">
      <h1>Finance console</h1>
      <p>Sign in with a bearer token of a finance admin or tenant admin of your tenant.</p>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (signIn(token)) onSignedIn();
          else setError('That is not a valid, unexpired token.');
        }}
      >
        <label for="token">Bearer token</label>
        <textarea
          id="token"
          name="token"
          rows={4}
          required
          spellcheck={false}
          autocomplete="off"
          value={token}
          aria-invalid={error ? 'true' : undefined}
          aria-describedby={error ? 'token-error token-help' : 'token-help'}
          onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)}
        />
        <p id="token-help" class="help">
          Development: <code>npm run cli -- token --tenant acme --sub fin_1 --role finance_admin</code>. The
          token stays in this tab only and is forgotten when it closes.
        </p>
        {error ? (
          <p id="token-error" class="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
