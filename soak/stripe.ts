import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, sleep } from './proc.js';

/** The parts of src/stripe/fake/server.ts (FakeStripeServer) the soak drives. */
interface FakeStripeServerLike {
  start(port: number, host: string): Promise<{ url: string }>;
  stop(): Promise<void>;
  failNext(count: number, status: 500 | 429 | 503, phase: 'before' | 'after'): void;
  delayNext(count: number, delayMs: number): void;
  setWebhookFaults(faults: { duplicate?: boolean; reorder?: boolean }): void;
  clearFaults(): void;
  flushWebhooks(): Promise<void>;
}
type FakeStripeServerClass = new (options: Record<string, unknown>) => FakeStripeServerLike;

const FAKE_MODULE = path.resolve(import.meta.dirname, '../src/stripe/fake/server.ts');

/** Loaded at run time so the harness still starts (and says why Stripe faults are skipped) without it. */
async function loadFake(): Promise<FakeStripeServerClass | string> {
  if (!existsSync(FAKE_MODULE)) return `${FAKE_MODULE} does not exist`;
  const mod = (await import(pathToFileURL(FAKE_MODULE).href)) as { FakeStripeServer?: unknown };
  if (typeof mod.FakeStripeServer !== 'function')
    return 'src/stripe/fake/server.ts exports no FakeStripeServer';
  return mod.FakeStripeServer as FakeStripeServerClass;
}

/**
 * The project's fake Stripe, run inside the harness process (it has no runnable entry of its own) on a
 * free port; the app talks to it as to remote Stripe (STRIPE_API_BASE). Webhooks go to the first app's
 * platform and Connect endpoints (each with its own secret) and
 * are retried Stripe-style over about a minute, long enough to outlive an app restart. Faults are the
 * fake's own (the same as POST /_fake/faults).
 */
export class SoakStripe {
  private constructor(
    private readonly server: FakeStripeServerLike,
    readonly apiBase: string,
    readonly secretKey: string,
    readonly webhookSecret: string,
  ) {}

  /** The running fake, or why there is none. */
  static async start(options: {
    webhookUrl: string;
    webhookSecret: string;
    connectWebhookUrl: string;
    connectWebhookSecret: string;
  }): Promise<SoakStripe | string> {
    const FakeStripeServer = await loadFake();
    if (typeof FakeStripeServer === 'string') return FakeStripeServer;
    const server = new FakeStripeServer({
      webhook: { url: options.webhookUrl, secret: options.webhookSecret },
      connectWebhook: { url: options.connectWebhookUrl, secret: options.connectWebhookSecret },
      // 9 attempts, 250 ms doubling: the last retry ~64 s after the first try.
      webhookMaxAttempts: 9,
      webhookRetryBaseDelayMs: 250,
      autoSettlePayoutsAfterMs: 1_500,
      accountsStartEnabled: true,
      availableAfterSeconds: 0,
    });
    const { url } = await server.start(await freePort(), '127.0.0.1');
    return new SoakStripe(server, url, 'sk_test_soak0000000000000000', options.webhookSecret);
  }

  /** The next `count` API calls fail with `status` (before processing, or after it: response lost). */
  failNext(count: number, status: 500 | 429 | 503, phase: 'before' | 'after'): void {
    this.server.failNext(count, status, phase);
  }

  /** The next `count` API calls answer only after delayMs (past the adapter's timeout). */
  delayNext(count: number, delayMs: number): void {
    this.server.delayNext(count, delayMs);
  }

  webhookFaults(faults: { duplicate?: boolean; reorder?: boolean }): void {
    this.server.setWebhookFaults(faults);
  }

  clearFaults(): void {
    this.server.clearFaults();
  }

  /** The fake's own counters (GET /_fake/stats): failures injected and not yet consumed, webhooks dropped. */
  async stats(): Promise<{ pendingFaults: number; webhooksDropped: number; webhookDeliveries: number }> {
    const response = await fetch(`${this.apiBase}/_fake/stats`, { signal: AbortSignal.timeout(5_000) });
    const body = (await response.json()) as Record<string, unknown>;
    const n = (v: unknown) => (typeof v === 'number' ? v : 0);
    return {
      pendingFaults: n(body.pendingFaults),
      webhooksDropped: n(body.webhooksDropped),
      webhookDeliveries: n(body.webhookDeliveries),
    };
  }

  /** Delivers held (reordered) webhooks and waits for every delivery in flight, at most timeoutMs. */
  async flushWebhooks(timeoutMs: number): Promise<boolean> {
    return Promise.race([this.server.flushWebhooks().then(() => true), sleep(timeoutMs).then(() => false)]);
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}
