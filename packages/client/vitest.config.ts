import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `@namecard/client` resolves to its src/ through tsconfig.base.json's paths, as in tsc and tsx:
  // no build needed to test against the client.
  resolve: { tsconfigPaths: true },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
