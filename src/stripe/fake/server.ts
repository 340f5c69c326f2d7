import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { invariant } from '../../domain/errors.js';
import { type FormObject, FormParseError, parseForm } from './formParser.js';
import {
  FakeStripeState,
  type FakeStripeStateOptions,
  PLATFORM,
  type RequestContext,
  stripeId,
} from './state.js';
import { type FakeBalanceTransaction, FakeStripeError, type StripeErrorBody } from './types.js';
import { WebhookDispatcher, type WebhookTarget } from './webhookDispatcher.js';

/**
 * A project-owned fake Stripe: a real node:http server speaking Stripe's REST API (form-encoded
 * requests, JSON responses, Stripe's error bodies and idempotency rules) that the real `stripe` SDK talks
 * to through its host/port/protocol options. Stateful in memory (FakeStripeState), bounded
 * (maxObjectsPerKind per object kind, maxIdempotencyKeys keys), with fault injection in process and at
 * `/_fake/...` for the soak harness. See src/stripe/fake/README.md.
 */
export interface FakeStripeServerOptions extends Omit<FakeStripeStateOptions, 'onEvent'> {
  webhook?: WebhookTarget;
  webhookMaxAttempts?: number;
  webhookRetryBaseDelayMs?: number;
  /** Idempotency keys remembered (Stripe keeps them 24 h; we keep the newest N). */
  maxIdempotencyKeys?: number;
  /** Payouts settle as paid this long after creation; undefined: they stay pending until settlePayout. */
  autoSettlePayoutsAfterMs?: number;
  /** Largest request body accepted. */
  maxBodyBytes?: number;
}

export type FaultPhase = 'before' | 'after';

interface StoredResponse {
  method: string;
  path: string;
  fingerprint: string;
  status: number;
  body: string;
}

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handle: (match: RegExpExecArray, params: FormObject, ctx: RequestContext) => unknown;
}

export class FakeStripeServer {
  readonly state: FakeStripeState;
  readonly webhooks: WebhookDispatcher;
  private server: Server | undefined;
  private readonly idempotency = new Map<string, StoredResponse>();
  private readonly maxIdempotencyKeys: number;
  private readonly maxBodyBytes: number;
  private readonly autoSettlePayoutsAfterMs: number | undefined;
  private readonly settleTimers = new Set<NodeJS.Timeout>();
  private readonly routes: Route[];
  private failures: Array<{ status: 500 | 429 | 503; phase: FaultPhase }> = [];
  private delays: number[] = [];
  /** Requests seen per "METHOD path" (for tests asserting retries). */
  readonly requestCounts = new Map<string, number>();
  private static readonly MAX_COUNTED_PATHS = 10_000;

