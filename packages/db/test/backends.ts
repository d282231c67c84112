/**
 * Runs a block of tests twice: on ioredis-mock (memory mode) and on a real Redis.
 *
 * Each test gets a fresh, empty data set: a new memory name on the mock, a FLUSHDB of the test
 * database on the real server. `connect()` opens another client (its own connection) of that same
 * data set, as a second server process would. Reachability of the real Redis is decided once per
 * run, in global-setup.ts: unreachable means skipped (with a warning), or failed when CI=true.
 */
import { afterEach, beforeAll, beforeEach, describe, inject } from 'vitest';
import { closeDb, createDb, newMemoryName, type Db } from '../src';

export type BackendKind = 'memory' | 'redis';

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

export function describeEachBackend(name: string, fn: (backend: Backend) => void): void {
  const probe = inject('namecardRealRedis');
  const failUnreachable = !probe.reachable && process.env.CI === 'true';
  const specs: BackendSpec[] = [
    { kind: 'memory', label: 'ioredis-mock', skip: false },
    { kind: 'redis', label: `real Redis ${probe.url}`, skip: !probe.reachable && !failUnreachable },
  ];

  for (const spec of specs) {
    describe.skipIf(spec.skip)(`${name} [${spec.label}]`, () => {
      let memoryName = '';
      let current: Db | undefined;
      const opened: Db[] = [];

      const open = (options: { logMaxLen?: number } = {}): Db => {
        const db =
          spec.kind === 'memory'
            ? createDb({ memoryName, ...options })
            : createDb({ url: probe.url, ...options });
        opened.push(db);
        return db;
      };

      if (spec.kind === 'redis' && failUnreachable) {
        beforeAll(() => {
          throw new Error(
            `real Redis at ${probe.url} is unreachable (${probe.reason}) and CI=true: the real-Redis tests must run`,
          );
        });
      }

      beforeEach(async () => {
        memoryName = newMemoryName();
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
