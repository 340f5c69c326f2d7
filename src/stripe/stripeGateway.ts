import Stripe from 'stripe';
import { invariant } from '../domain/errors.js';
import { CircuitBreaker, CircuitOpenError, type CircuitState } from './circuitBreaker.js';
import {
  type BalanceAmount,
  type BalanceTransactionFilter,
  type BalanceTransactionRecord,
  type ConnectedAccountSnapshot,
  GatewayError,
  type PaymentIntentResult,
  type PaymentsGateway,
  type StripeBalanceSource,
} from './gateway.js';

/**
 * The PaymentsGateway on the real `stripe` SDK. Works against api.stripe.com or, through the SDK's
 * host/port/protocol options, against the project's fake Stripe (src/stripe/fake).
 *
 * Resilience, all bounded and explicit:
 *  - every POST carries the caller's deterministic idempotency key, and a retry re-sends the same key,
 *    so a retried request never charges or pays twice;
 *  - a per-request timeout (timeoutMs);
 *  - our own retry loop (maxRetries, exponential backoff with jitter, capped) on 429, 5xx, 409 and
 *    network errors; the SDK's own retries are off (maxNetworkRetries: 0) because it does not retry
 *    429 and its backoff is not configurable in milliseconds;
 *  - a circuit breaker over whole calls: after `failureThreshold` consecutive calls failed for
 *    availability reasons, calls fail fast with GatewayError('unavailable') for `cooldownMs`.
 */
export interface StripeGatewayOptions {
  apiKey: string;
  /** For the fake Stripe (or a proxy): host, port, protocol. Omitted: api.stripe.com over https. */
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  timeoutMs?: number;
  maxRetries?: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  breaker?: { failureThreshold: number; cooldownMs: number };
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onBreakerStateChange?: (from: CircuitState, to: CircuitState) => void;
}

type StripeCallError = InstanceType<typeof Stripe.errors.StripeError>;

