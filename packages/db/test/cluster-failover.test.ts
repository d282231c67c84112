/**
 * Live delivery on a Redis Cluster across two failovers and a reshard, on a cluster of this
 * file's own (3 masters + 3 replicas): a writer changes many accounts in every partition while a
 * subscriber watches them; `CLUSTER FAILOVER` on a replica, twice; then `redis-cli --cluster
 * reshard` moves 1000 slots. Every acknowledged write is in the logs, the subscriber sees every
 * logged event once, and a second subscriber (another "instance": its own client and feed) that
 * leaves mid-run and resumes from its cursor does too. With the catch-up switched off, events go
 * missing: the catch-up is what makes it lossless.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeDb,
  createAccount,
  createDb,
  lastEventId,
  partitionOf,
  PARTITIONS,
  readLogSince,
  updateProfile,
  type Db,
  type LiveItem,
} from '../src';
import { redisClusterToolsAvailable, startOwnedCluster, type OwnedCluster } from '../src/testing';
import { signsOf, waitUntil, watchLive } from './util';

const run = promisify(execFile);
const ci = process.env.CI === 'true';
const tools = redisClusterToolsAvailable();

const ACCOUNTS = Array.from({ length: 48 }, (_, i) => `fo${i}`);
const WRITES = 2400;

interface NodeInfo {
  id: string;
  address: string;
  master: boolean;
  masterId: string;
}

async function clusterNodes(address: string): Promise<NodeInfo[]> {
  const [host, port] = address.split(':');
  const redis = new Redis({ host: host!, port: Number(port) });
  try {
    const text = String(await redis.cluster('NODES'));
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id, addr, flags, masterId] = line.split(' ');
        return {
          id: id!,
          address: addr!.split('@')[0]!,
          master: flags!.includes('master'),
          masterId: masterId!,
        };
      });
  } finally {
    redis.disconnect();
  }
}

/** `CLUSTER FAILOVER` on the replica of the `k`-th master; resolves once it is master. */
async function failover(cluster: OwnedCluster, k: number): Promise<void> {
  const nodes = await clusterNodes(cluster.nodes[0]!);
  const masters = nodes.filter((n) => n.master).sort((a, b) => a.address.localeCompare(b.address));
  const withReplica = masters.filter((m) => nodes.some((n) => !n.master && n.masterId === m.id));
  const master = withReplica[k % withReplica.length];
  const replica = master && nodes.find((n) => !n.master && n.masterId === master.id);
  if (!replica) throw new Error('no master with a replica');
  const [host, port] = replica.address.split(':');
  const redis = new Redis({ host: host!, port: Number(port) });
  try {
    // A manual failover waits for the replica to catch up with its master; on a loaded machine
    // it can time out (nothing changes then): ask again.
    for (let attempt = 1; ; attempt++) {
      await redis.cluster('FAILOVER');
      try {
        await waitUntil(
          async () =>
            (await clusterNodes(replica.address)).find((n) => n.id === replica.id)!.master,
          `${replica.address} to take over`,
          15_000,
        );
        return;
      } catch (error) {
        if (attempt === 3) throw error;
      }
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * Moves 1000 slots from one master to another (`redis-cli --cluster reshard`), once
 * `redis-cli --cluster check` says the nodes agree (just after a failover they may not yet).
 */
async function reshard(cluster: OwnedCluster): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      await run('redis-cli', ['--cluster', 'check', cluster.nodes[0]!]);
      const masters = (await clusterNodes(cluster.nodes[0]!)).filter((n) => n.master);
      const [from, to] = [masters[0]!, masters[1]!];
      await run('redis-cli', [
        '--cluster',
        'reshard',
        from.address,
        '--cluster-from',
        from.id,
        '--cluster-to',
        to.id,
        '--cluster-slots',
        '1000',
        '--cluster-yes',
      ]);
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  const output = lastError as { stdout?: string; message?: string };
  throw new Error(`reshard failed: ${output.stdout?.slice(-800) ?? output.message}`);
}

const watch = (db: Db, lastEventId: string | null, catchUpOnReconnect = true) =>
  watchLive(db, { viewer: 'watcher', accounts: ACCOUNTS, lastEventId, catchUpOnReconnect });

describe.skipIf(!tools.available && !ci)('live delivery across failover and resharding', () => {
  let cluster: OwnedCluster;
  let prefixes = 0;

  beforeAll(async () => {
    if (!tools.available) throw new Error(`no Redis Cluster tools (${tools.detail}) and CI=true`);
    cluster = await startOwnedCluster();
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  /** The run: returns what the log holds since the start and what each subscriber saw. */
  async function scenario(catchUp: boolean) {
    const keyPrefix = `fo${process.pid}-${++prefixes}:`;
    const open = () => createDb({ clusterNodes: cluster.nodes, keyPrefix, commandTimeoutMs: 5000 });
    const writer = open();
    const instanceA = open();
    const instanceB = open();
    try {
      expect(new Set(ACCOUNTS.map(partitionOf)).size).toBe(PARTITIONS);
      await createAccount(writer, { account: 'watcher' });
      for (const account of ACCOUNTS) await createAccount(writer, { account });
      const start = await lastEventId(writer);
      const a = watch(instanceA, start, catchUp);
      let b = watch(instanceB, start, catchUp);
      let bBefore: LiveItem[] = [];
      const acked: string[] = [];
      const failed: string[] = [];
      let i = 0;
      const writing = (async () => {
        const lanes = Array.from({ length: 4 }, async () => {
          while (i < WRITES) {
            const k = i++;
            const account = ACCOUNTS[k % ACCOUNTS.length]!;
            const sign = `w${k}`;
            try {
              await updateProfile(writer, account, { sign });
              acked.push(`${account}:${sign}`);
            } catch {
              failed.push(`${account}:${sign}`);
            }
          }
        });
        await Promise.all(lanes);
      })();
      const reached = (n: number) =>
        waitUntil(() => Promise.resolve(acked.length >= n), `${n} acks`, 60_000);
      await reached(300);
      await failover(cluster, 0);
      await reached(700);
      await b.stop(); // the second subscriber leaves mid-run...
      bBefore = b.items;
      const bErrors = b.errors;
      const bCursor = bBefore.at(-1)!.id;
      if (catchUp) {
        // (Without catch-up one failover is enough to show events going missing.)
        await failover(cluster, 1);
        await reached(1200);
        await reshard(cluster);
      }
      b = watch(instanceB, bCursor, catchUp); // ...and resumes on its cursor
      await writing;

      // Everything the logs hold since the start, read after the writes.
      const logged: string[] = [];
      let cursor = start;
      for (;;) {
        const page = await readLogSince(writer, cursor, 1000);
        expect(page.gap).toBe(false);
        if (page.events.length === 0) break;
        for (const e of page.events) {
          if (e.account !== 'watcher') logged.push(`${e.account}:${e.profile.sign}`);
        }
        cursor = page.cursor;
      }
      const complete = (items: LiveItem[]) => signsOf(items).length >= logged.length;
      // Without catch-up the subscribers never complete: a short wait shows what arrived.
      const settle = catchUp ? 30_000 : 3_000;
      await waitUntil(() => Promise.resolve(complete(a.items)), 'subscriber A', settle).catch(
        () => undefined,
      );
      await waitUntil(
        () => Promise.resolve(signsOf(bBefore).length + signsOf(b.items).length >= logged.length),
        'subscriber B',
        settle,
      ).catch(() => undefined);
      await a.stop();
      await b.stop();
      return {
        acked,
        failed,
        logged,
        a: a.items,
        b: [...bBefore, ...b.items],
        errors: [...a.errors, ...bErrors, ...b.errors].map(String),
      };
    } finally {
      await Promise.all([closeDb(writer), closeDb(instanceA), closeDb(instanceB)]);
    }
  }

  it('two failovers and a reshard under load: nothing acknowledged is lost, nothing delivered twice or missed', async () => {
    const { acked, logged, a, b, errors } = await scenario(true);
    expect(errors, 'subscriptions ended by an error').toEqual([]);
    const inLog = new Set(logged);
    expect(
      acked.filter((w) => !inLog.has(w)),
      'acknowledged writes missing from the logs',
    ).toEqual([]);
    for (const [name, items] of [
      ['A', a],
      ['B (left and resumed)', b],
    ] as const) {
      const seen = signsOf(items);
      expect(
        items.filter((i) => i.type === 'resync'),
        `${name}: resync`,
      ).toEqual([]);
      expect(seen.length - new Set(seen).size, `${name}: delivered twice`).toBe(0);
      const got = new Set(seen);
      expect(
        logged.filter((w) => !got.has(w)),
        `${name}: missing`,
      ).toEqual([]);
      expect(
        seen.filter((w) => !inLog.has(w)),
        `${name}: not in the logs`,
      ).toEqual([]);
    }
  }, 420_000);

  it('with the catch-up switched off, the same run misses events (so the test above proves it)', async () => {
    const { logged, a } = await scenario(false);
    const got = new Set(signsOf(a));
    expect(logged.filter((w) => !got.has(w)).length).toBeGreaterThan(0);
  }, 420_000);
});
