import { sleep } from './proc.js';
import type { Recorder, RequestKind } from './recorder.js';
import type { Rng } from './rng.js';

export interface HttpRequest {
  kind: RequestKind;
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  token?: string;
  /** JSON-encoded unless `rawBody` is given. */
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  /** Label for the summary; defaults to method + path with ids replaced. */
  label?: string;
  accept: (status: number) => boolean;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  /** Parsed JSON body, or null (empty/not JSON). */
  json: unknown;
  text: string;
  headers: Headers;
  code: string | null;
  latencyMs: number;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
const BODY_READ_LIMIT = 1_000_000;

/**
 * The soak's HTTP client: every attempt is timed and recorded; commands are retried with the same
 * Idempotency-Key and body on ambiguous outcomes (network error, 5xx, 409 idempotency_key_in_use, 429),
 * as a careful client would, against whichever app process is up.
 */
export class Http {
  constructor(
    private readonly recorder: Recorder,
    private readonly targets: () => string[],
  ) {}

  async once(req: HttpRequest, rng: Rng): Promise<HttpResponse> {
    const live = this.targets();
    const base = live.length > 0 ? rng.pick(live) : null;
    const startMs = Date.now();
    const label = req.label ?? labelOf(req.method, req.path);
    if (!base) {
      this.recorder.attempt({
        kind: req.kind,
        label,
        startMs,
        endMs: startMs,
        status: 0,
        code: 'no_app',
        accept: req.accept,
      });
      return { status: 0, json: null, text: '', headers: new Headers(), code: 'no_app', latencyMs: 0 };
    }
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    if (req.token) headers.authorization = `Bearer ${req.token}`;
    if (req.idempotencyKey) headers['idempotency-key'] = req.idempotencyKey;
    let body: string | undefined;
    if (req.rawBody !== undefined) body = req.rawBody;
    else if (req.body !== undefined) body = JSON.stringify(req.body);
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    try {
      const response = await fetch(`${base}${req.path}`, {
        method: req.method,
        headers,
        body,
        signal: AbortSignal.timeout(req.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
      const text = (await response.text()).slice(0, BODY_READ_LIMIT);
      const endMs = Date.now();
      let json: unknown = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = null;
      }
      const code = problemCode(json);
      this.recorder.attempt({
        kind: req.kind,
        label,
        startMs,
        endMs,
        status: response.status,
        code,
        accept: req.accept,
      });
      return {
        status: response.status,
        json,
        text,
        headers: response.headers,
        code,
        latencyMs: endMs - startMs,
      };
    } catch (error) {
      const endMs = Date.now();
      const code = networkCode(error);
      this.recorder.attempt({ kind: req.kind, label, startMs, endMs, status: 0, code, accept: req.accept });
      return { status: 0, json: null, text: '', headers: new Headers(), code, latencyMs: endMs - startMs };
    }
  }

  /**
   * Sends until the answer is definitive (2xx or a 4xx other than 429/409-in-use), at most `maxAttempts`
   * times and `budgetMs` in total; returns the last response (status 0/5xx = still ambiguous).
   */
  async command(
    req: HttpRequest,
    rng: Rng,
    options: { maxAttempts: number; budgetMs: number; stop?: () => boolean },
  ): Promise<HttpResponse & { attempts: number; history: string[] }> {
    const deadline = Date.now() + options.budgetMs;
    let attempts = 0;
    let last: HttpResponse;
    const history: string[] = [];
    for (;;) {
      attempts++;
      last = await this.once(req, rng);
      history.push(
        last.status === 0 ? (last.code ?? 'network') : `${last.status}${last.code ? ` ${last.code}` : ''}`,
      );
      if (!isAmbiguous(last)) return { ...last, attempts, history };
      if (attempts >= options.maxAttempts || Date.now() >= deadline || options.stop?.()) {
        return { ...last, attempts, history };
      }
      const retryAfterS = Number(last.headers.get('retry-after'));
      const backoffMs = Math.min(4_000, 100 * 2 ** Math.min(attempts, 6)) * (0.5 + rng.next());
      const waitMs =
        Number.isFinite(retryAfterS) && retryAfterS > 0 ? Math.min(retryAfterS * 1000, 5_000) : backoffMs;
      await sleep(Math.max(0, Math.min(waitMs, deadline - Date.now())));
    }
  }
}

export function isAmbiguous(r: { status: number; code: string | null }): boolean {
  return (
    r.status === 0 ||
    r.status >= 500 ||
    r.status === 429 ||
    (r.status === 409 && r.code === 'idempotency_key_in_use')
  );
}

export function problemCode(json: unknown): string | null {
  if (json && typeof json === 'object' && 'code' in json) {
    const code = (json as { code: unknown }).code;
    if (typeof code === 'string' && code.length <= 64) return code;
  }
  return null;
}

function networkCode(error: unknown): string {
  const e = error as { name?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return e?.cause?.code?.toLowerCase() ?? 'error';
}

/** Route label with ids elided, so outcome counts group by route. */
export function labelOf(method: string, path: string): string {
  const pathOnly = path.split('?')[0] ?? path;
  const parts = pathOnly.split('/').map((segment, i) => {
    if (i < 2) return segment;
    if (
      /^(v1|wallets|top-ups|transactions|bookings|complete|cancel|refunds|tutors|earnings|payouts|payout-account|streams|events|accounts|balance|entries|ledger|trial-balance|tenant|settings|webhooks|stripe|adjustments|readyz|healthz)$/.test(
        segment,
      )
    ) {
      return segment;
    }
    return '{id}';
  });
  return `${method} ${parts.join('/')}`;
}
