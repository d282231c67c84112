import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `@namecard/client` resolves to its src/ through tsconfig.base.json's paths, as in tsc and tsx:
  // no build needed to test against the client.
  resolve: { tsconfigPaths: true },
  test: {
    // Starts the suite's own redis-server (unless NAMECARD_TEST_REDIS_URL is set) and stops it after.
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
