import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { invariant } from '../../domain/errors.js';
import { ACCEPTED_PARAMS } from './accepted.js';
import { expand } from './expand.js';
import { type FormObject, FormParseError, parseForm } from './formParser.js';
import { allowOnly, expandList } from './params.js';
import {
  FakeStripeState,
  type FakeStripeStateOptions,
  PLATFORM,
  type RequestContext,
  stripeId,
} from './state.js';
import { FakeStripeError, type StripeErrorBody, withDocUrl } from './types.js';
import { WebhookDispatcher, type WebhookTarget } from './webhookDispatcher.js';

/**
 * A project-owned fake Stripe: a real node:http server speaking Stripe's REST API (form-encoded
 * requests, JSON responses, Stripe's error bodies and idempotency rules) that the real `stripe` SDK talks
 * to through its host/port/protocol options. Stateful in memory (FakeStripeState), bounded
 * (maxObjectsPerKind per object kind, maxIdempotencyKeys keys), with fault injection in process and at
 * `/_fake/...` for the soak harness. See src/stripe/fake/README.md.
 */
export interface FakeStripeServerOptions extends Omit<FakeStripeStateOptions, 'onEvent'> {
  /** The platform webhook endpoint. */
  webhook?: WebhookTarget;
  /** The Connect webhook endpoint (events of connected accounts), with its own secret. */
  connectWebhook?: WebhookTarget;
  webhookMaxAttempts?: number;
  webhookRetryBaseDelayMs?: number;
  /** Idempotency keys remembered at most (besides Stripe's 24 h expiry on the fake's clock). */
  maxIdempotencyKeys?: number;
  /** Payouts go in transit, then paid, this long after creation; undefined: pending until settlePayout. */
  autoSettlePayoutsAfterMs?: number;
  /** Largest request body accepted. */
  maxBodyBytes?: number;
  /** Sees every API response (status and JSON text) the fake sends: the contract tests check them. */
  onResponse?: (response: { method: string; path: string; status: number; body: string }) => void;
}

export type FaultPhase = 'before' | 'after';

interface StoredResponse {
  /** Fake-clock second the key was first used: Stripe forgets keys 24 hours later. */
  storedAt: number;
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
  private readonly onResponse: FakeStripeServerOptions['onResponse'];
  private failures: Array<{ status: 500 | 429 | 503; phase: FaultPhase }> = [];
  private delays: number[] = [];
  /** Requests seen per "METHOD path" (for tests asserting retries). */
  readonly requestCounts = new Map<string, number>();
  private static readonly MAX_COUNTED_PATHS = 10_000;

