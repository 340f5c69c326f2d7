import { currentToken, signOut } from './session';

/** An RFC 9457 problem answered by the API, with its stable code. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiProblem';
  }
}

/** Listeners told when the API refused the token (expired, revoked): the app shows the sign-in page. */
const unauthenticated = new Set<() => void>();
export function onUnauthenticated(listener: () => void): () => void {
  unauthenticated.add(listener);
  return () => unauthenticated.delete(listener);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT';
  body?: unknown;
  idempotencyKey?: string;
  signal?: AbortSignal;
}

async function send(path: string, accept: string, options: RequestOptions): Promise<Response> {
  const token = currentToken();
  const headers: Record<string, string> = { accept };
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (response.ok) return response;
  let code = 'http_error';
  let message = `${response.status} ${response.statusText}`;
  try {
    const problem = (await response.json()) as { code?: string; detail?: string; title?: string };
    code = problem.code ?? code;
    message = problem.detail ?? problem.title ?? message;
  } catch {
    // Not a problem document: keep the status line.
  }
  if (response.status === 401) {
    signOut();
    for (const listener of unauthenticated) listener();
  }
  throw new ApiProblem(response.status, code, message);
}

/** JSON from the /v1 API with the session's bearer token. */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await send(path, 'application/json', options);
  return (await response.json()) as T;
}

/** A CSV export, as text (the same request a script would make). */
export async function apiCsv(path: string, options: RequestOptions = {}): Promise<string> {
  return (await send(path, 'text/csv', options)).text();
}

/** A binary answer (a document's PDF), as a Blob of its content type. */
export async function apiBlob(path: string, accept: string, options: RequestOptions = {}): Promise<Blob> {
  return (await send(path, accept, options)).blob();
}

/** Query string from defined values only. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A fresh Idempotency-Key for one user action (kept by the caller across its retries). */
export function newIdempotencyKey(prefix: string): string {
  return `console-${prefix}-${crypto.randomUUID()}`;
}
