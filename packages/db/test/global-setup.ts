import { type TestProject } from 'vitest/node';
import { resolveTestCluster, resolveTestRedis } from '../src/testing';
import { TEST_REDIS_DB } from './real-redis';

/**
 * Decides once per run where the real-Redis half of the suite runs: NAMECARD_TEST_REDIS_URL when
 * set, otherwise a redis-server of this run's own on a spare port (stopped at teardown). The
 * result reaches every test file through provide/inject.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [{ probe, owned }, cluster] = await Promise.all([
    resolveTestRedis(TEST_REDIS_DB),
    resolveTestCluster(),
  ]);
  if (cluster.nodes.length === 0) {
    if (process.env.CI === 'true') {
      console.error(
        `\n[namecard/db] no Redis Cluster (${cluster.reason}); CI=true, so the cluster tests will FAIL.\n`,
      );
    } else {
      console.warn(
        `\n[namecard/db] WARNING: Redis Cluster tests were SKIPPED (${cluster.reason}). ` +
          'Install redis-server and redis-cli or set NAMECARD_TEST_CLUSTER_NODES.\n',
      );
    }
  }
  project.provide('namecardCluster', { nodes: cluster.nodes, reason: cluster.reason });
  if (!probe.reachable) {
    if (process.env.CI === 'true') {
      console.error(
        `\n[namecard/db] real Redis (${probe.url}) is not available (${probe.reason}); CI=true, so the real-Redis tests will FAIL.\n`,
      );
    } else {
      console.warn(
        `\n[namecard/db] WARNING: real Redis tests were SKIPPED: ${probe.url} is not available (${probe.reason}). ` +
          `Only the ioredis-mock half of the suite ran. Install redis-server or set NAMECARD_TEST_REDIS_URL.\n`,
      );
    }
  }
  project.provide('namecardRealRedis', probe);
  return async () => {
    await Promise.all([owned?.stop(), cluster.owned?.stop()]);
  };
}
