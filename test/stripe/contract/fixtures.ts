import { readFileSync } from 'node:fs';

/**
 * Stripe's own published fixture objects (stripe/openapi `fixtures3.json`, MIT), kept in the repository
 * under stripe-fixtures/ (its README says where it comes from and how to refresh it).
 */
export type StripeFixtures = Record<string, Record<string, unknown>>;

const FIXTURES_FILE = new URL('./stripe-fixtures/fixtures3.json', import.meta.url);

let cached: StripeFixtures | undefined;

export function stripeFixtures(): StripeFixtures {
  cached ??= (JSON.parse(readFileSync(FIXTURES_FILE, 'utf8')) as { resources: StripeFixtures }).resources;
  return cached;
}

/** A deep copy of one fixture object, to be given our own ids, amounts and metadata. */
export function fixture(name: string): Record<string, unknown> {
  const object = stripeFixtures()[name];
  if (!object) throw new Error(`fixtures3.json has no ${name}`);
  return structuredClone(object);
}
