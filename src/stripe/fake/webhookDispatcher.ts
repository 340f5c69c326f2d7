import { createHmac } from 'node:crypto';
import { invariant } from '../../domain/errors.js';
import type { FakeEvent } from './types.js';

/**
 * Signs a webhook payload exactly as Stripe does: `t={unix seconds},v1={hex HMAC-SHA256(secret,
 * "{t}.{payload}")}`. The SDK's `webhooks.constructEvent` verifies it.
 */
export function signStripePayload(payload: string, secret: string, timestampSeconds: number): string {
  const signature = createHmac('sha256', secret)
    .update(`${timestampSeconds}.${payload}`, 'utf8')
    .digest('hex');
  return `t=${timestampSeconds},v1=${signature}`;
}

export interface WebhookTarget {
  url: string;
  secret: string;
}

export interface WebhookDispatcherOptions {
  /** The platform endpoint: events of the platform account itself. */
  target?: WebhookTarget;
  /** The Connect endpoint: events of connected accounts (`event.account` set), signed with its own secret. */
  connectTarget?: WebhookTarget;
  /** Attempts per delivery (first try included), Stripe-style backoff between them. */
  maxAttempts?: number;
  retryBaseDelayMs?: number;
  timeoutMs?: number;
  /** Bound on undelivered events held (reorder buffer + in flight); past it the oldest are dropped. */
  maxQueued?: number;
  nowSeconds?: () => number;
}

export interface DeliveryRecord {
  eventId: string;
  type: string;
  attempt: number;
  status: number | 'network_error';
}

/**
 * Delivers events as Stripe does to a platform with Connect: events of the platform account go to the
 * platform endpoint, events of connected accounts (`account` set) to the Connect endpoint, each signed
 * with its endpoint's own secret; an event whose endpoint is not configured is not sent. Retried on
 * non-2xx and network errors. Fault
 * modes for tests and the soak: `duplicate` (every event delivered twice) and `reorder` (events are held
 * until `flush()` and then delivered newest first). `flush()` resolves when nothing is in flight.
 */
export class WebhookDispatcher {
  private target: WebhookTarget | undefined;
  private connectTarget: WebhookTarget | undefined;
  private readonly maxAttempts: number;
  private readonly retryBaseDelayMs: number;
  private readonly timeoutMs: number;
  private readonly maxQueued: number;
  private readonly nowSeconds: () => number;
  private readonly inFlight = new Set<Promise<void>>();
  private held: FakeEvent[] = [];
  private readonly log: DeliveryRecord[] = [];
  private static readonly MAX_LOG = 1_000;
  duplicate = false;
  reorder = false;
  dropped = 0;

  constructor(options: WebhookDispatcherOptions = {}) {
    this.target = options.target;
    this.connectTarget = options.connectTarget;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 50;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
    invariant(this.maxAttempts >= 1 && this.maxAttempts <= 20, 'maxAttempts must be 1..20');
  }

  setTarget(target: WebhookTarget | undefined): void {
    this.target = target;
  }

  setConnectTarget(target: WebhookTarget | undefined): void {
    this.connectTarget = target;
  }

  private targetFor(event: FakeEvent): WebhookTarget | undefined {
    return event.account === undefined ? this.target : this.connectTarget;
  }

  get deliveries(): readonly DeliveryRecord[] {
    return this.log;
  }

  enqueue(event: FakeEvent): void {
    if (!this.targetFor(event)) return;
    if (this.reorder) {
      this.held.push(event);
      if (this.held.length > this.maxQueued) {
        this.held.shift();
        this.dropped++;
      }
      return;
    }
    this.start(event);
    if (this.duplicate) this.start(event);
  }

  /** Releases held events (newest first when reordering) and waits for every delivery to finish. */
  async flush(): Promise<void> {
    const held = this.held.reverse();
    this.held = [];
    for (const event of held) {
      this.start(event);
      if (this.duplicate) this.start(event);
    }
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private start(event: FakeEvent): void {
    if (this.inFlight.size >= this.maxQueued) {
      this.dropped++;
      return;
    }
    const p = this.deliver(event).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async deliver(event: FakeEvent): Promise<void> {
    const target = this.targetFor(event);
    if (!target) return;
    const payload = JSON.stringify(event, null, 2);
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      // Each attempt is signed afresh with the current time, as Stripe does.
      const header = signStripePayload(payload, target.secret, this.nowSeconds());
      let status: number | 'network_error';
      try {
        const res = await fetch(target.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'stripe-signature': header,
            'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          },
          body: payload,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 'network_error';
      }
      this.record({ eventId: event.id, type: event.type, attempt, status });
      if (typeof status === 'number' && status >= 200 && status < 300) return;
      if (attempt < this.maxAttempts) {
        await new Promise((r) => setTimeout(r, this.retryBaseDelayMs * 2 ** (attempt - 1)));
      }
    }
  }

  private record(entry: DeliveryRecord): void {
    this.log.push(entry);
    if (this.log.length > WebhookDispatcher.MAX_LOG) this.log.shift();
  }
}
