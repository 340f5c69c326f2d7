import { defineConfig } from 'vitest/config';

/**
 * Tests are named by kind (docs/architecture.md, "Tests"):
 * - `*.unit.test.ts`: pure code and in-memory adapters, no servers;
 * - `*.int.test.ts`: real Postgres (PGlite without DATABASE_URL), Redis, the EventStoreDB emulator, the
 *   fake Stripe over its socket;
 * - `*.e2e.test.ts`: the app over HTTP (and pages in a real browser).
 * `npm test` runs all three; `npm run test:unit|test:int|test:e2e` runs one kind.
 */
const kinds = ['unit', 'int', 'e2e'] as const;

export default defineConfig({
  test: {
    testTimeout: 60_000,
    // Setup opens PGlite databases and migrates them: seconds on an idle machine, past a minute when
    // the two cores are shared with other work (seen: beforeAll of the contract and read-model suites).
    hookTimeout: 180_000,
    // One migrated template per run; each test database is a copy of it (test/support/globalSetup.ts).
    globalSetup: ['test/support/globalSetup.ts'],
    // Two cores: run files in parallel but bounded, so Postgres-backed suites do not starve each other.
    maxWorkers: 2,
    pool: 'forks',
    allowOnly: false,
    reporters: ['default'],
    projects: kinds.map((kind) => ({
      extends: true,
      test: { name: kind, include: [`test/**/*.${kind}.test.ts`] },
    })),
  },
});
