import { useEffect, useState } from 'preact/hooks';

/**
 * Routes live in the URL fragment (`#/accounts/student:s1:wallet`), so every page is a link that can
 * be bookmarked or shared with a colleague (who signs in with their own token), and the server serves
 * one page for all of them.
 */
export interface Route {
  /** Decoded path segments after `#/`. */
  segments: string[];
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const text = hash.replace(/^#\/?/, '');
  const [path = '', search = ''] = text.split('?', 2);
  const segments = path
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { segments, params: new URLSearchParams(search) };
}

/** `href('accounts', 'student:s1:wallet')` -> `#/accounts/student%3As1%3Awallet`. */
export function href(...parts: Array<string | Record<string, string | undefined>>): string {
  const segments: string[] = [];
  let search = '';
  for (const part of parts) {
    if (typeof part === 'string') segments.push(encodeURIComponent(part));
    else {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(part)) if (v !== undefined && v !== '') params.set(k, v);
      const text = params.toString();
      if (text) search = `?${text}`;
    }
  }
  return `#/${segments.join('/')}${search}`;
}

export function navigate(to: string): void {
  if (window.location.hash !== to) window.location.hash = to;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
