import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files in parallel but bounded, so Postgres-backed suites do not starve each other.
    maxWorkers: 2,
    pool: 'forks',
    allowOnly: false,
    reporters: ['default'],
  },
});
