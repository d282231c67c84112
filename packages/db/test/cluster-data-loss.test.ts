/**
 * A failover that loses acknowledged writes, on a Redis Cluster of this file's own (3 masters +
 * 3 replicas). One shard stops replicating: its replica's process is frozen (SIGSTOP) and its
 * master drops the replica's link (`CLIENT KILL TYPE replica`), so nothing more reaches the
 * replica, not even through the socket's buffers. The master acknowledges more writes (a
 * subscriber sees them live), dies (SIGKILL), and the replica takes over without them (`CLUSTER
 * FAILOVER TAKEOVER`). The subscriber watching that shard gets `resync` and then live events
 * again; no id is handed out twice; a subscriber on another instance watching only other shards
 * sees every one of its events once, and nothing else.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeDb,
  createAccount,
  createDb,
  getProfile,
  keys,
  PARTITION_SLOTS,
  partitionOf,
  updateProfile,
  type Db,
  type LiveItem,
} from '../src';
import { redisClusterToolsAvailable, startOwnedCluster, type OwnedCluster } from '../src/testing';
import { signsOf, waitUntil, watchLive } from './util';

const ci = process.env.CI === 'true';
const tools = redisClusterToolsAvailable();
const ACCOUNTS = Array.from({ length: 48 }, (_, i) => `dl${i}`);
const PREFIX = 'dl:';

const client = (address: string) => {
  const [host, port] = address.split(':');
  return new Redis({ host: host!, port: Number(port), retryStrategy: () => null });
};

async function withClient<T>(address: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = client(address);
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** The master serving a slot, its slot ranges and its replica, as `host:port`. */
async function shardOf(cluster: OwnedCluster, slot: number) {
  const ranges = await withClient(cluster.nodes[0]!, (r) => r.cluster('SLOTS'));
  const owner = ranges.find(([from, to]) => from <= slot && slot <= to)?.[2];
  if (!owner) throw new Error(`slot ${slot}: no master`);
  const master = `${owner[0]}:${owner[1]}`;
  const mine = ranges.filter(([, , m]) => m !== undefined && `${m[0]}:${m[1]}` === master);
  for (const node of cluster.nodes) {
    const role = await withClient<unknown[]>(node, (r) => r.role());
    if (role[0] === 'slave' && `${String(role[1])}:${String(role[2])}` === master) {
      return {
        master,
        replica: node,
        owns: (s: number) => mine.some(([from, to]) => from <= s && s <= to),
      };
    }
  }
  throw new Error(`no replica of ${master}`);
}

/** A live subscription (an API instance's), with what it saw to show in a failure. */
function subscribe(db: Db, viewer: string, accounts: string[], catchUpOnReconnect = true) {
  const watcher = watchLive(db, { viewer, accounts, catchUpOnReconnect });
  const describe = () =>
    `items: ${JSON.stringify(watcher.items.map((i) => (i.type === 'profile' ? `${i.account}:${i.profile.sign}` : i.type)))}; errors: ${watcher.errors.map(String).join('; ')}`;
  return { ...watcher, signs: () => signsOf(watcher.items), describe };
}