export class StripeGateway implements PaymentsGateway, StripeBalanceSource {
  readonly stripe: Stripe;
  private readonly breaker: CircuitBreaker;
  private readonly maxRetries: number;
  private readonly retryBaseDelayMs: number;
  private readonly retryMaxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: StripeGatewayOptions) {
    const timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRetries = options.maxRetries ?? 3;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 200;
    this.retryMaxDelayMs = options.retryMaxDelayMs ?? 5_000;
    invariant(
      Number.isInteger(this.maxRetries) && this.maxRetries >= 0 && this.maxRetries <= 10,
      'maxRetries 0..10',
    );
    invariant(timeoutMs > 0 && timeoutMs <= 120_000, 'timeoutMs 1..120000');
    this.stripe = new Stripe(options.apiKey, {
      apiVersion: Stripe.API_VERSION as Stripe.LatestApiVersion,
      maxNetworkRetries: 0,
      timeout: timeoutMs,
      telemetry: false,
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.protocol !== undefined ? { protocol: options.protocol } : {}),
      appInfo: { name: 'wemaster-ledger' },
    });
    this.breaker = new CircuitBreaker({
      failureThreshold: options.breaker?.failureThreshold ?? 5,
      cooldownMs: options.breaker?.cooldownMs ?? 30_000,
      ...(options.now ? { now: options.now } : {}),
      ...(options.onBreakerStateChange ? { onStateChange: options.onBreakerStateChange } : {}),
    });
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  get breakerState(): CircuitState {
    return this.breaker.state;
  }

  async createPaymentIntent(
    input: Parameters<PaymentsGateway['createPaymentIntent']>[0],
  ): Promise<PaymentIntentResult> {
    requireKey(input.idempotencyKey);
    const pi = await this.call(() =>
      this.stripe.paymentIntents.create(
        {
          amount: input.amount,
          currency: input.currency,
          metadata: { ...input.metadata },
          // Cards confirmed by the server or by the client's Payment Element without leaving the page:
          // with redirects allowed, Stripe refuses to confirm without a return_url.
          automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
          ...(input.paymentMethod !== undefined
            ? { payment_method: input.paymentMethod, confirm: true }
            : {}),
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toPaymentIntentResult(pi);
  }

  async retrievePaymentIntent(paymentIntentId: string): Promise<PaymentIntentResult> {
    return toPaymentIntentResult(await this.call(() => this.stripe.paymentIntents.retrieve(paymentIntentId)));
  }

  /** Current status and metadata of a PaymentIntent (webhook handler: late or sparse events). */
  async lookupPaymentIntent(
    paymentIntentId: string,
  ): Promise<{ status: string; metadata: Record<string, string> }> {
    const pi = await this.call(() => this.stripe.paymentIntents.retrieve(paymentIntentId));
    return { status: pi.status, metadata: { ...pi.metadata } };
  }

  async refundPaymentIntent(
    input: Parameters<PaymentsGateway['refundPaymentIntent']>[0],
  ): ReturnType<PaymentsGateway['refundPaymentIntent']> {
    requireKey(input.idempotencyKey);
    const refund = await this.call(() =>
      this.stripe.refunds.create(
        { payment_intent: input.paymentIntentId, amount: input.amount, metadata: { ...input.metadata } },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    const status = refund.status;
    invariant(
      status === 'pending' || status === 'succeeded' || status === 'failed' || status === 'canceled',
      () => `unexpected refund status ${String(status)}`,
    );
    return { refundId: refund.id, status, amount: refund.amount };
  }

  async createTransfer(
    input: Parameters<PaymentsGateway['createTransfer']>[0],
  ): Promise<{ transferId: string }> {
    requireKey(input.idempotencyKey);
    const transfer = await this.call(() =>
      this.stripe.transfers.create(
        {
          amount: input.amount,
          currency: input.currency,
          destination: input.destinationAccountId,
          metadata: { ...input.metadata },
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return { transferId: transfer.id };
  }

  async createPayout(
    input: Parameters<PaymentsGateway['createPayout']>[0],
  ): ReturnType<PaymentsGateway['createPayout']> {
    requireKey(input.idempotencyKey);
    const payout = await this.call(() =>
      this.stripe.payouts.create(
        { amount: input.amount, currency: input.currency, metadata: { ...input.metadata } },
        { idempotencyKey: input.idempotencyKey, stripeAccount: input.connectedAccountId },
      ),
    );
    return { payoutId: payout.id, status: payoutStatus(payout.status) };
  }

  async retrievePayout(
    connectedAccountId: string,
    payoutId: string,
  ): Promise<{
    payoutId: string;
    status: 'pending' | 'in_transit' | 'paid' | 'failed' | 'canceled';
    failureCode: string | null;
  }> {
    const payout = await this.call(() =>
      this.stripe.payouts.retrieve(payoutId, {}, { stripeAccount: connectedAccountId }),
    );
    return { payoutId: payout.id, status: payoutStatus(payout.status), failureCode: payout.failure_code };
  }

  /**
   * Creates the tutor's Express account. Stripe forgets idempotency keys after 24 hours, so the caller
   * records the returned id (the tutor stream's TutorPayoutAccountOpened) and never creates again.
   */
  async createConnectedAccount(input: {
    idempotencyKey: string;
    tutorId: string;
    tenantId: string;
  }): Promise<ConnectedAccountSnapshot> {
    requireKey(input.idempotencyKey);
    const account = await this.call(() =>
      this.stripe.accounts.create(
        {
          type: 'express',
          metadata: { tenantId: input.tenantId, tutorId: input.tutorId },
          capabilities: { transfers: { requested: true } },
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return accountSnapshot(account);
  }

  /** A one-time onboarding link for a connected account (Account Links; valid a few minutes). */
  async createAccountLink(input: {
    accountId: string;
    refreshUrl: string;
    returnUrl: string;
  }): Promise<{ url: string; expiresAt: number }> {
    const link = await this.call(() =>
      this.stripe.accountLinks.create({
        account: input.accountId,
        refresh_url: input.refreshUrl,
        return_url: input.returnUrl,
        type: 'account_onboarding',
      }),
    );
    return { url: link.url, expiresAt: link.expires_at };
  }

  async retrieveConnectedAccount(accountId: string): Promise<ConnectedAccountSnapshot> {
    return accountSnapshot(await this.call(() => this.stripe.accounts.retrieve(accountId)));
  }

  async retrieveBalance(
    connectedAccountId?: string,
  ): Promise<{ available: BalanceAmount[]; pending: BalanceAmount[] }> {
    const balance = await this.call(() =>
      this.stripe.balance.retrieve({}, connectedAccountId ? { stripeAccount: connectedAccountId } : {}),
    );
    const map = (xs: Array<{ amount: number; currency: string }>): BalanceAmount[] =>
      xs.map((x) => ({ amount: x.amount, currency: x.currency }));
    return { available: map(balance.available), pending: map(balance.pending) };
  }

  /**
   * Pages through balance transactions newest first (Stripe's order), page by page with `starting_after`,
   * each page one retried, circuit-broken request, so a transient error resumes from the cursor rather
   * than restarting a million-row stream. The source is expanded so charges carry their PaymentIntent.
   */
  async *listBalanceTransactions(filter: BalanceTransactionFilter): AsyncIterable<BalanceTransactionRecord> {
    const pageSize = filter.pageSize ?? 100;
    invariant(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 100, 'pageSize must be 1..100');
    const fetchPage = (
      startingAfter: string | undefined,
    ): Promise<Stripe.ApiList<Stripe.BalanceTransaction>> => {
      const params: Stripe.BalanceTransactionListParams = {
        limit: pageSize,
        expand: ['data.source'],
        ...(filter.created ? { created: filter.created } : {}),
        ...(filter.payout !== undefined ? { payout: filter.payout } : {}),
        ...(filter.type !== undefined ? { type: filter.type } : {}),
        ...(startingAfter !== undefined ? { starting_after: startingAfter } : {}),
      };
      return this.call(() =>
        this.stripe.balanceTransactions.list(
          params,
          filter.connectedAccountId ? { stripeAccount: filter.connectedAccountId } : {},
        ),
      );
    };
    let pending: Promise<Stripe.ApiList<Stripe.BalanceTransaction>> | null = fetchPage(undefined);
    while (pending) {
      const page: Stripe.ApiList<Stripe.BalanceTransaction> = await pending;
      const last = page.data[page.data.length - 1];
      // Read one page ahead (at most two pages in memory): Stripe's latency overlaps our matching.
      pending = page.has_more && last ? fetchPage(last.id) : null;
      // A consumer that stops early must not leave the prefetch's rejection unhandled.
      pending?.catch(() => undefined);
      for (const txn of page.data) yield toRecord(txn);
    }
  }

  async ping(): Promise<void> {
    await this.call(() => this.stripe.balance.retrieve());
  }

  /** One logical call: circuit breaker around bounded retries around the SDK request. */
  private async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await this.breaker.run(() => this.withRetries(request), isAvailabilityFailure);
    } catch (error) {
      throw toGatewayError(error);
    }
  }

  private async withRetries<T>(request: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request();
      } catch (error) {
        if (attempt >= this.maxRetries || !isRetryable(error)) throw error;
        const exp = Math.min(this.retryMaxDelayMs, this.retryBaseDelayMs * 2 ** attempt);
        // Full jitter in [exp/2, exp]: spreads retries of many workers hitting the same outage.
        await this.sleep(exp / 2 + Math.random() * (exp / 2));
      }
    }
  }
}

function requireKey(key: string): void {
  invariant(
    typeof key === 'string' && key.length > 0 && key.length <= 255,
    'idempotency key must be 1..255 chars',
  );
}

function isStripeError(error: unknown): error is StripeCallError {
  return error instanceof Stripe.errors.StripeError;
}

function isRetryable(error: unknown): boolean {
  if (!isStripeError(error)) return false;
  if (error instanceof Stripe.errors.StripeConnectionError) return true;
  const status = error.statusCode;
  if (status === undefined) return error.type === 'StripeConnectionError';
  return status === 429 || status === 409 || status >= 500;
}

/** What counts towards opening the circuit: Stripe unreachable or failing, not our bad requests. */
function isAvailabilityFailure(error: unknown): boolean {
  if (!isStripeError(error)) return false;
  if (error instanceof Stripe.errors.StripeConnectionError) return true;
  return error.statusCode === undefined || error.statusCode >= 500;
}

export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof CircuitOpenError) {
    return new GatewayError('unavailable', `Stripe unavailable (circuit open): ${error.message}`, undefined, {
      cause: error,
    });
  }
  if (!isStripeError(error)) {
    return new GatewayError('unavailable', `Stripe call failed: ${String(error)}`, undefined, {
      cause: error,
    });
  }
  const details = {
    cause: error,
    ...(error.statusCode !== undefined ? { statusCode: error.statusCode } : {}),
    ...(error.payment_intent?.id ? { paymentIntentId: error.payment_intent.id } : {}),
  };
  if (error instanceof Stripe.errors.StripeCardError) {
    const code = error.decline_code === 'insufficient_funds' ? 'insufficient_funds' : 'card_declined';
    return new GatewayError(code, error.message, error.decline_code ?? error.code, details);
  }
  if (error instanceof Stripe.errors.StripeIdempotencyError) {
    return new GatewayError('idempotency_conflict', error.message, error.code, details);
  }
  if (error instanceof Stripe.errors.StripeRateLimitError || error.statusCode === 429) {
    return new GatewayError('rate_limited', error.message, error.code, details);
  }
  if (error instanceof Stripe.errors.StripeInvalidRequestError) {
    return new GatewayError('invalid_request', error.message, error.code, details);
  }
  // Authentication/permission errors, 5xx, connection errors and timeouts: nothing the caller's input
  // can fix; retry later.
  return new GatewayError('unavailable', error.message, error.code, details);
}

const PI_STATUSES = new Set([
  'requires_payment_method',
  'requires_confirmation',
  'requires_action',
  'processing',
  'succeeded',
  'canceled',
]);

function toPaymentIntentResult(pi: Stripe.PaymentIntent): PaymentIntentResult {
  const status = pi.status as string;
  invariant(PI_STATUSES.has(status), () => `unexpected PaymentIntent status ${status}`);
  const err = pi.last_payment_error;
  return {
    paymentIntentId: pi.id,
    status: status as PaymentIntentResult['status'],
    clientSecret: pi.client_secret,
    amountReceived: pi.amount_received,
    lastError: err ? `${err.decline_code ?? err.code ?? 'error'}: ${err.message ?? ''}` : null,
  };
}

function payoutStatus(status: string): 'pending' | 'in_transit' | 'paid' | 'failed' | 'canceled' {
  invariant(
    status === 'pending' ||
      status === 'in_transit' ||
      status === 'paid' ||
      status === 'failed' ||
      status === 'canceled',
    () => `unexpected payout status ${status}`,
  );
  return status;
}

function toRecord(txn: Stripe.BalanceTransaction): BalanceTransactionRecord {
  const source = txn.source;
  let sourceId: string | null = null;
  let paymentIntentId: string | null = null;
  let metadata: Record<string, string> = {};
  if (typeof source === 'string') {
    sourceId = source;
  } else if (source && typeof source === 'object') {
    sourceId = source.id;
    if ('metadata' in source && source.metadata && typeof source.metadata === 'object') {
      metadata = { ...(source.metadata as Record<string, string>) };
    }
    if (source.object === 'charge') {
      const pi = source.payment_intent;
      paymentIntentId = typeof pi === 'string' ? pi : (pi?.id ?? null);
    }
  }
  return {
    id: txn.id,
    type: txn.type,
    reportingCategory: txn.reporting_category,
    amount: txn.amount,
    fee: txn.fee,
    net: txn.net,
    currency: txn.currency,
    created: txn.created,
    sourceId,
    paymentIntentId,
    metadata,
  };
}

/** An Account object as the ledger records it (requirements sorted, so equal states compare equal). */
export function accountSnapshot(a: Stripe.Account): ConnectedAccountSnapshot {
  const r = a.requirements;
  return {
    stripeAccountId: a.id,
    chargesEnabled: a.charges_enabled === true,
    payoutsEnabled: a.payouts_enabled === true,
    detailsSubmitted: a.details_submitted === true,
    currentlyDue: [...(r?.currently_due ?? [])].sort(),
    pastDue: [...(r?.past_due ?? [])].sort(),
    disabledReason: r?.disabled_reason ? String(r.disabled_reason) : null,
  };
}
