import { isIP } from 'node:net';
import { Agent, request, errors as undiciErrors } from 'undici';
import {
  AddressNotAllowedError,
  type AddressPolicy,
  guardedLookup,
  hostOf,
  type Resolver,
  systemResolver,
  UnresolvableHostError,
} from './addressPolicy.js';

/**
 * The one HTTP client of outbound webhooks (undici). Bounded everywhere: the request body (checked by
 * the caller: payloads are small by construction), the connect and overall timeouts, and the response
 * (only its first bytes are read, then the connection is dropped). Redirects are never followed: a 3xx
 * is a failed attempt, so a redirect can never lead a delivery to an address the policy refuses. Every
 * connection goes through the address policy on the address actually connected to.
 */
export type AttemptOutcome =
  | 'succeeded'
  | 'http_error'
  | 'redirect'
  | 'timeout'
  | 'network_error'
  | 'address_not_allowed';

export const ATTEMPT_OUTCOMES: readonly AttemptOutcome[] = [
  'succeeded',
  'http_error',
  'redirect',
  'timeout',
  'network_error',
  'address_not_allowed',
];

export interface SendResult {
  outcome: AttemptOutcome;
  statusCode: number | null;
  latencyMs: number;
  /** Why it failed, for the delivery log (never a secret: no headers are echoed). */
  error: string | null;
  /** The first bytes of the response body, as text. */
  responseExcerpt: string | null;
}

export interface WebhookSender {
  send(request: { url: string; body: string; headers: Record<string, string> }): Promise<SendResult>;
  close(): Promise<void>;
}

export interface HttpSenderOptions {
  policy: AddressPolicy;
  resolver?: Resolver;
  /** Whole attempt: connect, send, response headers and the excerpt. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** Bytes of the response body kept for the log; the rest is not read. */
  responseExcerptBytes?: number;
  /** Bound on the request body. */
  maxBodyBytes?: number;
  now?: () => number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const MAX_WEBHOOK_BODY_BYTES = 64 * 1024;
const USER_AGENT = 'WeMaster-Ledger-Webhooks/1';

export function createHttpSender(options: HttpSenderOptions): WebhookSender {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const excerptBytes = options.responseExcerptBytes ?? 1_024;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_WEBHOOK_BODY_BYTES;
  const now = options.now ?? (() => performance.now());
  const resolver = options.resolver ?? systemResolver;
  const agent = new Agent({
    connect: {
      timeout: options.connectTimeoutMs ?? Math.min(5_000, timeoutMs),
      lookup: guardedLookup(options.policy, resolver),
    },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connections: 16,
    pipelining: 1,
    // Responses larger than this are cut off by undici itself (only the excerpt is read anyway).
    maxResponseSize: 1024 * 1024,
  });

  return {
    async send({ url, body, headers }) {
      const started = now();
      const elapsed = () => Math.max(0, Math.round(now() - started));
      if (Buffer.byteLength(body) > maxBodyBytes) {
        throw new Error(`webhook body of ${Buffer.byteLength(body)} bytes is over ${maxBodyBytes}`);
      }
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return failed('network_error', 'invalid URL', elapsed());
      }
      // net.connect does not call the lookup for an address literal: check it here.
      const host = hostOf(target);
      if (isIP(host)) {
        const reason = options.policy.refusal(host);
        if (reason) return failed('address_not_allowed', `${host}: ${reason}`, elapsed());
      }
      try {
        const response = await request(target, {
          method: 'POST',
          dispatcher: agent,
          headers: {
            ...headers,
            'content-type': 'application/json',
            'user-agent': USER_AGENT,
          },
          body,
          maxRedirections: 0,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const excerpt = await readExcerpt(response.body, excerptBytes);
        const statusCode = response.statusCode;
        const latencyMs = elapsed();
        if (statusCode >= 200 && statusCode < 300) {
          return { outcome: 'succeeded', statusCode, latencyMs, error: null, responseExcerpt: excerpt };
        }
        if (statusCode >= 300 && statusCode < 400) {
          return {
            outcome: 'redirect',
            statusCode,
            latencyMs,
            error: 'redirects are not followed: register the final URL',
            responseExcerpt: excerpt,
          };
        }
        return {
          outcome: 'http_error',
          statusCode,
          latencyMs,
          error: `HTTP ${statusCode}`,
          responseExcerpt: excerpt,
        };
      } catch (error) {
        return failed(classify(error), describe(error), elapsed());
      }
    },
    close: () => agent.close(),
  };
}

function failed(outcome: AttemptOutcome, error: string, latencyMs: number): SendResult {
  return { outcome, statusCode: null, latencyMs, error: error.slice(0, 500), responseExcerpt: null };
}

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current && chain.length < 5) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

function classify(error: unknown): AttemptOutcome {
  const chain = causeChain(error);
  if (chain.some((e) => e instanceof AddressNotAllowedError)) return 'address_not_allowed';
  if (chain.some((e) => e instanceof UnresolvableHostError)) return 'network_error';
  if (
    chain.some(
      (e) =>
        e instanceof undiciErrors.HeadersTimeoutError ||
        e instanceof undiciErrors.BodyTimeoutError ||
        e instanceof undiciErrors.ConnectTimeoutError ||
        (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')),
    )
  ) {
    return 'timeout';
  }
  return 'network_error';
}

function describe(error: unknown): string {
  const chain = causeChain(error);
  const specific = chain.find(
    (e) => e instanceof AddressNotAllowedError || e instanceof UnresolvableHostError,
  );
  const e = (specific ?? chain[chain.length - 1] ?? error) as { message?: string; code?: string };
  const code = typeof e.code === 'string' ? `${e.code}: ` : '';
  return `${code}${e.message ?? String(error)}`;
}

async function readExcerpt(
  body: AsyncIterable<Buffer> & { destroy(): void },
  maxBytes: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= maxBytes) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
}