  constructor(options: FakeStripeServerOptions = {}) {
    const { webhook, webhookMaxAttempts, webhookRetryBaseDelayMs, ...stateOptions } = options;
    this.webhooks = new WebhookDispatcher({
      ...(webhook ? { target: webhook } : {}),
      maxAttempts: webhookMaxAttempts ?? 5,
      retryBaseDelayMs: webhookRetryBaseDelayMs ?? 50,
      ...(options.nowSeconds ? { nowSeconds: options.nowSeconds } : {}),
    });
    this.state = new FakeStripeState({ ...stateOptions, onEvent: (e) => this.webhooks.enqueue(e) });
    this.maxIdempotencyKeys = options.maxIdempotencyKeys ?? 100_000;
    this.maxBodyBytes = options.maxBodyBytes ?? 1_000_000;
    this.autoSettlePayoutsAfterMs = options.autoSettlePayoutsAfterMs;
    const s = this.state;
    this.routes = [
      {
        method: 'POST',
        pattern: /^\/v1\/payment_intents$/,
        handle: (_m, p, c) => s.createPaymentIntent(p, c),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/payment_intents\/([^/]+)$/,
        handle: (m) => s.retrievePaymentIntent(m[1] as string),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/payment_intents\/([^/]+)\/confirm$/,
        handle: (m, p, c) => s.confirmPaymentIntent(m[1] as string, p, c),
      },
      { method: 'POST', pattern: /^\/v1\/refunds$/, handle: (_m, p, c) => s.createRefund(p, c) },
      { method: 'GET', pattern: /^\/v1\/refunds\/([^/]+)$/, handle: (m) => s.retrieveRefund(m[1] as string) },
      { method: 'POST', pattern: /^\/v1\/accounts$/, handle: (_m, p, c) => s.createAccount(p, c) },
      {
        method: 'GET',
        pattern: /^\/v1\/accounts\/([^/]+)$/,
        handle: (m) => s.retrieveAccount(m[1] as string),
      },
      { method: 'POST', pattern: /^\/v1\/transfers$/, handle: (_m, p, c) => s.createTransfer(p, c) },
      {
        method: 'GET',
        pattern: /^\/v1\/transfers\/([^/]+)$/,
        handle: (m) => s.retrieveTransfer(m[1] as string),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/payouts$/,
        handle: (_m, p, c) => {
          const payout = s.createPayout(p, c);
          this.scheduleAutoSettle(payout.id);
          return payout;
        },
      },
      {
        method: 'GET',
        pattern: /^\/v1\/payouts\/([^/]+)$/,
        handle: (m, _p, c) => s.retrievePayout(m[1] as string, c),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/disputes\/([^/]+)$/,
        handle: (m) => s.retrieveDispute(m[1] as string),
      },
      { method: 'GET', pattern: /^\/v1\/events\/([^/]+)$/, handle: (m) => s.retrieveEvent(m[1] as string) },
      { method: 'GET', pattern: /^\/v1\/balance$/, handle: (_m, _p, c) => s.balance(c.account) },
      {
        method: 'GET',
        pattern: /^\/v1\/balance_transactions$/,
        handle: (_m, p, c) => {
          const { data, hasMore } = s.listBalanceTransactions(p, c);
          const expand = expandList(p);
          const expandSource = expand.includes('data.source');
          return {
            object: 'list',
            url: '/v1/balance_transactions',
            has_more: hasMore,
            data: expandSource ? data.map((t) => s.expandSource(t)) : data,
          };
        },
      },
      {
        method: 'GET',
        pattern: /^\/v1\/balance_transactions\/([^/]+)$/,
        handle: (m, p, c) => {
          const t: FakeBalanceTransaction = s.retrieveBalanceTransaction(m[1] as string, c);
          return expandList(p).includes('source') ? s.expandSource(t) : t;
        },
      },
    ];
  }

  // --------------------------------------------------------------------------------------------------
  // Lifecycle