  constructor(options: FakeStripeServerOptions = {}) {
    const {
      webhook,
      connectWebhook,
      webhookMaxAttempts,
      webhookRetryBaseDelayMs,
      onResponse,
      ...stateOptions
    } = options;
    this.onResponse = onResponse;
    this.webhooks = new WebhookDispatcher({
      ...(webhook ? { target: webhook } : {}),
      ...(connectWebhook ? { connectTarget: connectWebhook } : {}),
      maxAttempts: webhookMaxAttempts ?? 5,
      retryBaseDelayMs: webhookRetryBaseDelayMs ?? 50,
      ...(options.nowSeconds ? { nowSeconds: options.nowSeconds } : {}),
    });
    this.state = new FakeStripeState({ ...stateOptions, onEvent: (e) => this.webhooks.enqueue(e) });
    this.maxIdempotencyKeys = options.maxIdempotencyKeys ?? 100_000;
    this.maxBodyBytes = options.maxBodyBytes ?? 1_000_000;
    this.autoSettlePayoutsAfterMs = options.autoSettlePayoutsAfterMs;
    const s = this.state;
    const id = (m: RegExpExecArray): string => m[1] as string;
    const post = (pattern: RegExp, handle: Route['handle']): Route => ({ method: 'POST', pattern, handle });
    const get = (pattern: RegExp, handle: Route['handle']): Route => ({ method: 'GET', pattern, handle });
    // Retrieves take only `expand` (Stripe's *RetrieveParams).
    const read = (pattern: RegExp, handle: (m: RegExpExecArray, c: RequestContext) => unknown): Route =>
      get(pattern, (m, p, c) => {
        onlyExpand(p);
        return handle(m, c);
      });
    this.routes = [
      post(/^\/v1\/payment_intents$/, (_m, p, c) => s.createPaymentIntent(p, c)),
      read(/^\/v1\/payment_intents\/([^/]+)$/, (m, _c) => s.retrievePaymentIntent(id(m))),
      post(/^\/v1\/payment_intents\/([^/]+)\/confirm$/, (m, p, c) => s.confirmPaymentIntent(id(m), p, c)),
      post(/^\/v1\/refunds$/, (_m, p, c) => s.createRefund(p, c)),
      read(/^\/v1\/refunds\/([^/]+)$/, (m, _c) => s.retrieveRefund(id(m))),
      post(/^\/v1\/customers$/, (_m, p, c) => s.createCustomer(p, c)),
      read(/^\/v1\/customers\/([^/]+)$/, (m, _c) => s.retrieveCustomer(id(m))),
      read(/^\/v1\/payment_methods\/([^/]+)$/, (m, _c) => s.retrievePaymentMethod(id(m))),
      post(/^\/v1\/payment_methods\/([^/]+)\/attach$/, (m, p, c) => s.attachPaymentMethod(id(m), p, c)),
      post(/^\/v1\/setup_intents$/, (_m, p, c) => s.createSetupIntent(p, c)),
      read(/^\/v1\/setup_intents\/([^/]+)$/, (m, _c) => s.retrieveSetupIntent(id(m))),
      post(/^\/v1\/setup_intents\/([^/]+)\/confirm$/, (m, p, c) => s.confirmSetupIntent(id(m), p, c)),
      post(/^\/v1\/accounts$/, (_m, p, c) => s.createAccount(p, c)),
      read(/^\/v1\/accounts\/([^/]+)$/, (m, _c) => s.retrieveAccount(id(m))),
      post(/^\/v1\/account_links$/, (_m, p) => s.createAccountLink(p)),
      post(/^\/v1\/transfers$/, (_m, p, c) => s.createTransfer(p, c)),
      read(/^\/v1\/transfers\/([^/]+)$/, (m, _c) => s.retrieveTransfer(id(m))),
      post(/^\/v1\/payouts$/, (_m, p, c) => {
        const payout = s.createPayout(p, c);
        this.scheduleAutoSettle(payout.id);
        return payout;
      }),
      read(/^\/v1\/payouts\/([^/]+)$/, (m, c) => s.retrievePayout(id(m), c)),
      post(/^\/v1\/payouts\/([^/]+)\/cancel$/, (m, p, c) => s.cancelPayout(id(m), p, c)),
      read(/^\/v1\/disputes\/([^/]+)$/, (m, _c) => s.retrieveDispute(id(m))),
      read(/^\/v1\/events\/([^/]+)$/, (m, _c) => s.retrieveEvent(id(m))),
      read(/^\/v1\/balance$/, (_m, c) => s.balance(c.account)),
      get(/^\/v1\/balance_transactions$/, (_m, p, c) => {
        const { data, hasMore } = s.listBalanceTransactions(p, c);
        return { object: 'list', data, has_more: hasMore, url: '/v1/balance_transactions' };
      }),
      read(/^\/v1\/balance_transactions\/([^/]+)$/, (m, c) => s.retrieveBalanceTransaction(id(m), c)),
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
    const url = `http://${host}:${address.port}`;
    this.state.onboardingBaseUrl = `${url}/_fake/onboarding`;
    return { host, port: address.port, url };
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
    const step = (outcome: 'in_transit' | 'paid', afterMs: number): void => {
      const timer = setTimeout(() => {
        this.settleTimers.delete(timer);
        try {
          this.state.settlePayout(payoutId, outcome);
          if (outcome === 'in_transit') step('paid', afterMs);
        } catch {
          // Settled or canceled meanwhile (admin API, cancel): nothing to do.
        }
      }, afterMs);
      this.settleTimers.add(timer);
    };
    step('in_transit', Math.floor(this.autoSettlePayoutsAfterMs / 2));
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
    const onboarding = /^\/_fake\/onboarding\/([A-Za-z0-9]+)$/.exec(url.pathname);
    if (method === 'GET' && onboarding) {
      // The tutor's browser on the onboarding link: Stripe's hosted form, completed at once.
      try {
        const { redirectTo } = this.state.visitAccountLink(onboarding[1] as string);
        res.writeHead(302, { location: redirectTo, 'content-length': 0 });
        res.end();
      } catch {
        sendJson(res, 404, { error: 'unknown onboarding link' });
      }
      return;
    }
    if (url.pathname.startsWith('/_fake/')) {
      await this.handleAdmin(method, url.pathname, body, res);
      return;
    }
    this.count(
      `${method} ${url.pathname.replace(/\/(pi|ch|re|tr|po|acct|txn|evt|dp|cus|pm|seti)_[A-Za-z0-9]+/g, '/:id')}`,
    );
    const requestId = stripeId('req');
    const headers: Record<string, string> = {
      'request-id': requestId,
      'stripe-version': this.state.apiVersion,
    };
    const answer = (status: number, text: string, extra: Record<string, string> = {}): void => {
      this.onResponse?.({ method, path: url.pathname, status, body: text });
      sendRaw(res, status, text, { ...headers, ...extra });
    };
    const fail = (status: number, error: StripeErrorBody): void =>
      answer(status, JSON.stringify(errorBody(error, requestId)));

    const delay = this.delays.shift();
    if (delay !== undefined) await new Promise((r) => setTimeout(r, delay));

    const auth = req.headers.authorization;
    if (!auth || !/^Bearer sk_(test|live)_\S+$/.test(auth)) {
      fail(401, { type: 'authentication_error', message: 'Invalid API Key provided.' });
      return;
    }
    const fault = this.failures[0]?.phase === 'before' ? this.failures.shift() : undefined;
    if (fault) {
      sendFault(res, fault.status, headers, requestId);
      return;
    }

    const route = this.routes.find((r) => r.method === method && r.pattern.test(url.pathname));
    const match = route ? (route.pattern.exec(url.pathname) as RegExpExecArray) : null;
    if (!route || !match) {
      fail(404, {
        type: 'invalid_request_error',
        message: `Unrecognized request URL (${method}: ${url.pathname}). Please see https://docs.stripe.com or we can help at https://support.stripe.com/.`,
      });
      return;
    }
    let params: FormObject;
    try {
      params = parseForm(method === 'GET' ? url.search.slice(1) : body);
    } catch (error) {
      invariant(error instanceof FormParseError, () => `unexpected parse error ${String(error)}`);
      fail(400, { type: 'invalid_request_error', message: error.message, param: error.param });
      return;
    }
    const stripeAccount = headerValue(req, 'stripe-account');
    const account = stripeAccount ?? PLATFORM;
    if (stripeAccount !== undefined && !this.state.accounts.get(stripeAccount)) {
      fail(403, {
        type: 'invalid_request_error',
        code: 'account_invalid',
        message: `The provided key does not have access to account '${stripeAccount}' (or that account does not exist). Application access may have been revoked.`,
      });
      return;
    }
    const idempotencyKey = method === 'POST' ? (headerValue(req, 'idempotency-key') ?? null) : null;
    if (idempotencyKey !== null && idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      fail(400, {
        type: 'invalid_request_error',
        message: `Idempotency-Key must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters long (got ${idempotencyKey.length}).`,
        param: 'Idempotency-Key',
      });
      return;
    }
    if (idempotencyKey !== null) headers['idempotency-key'] = idempotencyKey;
    const scopedKey = idempotencyKey === null ? null : `${account}\u0000${idempotencyKey}`;
    const fingerprint =
      scopedKey === null ? '' : createHash('sha256').update(canonical(params)).digest('hex');

    const now = this.state.now();
    if (scopedKey !== null) {
      const stored = this.idempotency.get(scopedKey);
      if (stored && now - stored.storedAt >= IDEMPOTENCY_KEY_TTL_SECONDS) {
        // Stripe prunes keys after 24 hours: the same key is a new request again.
        this.idempotency.delete(scopedKey);
      } else if (stored) {
        if (stored.method !== method || stored.path !== url.pathname || stored.fingerprint !== fingerprint) {
          fail(400, {
            type: 'idempotency_error',
            message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
          });
          return;
        }
        answer(stored.status, stored.body, { 'idempotent-replayed': 'true' });
        return;
      }
    }

    const ctx: RequestContext = { account, requestId, idempotencyKey };
    let status = 200;
    let responseBody: string;
    let store = true;
    try {
      const paths = expandList(params);
      const result = route.handle(match, params, ctx);
      responseBody = JSON.stringify(expand(result, paths, (x) => this.state.lookup(x, account)));
    } catch (error) {
      if (!(error instanceof FakeStripeError)) throw error;
      status = error.status;
      responseBody = JSON.stringify(errorBody(error.body, requestId));
      store = error.storeForIdempotency;
    }
    if (scopedKey !== null && store) {
      this.idempotency.set(scopedKey, {
        storedAt: now,
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
      sendFault(res, after.status, headers, requestId);
      return;
    }
    answer(status, responseBody);
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
      const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
      const settle = /^\/_fake\/payouts\/([^/]+)\/(in_transit|paid|failed)$/.exec(path);
      if (method === 'POST' && settle) {
        const outcome = settle[2] as 'in_transit' | 'paid' | 'failed';
        const code = str(input.failure_code);
        sendJson(res, 200, this.state.settlePayout(settle[1] as string, outcome, code));
        return;
      }
      const automatic = /^\/_fake\/accounts\/([^/]+)\/automatic_payout$/.exec(path);
      if (method === 'POST' && automatic) {
        sendJson(res, 200, this.state.automaticPayout(automatic[1] as string, str(input.currency) ?? 'usd'));
        return;
      }
      const enable = /^\/_fake\/accounts\/([^/]+)\/(enable|disable)$/.exec(path);
      if (method === 'POST' && enable) {
        sendJson(res, 200, this.state.setAccountEnabled(enable[1] as string, enable[2] === 'enable'));
        return;
      }
      if (method === 'POST' && path === '/_fake/refunds') {
        const pi = str(input.payment_intent);
        const ch = str(input.charge);
        const amount = typeof input.amount === 'number' ? input.amount : undefined;
        sendJson(
          res,
          200,
          this.state.refundFromDashboard({
            ...(pi ? { paymentIntent: pi } : {}),
            ...(ch ? { charge: ch } : {}),
            ...(amount !== undefined ? { amount } : {}),
          }),
        );
        return;
      }
      const failRefund = /^\/_fake\/refunds\/([^/]+)\/fail$/.exec(path);
      if (method === 'POST' && failRefund) {
        sendJson(res, 200, this.state.failRefund(failRefund[1] as string, str(input.failure_reason)));
        return;
      }
      if (method === 'POST' && path === '/_fake/disputes') {
        const pi = str(input.payment_intent);
        const ch = str(input.charge);
        sendJson(
          res,
          200,
          this.state.openDispute({
            ...(pi ? { paymentIntent: pi } : {}),
            ...(ch ? { charge: ch } : {}),
            inquiry: input.inquiry === true,
          }),
        );
        return;
      }
      const close = /^\/_fake\/disputes\/([^/]+)\/(won|lost|escalate)$/.exec(path);
      if (method === 'POST' && close) {
        const disputeId = close[1] as string;
        sendJson(
          res,
          200,
          close[2] === 'escalate'
            ? this.state.escalateDispute(disputeId)
            : this.state.closeDispute(disputeId, close[2] as 'won' | 'lost'),
        );
        return;
      }
      if (method === 'POST' && path === '/_fake/clock/advance') {
        const seconds = num(input.seconds, 0);
        this.state.advanceTime(seconds);
        sendJson(res, 200, { now: this.state.now() });
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

/** Stripe forgets an idempotency key 24 hours after its first use. */
export const IDEMPOTENCY_KEY_TTL_SECONDS = 86_400;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** GET retrieves take only `expand` (Stripe's *RetrieveParams). */
function onlyExpand(params: FormObject): void {
  allowOnly(params, ACCEPTED_PARAMS['GET /v1/balance']);
}

function errorBody(body: StripeErrorBody, requestId: string): { error: StripeErrorBody } {
  return { error: withDocUrl(body, requestId) };
}

function sendFault(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  requestId: string,
): void {
  const body =
    status === 429
      ? errorBody(
          {
            type: 'rate_limit_error',
            code: 'rate_limit',
            message: 'Too many requests hit the API too quickly.',
          },
          requestId,
        )
      : errorBody(
          { type: 'api_error', message: 'An unknown error occurred (injected by the fake).' },
          requestId,
        );
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
