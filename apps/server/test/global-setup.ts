import { resolveTestRedis, type RealRedisProbe } from '@namecard/db/testing';
import { type TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    namecardServerRedis: RealRedisProbe;
  }
}

/** Database 8 of the suite's Redis (the live test files use others of the same server). */
const SERVER_TEST_DB = 8;

/**
 * Decides once per run where the real-Redis tests run: NAMECARD_TEST_REDIS_URL when set,
 * otherwise a redis-server of this run's own on a spare port, stopped at teardown. So `npm test`
 * never flushes the developer's Redis, and this suite and packages/db's (each with its own
 * server) can run at the same time.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { probe, owned } = await resolveTestRedis(SERVER_TEST_DB);
  if (!probe.reachable) {
    if (process.env.CI === 'true') {
      console.error(
        `\n[namecard/server] real Redis (${probe.url}) is not available (${probe.reason}); CI=true, so its tests FAIL.\n`,
      );
    } else {
      console.warn(
        `\n[namecard/server] WARNING: real-Redis tests SKIPPED: ${probe.url} is not available (${probe.reason}). ` +
          'Install redis-server or set NAMECARD_TEST_REDIS_URL.\n',
      );
    }
  }
  project.provide('namecardServerRedis', probe);
  return async () => {
    await owned?.stop();
  };
}