  async start(port = 0, host = '127.0.0.1'): Promise<{ host: string; port: number; url: string }> {
    invariant(!this.server, 'fake Stripe already started');
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) {
          sendJson(res, 500, {
            error: { type: 'api_error', message: `fake Stripe internal error: ${String(error)}` },
          });
        } else {
          res.destroy();
        }
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    return { host, port: address.port, url: `http://${host}:${address.port}` };
  }

  async stop(): Promise<void> {
    for (const t of this.settleTimers) clearTimeout(t);
    this.settleTimers.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // --------------------------------------------------------------------------------------------------
  // Fault injection (in process; the same through POST /_fake/faults)

  /** The next `count` API requests fail with `status`: 'before' = not processed; 'after' = processed, response lost. */
  failNext(count: number, status: 500 | 429 | 503 = 500, phase: FaultPhase = 'before'): void {
    invariant(Number.isInteger(count) && count >= 0 && count <= 1_000, 'failNext count must be 0..1000');
    for (let i = 0; i < count; i++) this.failures.push({ status, phase });
  }

  /** The next `count` API requests are answered only after `delayMs` (longer than the client timeout = a timeout). */
  delayNext(count: number, delayMs: number): void {
    invariant(Number.isInteger(count) && count >= 0 && count <= 1_000, 'delayNext count must be 0..1000');
    invariant(delayMs >= 0 && delayMs <= 60_000, 'delayMs must be 0..60000');
    for (let i = 0; i < count; i++) this.delays.push(delayMs);
  }

  setWebhookFaults(faults: { duplicate?: boolean; reorder?: boolean }): void {
    if (faults.duplicate !== undefined) this.webhooks.duplicate = faults.duplicate;
    if (faults.reorder !== undefined) this.webhooks.reorder = faults.reorder;
  }

  clearFaults(): void {
    this.failures = [];
    this.delays = [];
    this.webhooks.duplicate = false;
    this.webhooks.reorder = false;
  }

  /** Waits until every webhook triggered so far has been delivered (or given up on). */
  flushWebhooks(): Promise<void> {
    return this.webhooks.flush();
  }

  private scheduleAutoSettle(payoutId: string): void {
    if (this.autoSettlePayoutsAfterMs === undefined) return;
    const timer = setTimeout(() => {
      this.settleTimers.delete(timer);
      try {
        this.state.settlePayout(payoutId, 'paid');
      } catch {
        // Already settled through the admin API: nothing to do.
      }
    }, this.autoSettlePayoutsAfterMs);
    this.settleTimers.add(timer);
  }

  // --------------------------------------------------------------------------------------------------
  // HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.stripe');
    const method = req.method ?? 'GET';
    const body = await readBody(req, this.maxBodyBytes);
    if (body === null) {
      sendJson(res, 413, { error: { type: 'invalid_request_error', message: 'Request body too large.' } });
      return;
    }
    if (url.pathname.startsWith('/_fake/')) {
      await this.handleAdmin(method, url.pathname, body, res);
      return;
    }
    this.count(
      `${method} ${url.pathname.replace(/\/(pi|ch|re|tr|po|acct|txn|evt|dp)_[A-Za-z0-9]+/g, '/:id')}`,
    );
    const requestId = stripeId('req');
    const headers: Record<string, string> = {
      'request-id': requestId,
      'stripe-version': this.state.apiVersion,
    };

    const delay = this.delays.shift();
    if (delay !== undefined) await new Promise((r) => setTimeout(r, delay));

    const auth = req.headers.authorization;
    if (!auth || !/^Bearer sk_(test|live)_\S+$/.test(auth)) {
      sendJson(
        res,
        401,
        errorBody({ type: 'authentication_error', message: 'Invalid API Key provided.' }),
        headers,
      );
      return;
    }
    const fault = this.failures[0]?.phase === 'before' ? this.failures.shift() : undefined;
    if (fault) {
      sendFault(res, fault.status, headers);
      return;
    }

    const route = this.routes.find((r) => r.method === method && r.pattern.test(url.pathname));
    const match = route ? (route.pattern.exec(url.pathname) as RegExpExecArray) : null;
    if (!route || !match) {
      sendJson(
        res,
        404,
        errorBody({
          type: 'invalid_request_error',
          message: `Unrecognized request URL (${method}: ${url.pathname}).`,
        }),
        headers,
      );
      return;
    }
    let params: FormObject;
    try {
      params = parseForm(method === 'GET' ? url.search.slice(1) : body);
    } catch (error) {
      invariant(error instanceof FormParseError, () => `unexpected parse error ${String(error)}`);
      sendJson(
        res,
        400,
        errorBody({ type: 'invalid_request_error', message: error.message, param: error.param }),
        headers,
      );
      return;
    }
    const stripeAccount = headerValue(req, 'stripe-account');
    const account = stripeAccount ?? PLATFORM;
    if (stripeAccount !== undefined && !this.state.accounts.get(stripeAccount)) {
      sendJson(
        res,
        403,
        errorBody({
          type: 'invalid_request_error',
          code: 'account_invalid',
          message: `The provided key does not have access to account '${stripeAccount}' (or that account does not exist).`,
        }),
        headers,
      );
      return;
    }
    const idempotencyKey = method === 'POST' ? (headerValue(req, 'idempotency-key') ?? null) : null;
    if (idempotencyKey !== null) headers['idempotency-key'] = idempotencyKey;
    const scopedKey = idempotencyKey === null ? null : `${account}\u0000${idempotencyKey}`;
    const fingerprint =
      scopedKey === null ? '' : createHash('sha256').update(canonical(params)).digest('hex');

    if (scopedKey !== null) {
      const stored = this.idempotency.get(scopedKey);
      if (stored) {
        if (stored.method !== method || stored.path !== url.pathname || stored.fingerprint !== fingerprint) {
          sendJson(
            res,
            400,
            errorBody({
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            }),
            headers,
          );
          return;
        }
        sendRaw(res, stored.status, stored.body, { ...headers, 'idempotent-replayed': 'true' });
        return;
      }
    }

    const ctx: RequestContext = { account, requestId, idempotencyKey };
    let status = 200;
    let responseBody: string;
    let store = true;
    try {
      responseBody = JSON.stringify(route.handle(match, params, ctx));
    } catch (error) {
      if (!(error instanceof FakeStripeError)) throw error;
      status = error.status;
      responseBody = JSON.stringify(errorBody(error.body));
      store = error.storeForIdempotency;
    }
    if (scopedKey !== null && store) {
      this.idempotency.set(scopedKey, {
        method,
        path: url.pathname,
        fingerprint,
        status,
        body: responseBody,
      });
      if (this.idempotency.size > this.maxIdempotencyKeys) {
        const oldest = this.idempotency.keys().next().value;
        if (oldest !== undefined) this.idempotency.delete(oldest);
      }
    }
    const after = this.failures[0]?.phase === 'after' ? this.failures.shift() : undefined;
    if (after) {
      sendFault(res, after.status, headers);
      return;
    }
    sendRaw(res, status, responseBody, headers);
  }

  private count(key: string): void {
    if (this.requestCounts.size >= FakeStripeServer.MAX_COUNTED_PATHS && !this.requestCounts.has(key)) return;
    this.requestCounts.set(key, (this.requestCounts.get(key) ?? 0) + 1);
  }

  /** Admin API for the soak harness and manual runs. JSON in and out. */
  private async handleAdmin(method: string, path: string, body: string, res: ServerResponse): Promise<void> {
    let input: Record<string, unknown> = {};
    if (body.length > 0) {
      try {
        const parsed: unknown = JSON.parse(body);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
          input = parsed as Record<string, unknown>;
      } catch {
        sendJson(res, 400, { error: 'body must be JSON' });
        return;
      }
    }
    const num = (v: unknown, fallback: number): number =>
      typeof v === 'number' && Number.isFinite(v) ? v : fallback;
    try {
      if (method === 'POST' && path === '/_fake/faults') {
        const status = num(input.status, 500);
        if (status !== 500 && status !== 429 && status !== 503)
          throw new Error('status must be 500, 429 or 503');
        if (input.failNext !== undefined)
          this.failNext(num(input.failNext, 0), status, input.phase === 'after' ? 'after' : 'before');
        if (input.delayNext !== undefined) this.delayNext(num(input.delayNext, 0), num(input.delayMs, 0));
        if (typeof input.duplicateWebhooks === 'boolean')
          this.setWebhookFaults({ duplicate: input.duplicateWebhooks });
        if (typeof input.reorderWebhooks === 'boolean')
          this.setWebhookFaults({ reorder: input.reorderWebhooks });
        sendJson(res, 200, { ok: true });
        return;
      }
      if (method === 'DELETE' && path === '/_fake/faults') {
        this.clearFaults();
        sendJson(res, 200, { ok: true });
        return;
      }
      if (method === 'POST' && path === '/_fake/webhooks/flush') {
        await this.flushWebhooks();
        sendJson(res, 200, { ok: true });
        return;
      }
      const settle = /^\/_fake\/payouts\/([^/]+)\/(paid|failed)$/.exec(path);
      if (method === 'POST' && settle) {
        sendJson(res, 200, this.state.settlePayout(settle[1] as string, settle[2] as 'paid' | 'failed'));
        return;
      }
      if (method === 'POST' && path === '/_fake/disputes') {
        const pi = typeof input.payment_intent === 'string' ? input.payment_intent : undefined;
        const ch = typeof input.charge === 'string' ? input.charge : undefined;
        sendJson(
          res,
          200,
          this.state.openDispute({ ...(pi ? { paymentIntent: pi } : {}), ...(ch ? { charge: ch } : {}) }),
        );
        return;
      }
      const close = /^\/_fake\/disputes\/([^/]+)\/(won|lost)$/.exec(path);
      if (method === 'POST' && close) {
        sendJson(res, 200, this.state.closeDispute(close[1] as string, close[2] as 'won' | 'lost'));
        return;
      }
      if (method === 'GET' && path === '/_fake/stats') {
        sendJson(res, 200, {
          requests: Object.fromEntries(this.requestCounts),
          webhookDeliveries: this.webhooks.deliveries.length,
          webhooksDropped: this.webhooks.dropped,
          idempotencyKeys: this.idempotency.size,
          pendingFaults: this.failures.length,
        });
        return;
      }
      sendJson(res, 404, { error: `unknown admin route ${method} ${path}` });
    } catch (error) {
      const message = error instanceof FakeStripeError ? error.body.message : String(error);
      sendJson(res, 400, { error: message });
    }
  }
}

function expandList(params: FormObject): string[] {
  const e = params.expand;
  if (e === undefined) return [];
  if (Array.isArray(e)) return e.filter((x): x is string => typeof x === 'string');
  return typeof e === 'string' ? [e] : [];
}

function errorBody(body: StripeErrorBody): { error: StripeErrorBody & { request_log_url?: string } } {
  return { error: body };
}

function sendFault(res: ServerResponse, status: number, headers: Record<string, string>): void {
  const body =
    status === 429
      ? errorBody({
          type: 'rate_limit_error',
          code: 'rate_limit',
          message: 'Too many requests hit the API too quickly.',
        })
      : errorBody({ type: 'api_error', message: 'An unknown error occurred (injected by the fake).' });
  sendJson(res, status, body, headers);
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendRaw(res, status, JSON.stringify(body), headers);
}

function sendRaw(res: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > maxBytes) return null;
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Order-independent serialisation of parsed parameters, for the idempotency fingerprint. */
function canonical(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return 'null';
}
