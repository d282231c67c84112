import { type TestProject } from 'vitest/node';
import { probeRealRedis, testDbNumber, testRedisUrl } from './real-redis';

export default async function setup(project: TestProject): Promise<void> {
  const url = testRedisUrl();
  testDbNumber(url); // refuses database 0 before anything connects
  const probe = await probeRealRedis(url);
  if (!probe.reachable) {
    if (process.env.CI === 'true') {
      console.error(
        `\n[namecard/db] real Redis at ${url} is unreachable (${probe.reason}); CI=true, so the real-Redis tests will FAIL.\n`,
      );
    } else {
      console.warn(
        `\n[namecard/db] WARNING: real Redis tests were SKIPPED: ${url} is unreachable (${probe.reason}). ` +
          `Only the ioredis-mock half of the suite ran. Start Redis or set NAMECARD_TEST_REDIS_URL.\n`,
      );
    }
  }
  project.provide('namecardRealRedis', probe);
}
