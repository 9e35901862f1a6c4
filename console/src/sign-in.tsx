import { useState } from 'preact/hooks';
import { call, type Session } from './api';
import { ErrorText, useAction } from './ui';

/**
 * Sign-in with a personal access token. The token goes to Pier once, in the
 * body of this request, and is exchanged for an HttpOnly session cookie; the
 * page never stores it.
 */
export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState('');
  const submit = useAction();
  return (
    <main id="main" class="sign-in">
      <h1 tabIndex={-1}>Sign in to Pier</h1>
      <form
        onSubmit={submit.onSubmit(async () => {
          onSignedIn(await call<Session>('POST', '/console/session', { token }));
        })}
      >
        <label for="token">Personal access token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          required
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          aria-describedby="token-help"
        />
        <p id="token-help" class="muted">
          An admin's token is printed by <code>pier status -o env</code> (DATABRICKS_TOKEN); anyone can make
          one with <code>POST /api/2.0/token/create</code>. It is exchanged for a session and not kept by the
          page.
        </p>
        <ErrorText error={submit.error} />
        <button type="submit" class="primary" disabled={submit.busy}>
          {submit.busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
