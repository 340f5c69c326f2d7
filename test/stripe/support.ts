import { FakeStripeServer, type FakeStripeServerOptions } from '../../src/stripe/fake/server.js';
import { StripeGateway, type StripeGatewayOptions } from '../../src/stripe/stripeGateway.js';

/** A started fake Stripe and a gateway (real SDK) pointed at it over HTTP. Fast retries for tests. */
export async function startFakeStripe(
  options: { fake?: FakeStripeServerOptions; gateway?: Partial<StripeGatewayOptions> } = {},
): Promise<{ fake: FakeStripeServer; gateway: StripeGateway; url: string; stop: () => Promise<void> }> {
  const fake = new FakeStripeServer(options.fake);
  const { port, url } = await fake.start();
  const gateway = new StripeGateway({
    apiKey: 'sk_test_fake',
    host: '127.0.0.1',
    port,
    protocol: 'http',
    timeoutMs: 2_000,
    maxRetries: 3,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    ...options.gateway,
  });
  return { fake, gateway, url, stop: () => fake.stop() };
}
