/**
 * Runs a block of tests three times: on ioredis-mock (memory mode), on a real Redis and on a
 * Redis Cluster (3 masters + 3 replicas).
 *
 * Each test gets a fresh, empty data set: a new memory name on the mock, a FLUSHDB of the test
 * database on the real server, a key prefix of its own on the cluster (which has only database
 * 0; nothing is flushed). `connect()` opens another client (its own connection) of that same
 * data set, as a second server process would. Reachability of the real Redis is decided once per
 * run, in global-setup.ts: unreachable means skipped (with a warning), or failed when CI=true.
 */
import { afterEach, beforeAll, beforeEach, describe, inject } from 'vitest';
import { closeDb, createDb, newMemoryName, type Db } from '../src';

export type BackendKind = 'memory' | 'redis' | 'cluster';

export interface Backend {
  readonly kind: BackendKind;
  /** This test's store handle, on a fresh, empty data set. */
  readonly db: Db;
  /** Another client of the same data set on its own connection (e.g. with a small logMaxLen). */
  connect(options?: { logMaxLen?: number }): Db;
}

interface BackendSpec {
  kind: BackendKind;
  label: string;
  skip: boolean;
}

let prefixes = 0;

export function describeEachBackend(
  name: string,
  fn: (backend: Backend) => void,
  /** The backends to run on (default: all three). */
  kinds: readonly BackendKind[] = ['memory', 'redis', 'cluster'],
): void {
  const probe = inject('namecardRealRedis');
  const cluster = inject('namecardCluster');
  const ci = process.env.CI === 'true';
  const failUnreachable = !probe.reachable && ci;
  const noCluster = cluster.nodes.length === 0;
  const specs: BackendSpec[] = [
    { kind: 'memory', label: 'ioredis-mock', skip: false },
    { kind: 'redis', label: `real Redis ${probe.url}`, skip: !probe.reachable && !failUnreachable },
    {
      kind: 'cluster',
      label: `Redis Cluster ${cluster.nodes[0] ?? '(none)'}`,
      skip: noCluster && !ci,
    },
  ];

  for (const spec of specs.filter((s) => kinds.includes(s.kind))) {
    describe.skipIf(spec.skip)(`${name} [${spec.label}]`, () => {
      let memoryName = '';
      let keyPrefix = '';
      let current: Db | undefined;
      const opened: Db[] = [];

      const open = (options: { logMaxLen?: number } = {}): Db => {
        const db =
          spec.kind === 'memory'
            ? createDb({ memoryName, ...options })
            : spec.kind === 'cluster'
              ? createDb({ clusterNodes: cluster.nodes, keyPrefix, ...options })
              : createDb({ url: probe.url, ...options });
        opened.push(db);
        return db;
      };

      if (spec.kind === 'cluster' && noCluster && ci) {
        beforeAll(() => {
          throw new Error(
            `no Redis Cluster (${cluster.reason}) and CI=true: the cluster tests must run`,
          );
        });
      }

      if (spec.kind === 'redis' && failUnreachable) {
        beforeAll(() => {
          throw new Error(
            `real Redis at ${probe.url} is unreachable (${probe.reason}) and CI=true: the real-Redis tests must run`,
          );
        });
      }

      beforeEach(async () => {
        memoryName = newMemoryName();
        keyPrefix = `t${process.pid}-${++prefixes}:`;
        current = open();
        if (spec.kind === 'redis') await current.redis.flushdb();
      });

      afterEach(async () => {
        if (spec.kind === 'memory' && current) await current.redis.flushdb();
        current = undefined;
        await Promise.all(opened.splice(0).map((db) => closeDb(db)));
      });

      fn({
        kind: spec.kind,
        get db(): Db {
          if (!current) throw new Error('backend.db is only available inside a test');
          return current;
        },
        connect: open,
      });
    });
  }
}
