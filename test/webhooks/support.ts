import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import { balancesFromQueries } from '../../src/monitors/evaluator.js';
import type { Resolver } from '../../src/webhooks/addressPolicy.js';
import { createWebhooksAndMonitors, type WebhooksAndMonitors } from '../../src/webhooksAndMonitors.js';
import { type RealStack, startRealStack } from '../api/support/realStack.js';

export const WEBHOOK_SECRET_KEY = 'test-webhook-secret-key-0123456789abcdef';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  port: number;
  requests: Received[];
  /** Sets the answer to every following request (status code, optionally a delay). */
  respond(fn: (request: Received) => number | Promise<number>): void;
  /** Resolves once `n` requests have arrived (bounded wait). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1 that records what arrives. */
export async function startReceiver(): Promise<Receiver> {
  const requests: Received[] = [];
  let answer: (request: Received) => number | Promise<number> = () => 200;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      requests.push(received);
      Promise.resolve(answer(received)).then(
        (status) => {
          res.statusCode = status;
          res.end(status >= 300 && status < 400 ? '' : `answer ${status}`);
        },
        () => res.destroy(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    requests,
    respond(fn) {
      answer = fn;
    },
    async waitFor(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (requests.length < n) {
        if (Date.now() > deadline) throw new Error(`receiver: ${requests.length} of ${n} requests`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface WebhookStack extends RealStack {
  features: WebhooksAndMonitors;
}

/** The real stack with webhooks and monitors as src/server.ts wires them; 127.0.0.1 is allowlisted. */
export async function startWebhookStack(
  options: {
    resolver?: Resolver;
    clock?: () => Date;
    start?: boolean;
    dispatcher?: Parameters<typeof createWebhooksAndMonitors>[0]['dispatcher'];
  } = {},
): Promise<WebhookStack> {
  let features: WebhooksAndMonitors | undefined;
  const stack = await startRealStack({
    features: ({ db, store, service, queries, registry }) => {
      features = createWebhooksAndMonitors({
        db: db.db,
        store,
        handler: service.handler,
        checkpoints: new MemoryCheckpointStore(),
        balances: balancesFromQueries(queries),
        clock: options.clock ?? (() => new Date()),
        secretKey: WEBHOOK_SECRET_KEY,
        allowedNetworks: ['127.0.0.1/32'],
        registry,
        timeoutMs: 2_000,
        ...(options.resolver ? { resolver: options.resolver } : {}),
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      });
      if (options.start ?? true) features.start();
      const built = features;
      return { routes: built.routes, close: () => built.stop() };
    },
  });
  return Object.assign(stack, { features: features! });
}

export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
