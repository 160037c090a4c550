import { defineConfig } from 'vitest/config';

// Two projects so that only integration/e2e files pay for the shared servers: the global setup
// (one nats-server + one PostgreSQL per run, see test/global-setup.ts) belongs to the
// "integration" project alone; a project's global setup runs once per run, and only when that
// project has files to run.
export default defineConfig({
  test: {
    pool: 'forks',
    // The CI/dev machines have 2 cores; integration files also share one nats-server and one
    // PostgreSQL, so more parallelism buys nothing.
    maxWorkers: 2,
    fileParallelism: true,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.unit.spec.ts', 'services/*/src/**/*.unit.spec.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['packages/*/src/**/*.int.spec.ts', 'services/*/src/**/*.int.spec.ts', 'test/**/*.{int,e2e}.spec.ts'],
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