describe.skipIf(!tools.available && !ci)('a failover that lost acknowledged writes', () => {
  const clusters: OwnedCluster[] = [];

  beforeAll(() => {
    if (!tools.available) throw new Error(`no Redis Cluster tools (${tools.detail}) and CI=true`);
  });

  afterAll(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  });

  /**
   * The whole run on a cluster of its own (a shard loses its master for good). Returns the
   * affected subscriber's items up to (and with) the first live change written after the
   * failover.
   */
  async function scenario(catchUp: boolean): Promise<LiveItem[]> {
    const cluster = await startOwnedCluster();
    clusters.push(cluster);
    // Two API instances: each its own client and feed.
    const db = createDb({ clusterNodes: cluster.nodes, keyPrefix: PREFIX, commandTimeoutMs: 5000 });
    const other = createDb({ clusterNodes: cluster.nodes, keyPrefix: PREFIX });
    const shard = await shardOf(cluster, PARTITION_SLOTS[partitionOf('dl0')]!);
    const onShard = (account: string) => shard.owns(PARTITION_SLOTS[partitionOf(account)]!);
    const [victim, otherViewer, ...elsewhere] = [
      'dl0',
      ...ACCOUNTS.filter((a) => !onShard(a)).slice(0, 4),
    ] as [string, string, ...string[]];
    const viewer = ACCOUNTS.find((a) => a !== victim && onShard(a))!;
    let affected: ReturnType<typeof subscribe> | undefined;
    let unaffected: ReturnType<typeof subscribe> | undefined;
    try {
      for (const account of ACCOUNTS) await createAccount(db, { account });
      await updateProfile(db, victim, { sign: 'kept' });
      // The replica has everything so far.
      await withClient(shard.master, (direct) =>
        waitUntil(
          async () => {
            const info = await direct.info('replication');
            const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
            return offset !== undefined && /slave0:.*offset=(\d+)/.exec(info)?.[1] === offset;
          },
          () => 'the replica to catch up',
        ),
      );

      affected = subscribe(db, viewer, [victim], catchUp);
      unaffected = subscribe(other, otherViewer, elsewhere);
      await waitUntil(
        () => affected!.items.length > 0 && unaffected!.items.length > 0,
        () => 'both subscriptions ready',
      );
      const expectedElsewhere: string[] = [];
      const writeElsewhere = async (sign: string) => {
        for (const account of elsewhere) {
          await updateProfile(db, account, { sign });
          expectedElsewhere.push(`${account}:${sign}`);
        }
      };
      await writeElsewhere('before');

      // Replication of the shard stops: the replica is frozen and its link dropped.
      const frozen = cluster.processes.get(shard.replica)!;
      process.kill(frozen.pid, 'SIGSTOP');
      const lost: string[] = [];
      try {
        await withClient(shard.master, (r) => r.client('KILL', 'TYPE', 'replica'));
        // The master acknowledges writes the replica never gets; the subscriber sees them live.
        for (let i = 0; i < 5; i++) {
          lost.push((await updateProfile(db, victim, { sign: `lost ${i}` })).id);
        }
        await writeElsewhere('during');
        await waitUntil(
          () => affected!.signs().includes(`${victim}:lost 4`),
          () => `the lost writes live (${affected!.describe()})`,
        );
        // The master dies; the replica takes over without those writes.
        process.kill(cluster.processes.get(shard.master)!.pid, 'SIGKILL');
        await cluster.processes.get(shard.master)!.stop();
      } finally {
        process.kill(frozen.pid, 'SIGCONT');
      }
      await withClient(shard.replica, async (promote) => {
        await waitUntil(
          async () => {
            const role = await promote.role();
            if (role[0] === 'master') return true;
            await promote.cluster('FAILOVER', 'TAKEOVER').catch(() => undefined);
            return false;
          },
          () => `${shard.replica} to take over`,
        );
      });

      // The writes are gone from the store (so the test is about a real loss).
      await waitUntil(
        async () => (await getProfile(db, victim).catch(() => null))?.sign === 'kept',
        () => 'the new master to answer without the lost writes',
      );
      let after: string | null = null;
      await waitUntil(
        async () => {
          after = await updateProfile(db, victim, { sign: 'after' }).then(
            (e) => e.id,
            () => null,
          );
          return after !== null;
        },
        () => 'writes to go through on the new master',
      );
      // No id handed out twice: the new master's ids are past every lost one.
      expect(lost).not.toContain(after);
      for (const id of lost) expect(BigInt(after!)).toBeGreaterThan(BigInt(id));
      const logged = await withClient(shard.replica, (r) =>
        r.zrangebyscore(PREFIX + keys.log(partitionOf(victim)), '-inf', '+inf', 'WITHSCORES'),
      );
      const loggedIds = logged.filter((_, i) => i % 2 === 1);
      expect(new Set(loggedIds).size).toBe(loggedIds.length);
      for (const id of lost) expect(loggedIds).not.toContain(id);

      // The shard's subscriber hears live changes again (with the catch-up: after a resync).
      await waitUntil(
        async () => {
          if (affected!.signs().includes(`${victim}:again`)) return true;
          await updateProfile(db, victim, { sign: 'again' }).catch(() => undefined);
          return false;
        },
        () => `live events after the failover (${affected!.describe()})`,
      );

      // The other instance's subscriber saw each of its events once, in order, and nothing else.
      await writeElsewhere('still fine');
      await waitUntil(
        () => unaffected!.signs().length >= expectedElsewhere.length,
        () => `the other subscriber's events (${unaffected!.describe()})`,
      );
      expect(unaffected.signs()).toEqual(expectedElsewhere);
      expect(unaffected.items.map((i) => i.type)).toEqual([
        'ready',
        ...expectedElsewhere.map(() => 'profile'),
      ]);
      expect([...affected.errors, ...unaffected.errors]).toEqual([]);
      const items = [...affected.items];
      return items.slice(
        0,
        items.findIndex((i) => i.type === 'profile' && i.profile.sign === 'again') + 1,
      );
    } finally {
      await affected?.stop();
      await unaffected?.stop();
      await Promise.all([closeDb(db), closeDb(other)]);
    }
  }

  it("resync for that shard's subscribers, then live events; no id handed out twice; others unaffected", async () => {
    const items = await scenario(true);
    const lastLost = items.findLastIndex(
      (i) => i.type === 'profile' && i.profile.sign === 'lost 4',
    );
    const after = items.slice(lastLost + 1);
    // The states the subscriber holds (lost 0..4) no longer exist: it is told so before
    // anything else, and then hears changes again.
    expect(after.map((i) => i.type)).toEqual(['resync', ...after.slice(1).map(() => 'profile')]);
    expect(after.at(-1)).toMatchObject({ type: 'profile', account: 'dl0' });
  }, 300_000);

  it('with the catch-up switched off, the subscriber silently keeps the lost states (so the test above proves it)', async () => {
    const items = await scenario(false);
    expect(items.filter((i) => i.type === 'resync')).toEqual([]);
  }, 300_000);
});
