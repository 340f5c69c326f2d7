/**
 * The signed-in finance admin's bearer token. Kept in this tab's sessionStorage (gone when the tab
 * closes; never localStorage, never a cookie) and sent as `Authorization: Bearer`. The start banner's
 * sign-in link carries it in the URL fragment (`#token=…`), which browsers never send to a server; the
 * page moves it into the session and strips it from the address bar and history at once.
 */
const KEY = 'wemaster-console-token';
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface Principal {
  sub: string;
  tenant: string;
  roles: string[];
  /** Expiry, epoch seconds. */
  exp: number;
}

/** Reads the token out of a `#token=…` fragment, if there is one, and removes it from the URL. */
export function takeTokenFromFragment(): boolean {
  const match = /^#token=([^&]+)(?:&next=(.*))?$/.exec(window.location.hash);
  if (!match) return false;
  const token = decodeURIComponent(match[1]!);
  const next = match[2] ? decodeURIComponent(match[2]) : '/';
  history.replaceState(null, '', `${window.location.pathname}${window.location.search}#${next}`);
  return signIn(token) !== null;
}

/** Stores a token if it looks like a JWT that has not expired; returns its claims. */
export function signIn(token: string): Principal | null {
  const trimmed = token.trim().replace(/^Bearer\s+/i, '');
  const principal = decode(trimmed);
  if (!principal) return null;
  sessionStorage.setItem(KEY, trimmed);
  return principal;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}

export function currentToken(): string | null {
  const token = sessionStorage.getItem(KEY);
  if (!token) return null;
  const principal = decode(token);
  if (!principal || principal.exp * 1000 <= Date.now()) {
    signOut();
    return null;
  }
  return token;
}

export function currentPrincipal(): Principal | null {
  const token = currentToken();
  return token ? decode(token) : null;
}

/** The token's claims, for display only: the server verifies the signature on every request. */
function decode(token: string): Principal | null {
  if (!JWT.test(token)) return null;
  try {
    const part = token.split('.')[1]!.replaceAll('-', '+').replaceAll('_', '/');
    const claims = JSON.parse(atob(part)) as Record<string, unknown>;
    const { sub, tenant, roles, exp } = claims;
    if (typeof sub !== 'string' || typeof tenant !== 'string' || typeof exp !== 'number') return null;
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) return null;
    return { sub, tenant, roles: roles as string[], exp };
  } catch {
    return null;
  }
}
