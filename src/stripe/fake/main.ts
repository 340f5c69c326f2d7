import { BENCH_SEED_START, benchSeedAmount, benchSeedIds } from './benchSeed.js';
import { FakeStripeServer } from './server.js';

/**
 * Runs the fake Stripe as its own process:
 *   tsx src/stripe/fake/main.ts [--port 12111] [--host 127.0.0.1] [--webhook-url URL --webhook-secret whsec_...]
 *                               [--connect-webhook-url URL --connect-webhook-secret whsec_...]
 *                               [--auto-settle-payouts-ms 1000] [--available-after-seconds N]
 *                               [--accounts-start-enabled] [--max-objects 200000] [--bench-seed N]
 *                               [--exit-on-stdin-close]
 * Prints one JSON line `{"ready":true,"port":N}` when listening. `--bench-seed N` seeds N succeeded charges
 * with deterministic ids (benchSeedIds) for `npm run bench -- reconcile`. Stops on SIGTERM/SIGINT.
 */
function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

async function main(): Promise<void> {
  const webhookUrl = arg('webhook-url');
  const webhookSecret = arg('webhook-secret') ?? process.env.STRIPE_WEBHOOK_SECRET;
  const seed = Number(arg('bench-seed') ?? 0);
  const maxObjects = Number(arg('max-objects') ?? Math.max(200_000, Math.ceil(seed * 1.1)));
  const autoSettle = arg('auto-settle-payouts-ms');
  const connectUrl = arg('connect-webhook-url');
  const connectSecret = arg('connect-webhook-secret') ?? process.env.STRIPE_CONNECT_WEBHOOK_SECRET;
  const availableAfter = arg('available-after-seconds');
  const fake = new FakeStripeServer({
    maxObjectsPerKind: maxObjects,
    ...(webhookUrl && webhookSecret ? { webhook: { url: webhookUrl, secret: webhookSecret } } : {}),
    ...(connectUrl && connectSecret ? { connectWebhook: { url: connectUrl, secret: connectSecret } } : {}),
    ...(availableAfter !== undefined ? { availableAfterSeconds: Number(availableAfter) } : {}),
    ...(process.argv.includes('--accounts-start-enabled') ? { accountsStartEnabled: true } : {}),
    ...(autoSettle !== undefined ? { autoSettlePayoutsAfterMs: Number(autoSettle) } : {}),
  });
  for (let i = 0; i < seed; i++) {
    fake.state.seedSucceededCharge({
      amount: benchSeedAmount(i),
      currency: 'usd',
      metadata: { tenantId: 'bench', topUpId: `tu${i}`, studentId: `s${i % 1_000}` },
      created: BENCH_SEED_START + Math.floor(i / 100),
      ids: benchSeedIds(i),
    });
  }
  const { port } = await fake.start(Number(arg('port') ?? 0), arg('host') ?? '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
  const stop = () => {
    fake.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Started by another process (the bench) with a stdin pipe: exit when that process goes away.
  if (process.argv.includes('--exit-on-stdin-close')) {
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
