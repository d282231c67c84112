import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Probes the real Redis once per run and hands the result to every test file.
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Every file's real-Redis half uses the same database number and FLUSHDBs it before each
    // test, so files must not run at the same time.
    fileParallelism: false,
  },
});
