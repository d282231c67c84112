import { resolveTestCluster, resolveTestRedis, type RealRedisProbe } from '@namecard/db/testing';
import { type TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    namecardServerRedis: RealRedisProbe;
    namecardServerCluster: { nodes: string[]; reason: string };
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
  const [{ probe, owned }, cluster] = await Promise.all([
    resolveTestRedis(SERVER_TEST_DB),
    resolveTestCluster(),
  ]);
  if (cluster.nodes.length === 0) {
    const say = process.env.CI === 'true' ? console.error : console.warn;
    say(
      `\n[namecard/server] no Redis Cluster (${cluster.reason}): its tests ${process.env.CI === 'true' ? 'FAIL (CI=true)' : 'are SKIPPED'}.\n`,
    );
  }
  project.provide('namecardServerCluster', { nodes: cluster.nodes, reason: cluster.reason });
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
    await Promise.all([owned?.stop(), cluster.owned?.stop()]);
  };
}
