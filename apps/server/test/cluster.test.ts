/**
 * The API on a Redis Cluster (3 masters + 3 replicas of the suite's own): writes in one slot,
 * tokens and sessions on any node, batch reads and search across every node, live delivery
 * across two instances and resuming on the other, /healthz that sees a shard that does not
 * answer. The same calls answer the same on a memory-mode server with the same data.
 */
import { PARTITION_SLOTS, partitionOf, PARTITIONS } from '@namecard/db';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  adminClient,
  clientFor,
  demoClient,
  describeCluster,
  expectTRPCError,
  startTestServer,
  type TestServer,
} from './helpers';
import { expectStrictlyIncreasingIds, subscribeLive, waitFor } from './live-helpers';

const USERS = Array.from({ length: 96 }, (_, i) => `cl${String(i).padStart(3, '0')}`);

/** Creates the same 96 accounts (nicks share prefixes) through the admin API. */
async function populate(server: TestServer) {
  const admin = adminClient(server);
  for (const account of USERS) {
    await admin.admin.createAccount.mutate({
      account,
      token: `${account}-token-0123456789`,
      profile: { nick: `Team ${account.slice(2, 4)} ${account}` },
    });
  }
}

describeCluster('the API on a Redis Cluster', (nodes) => {
  let a: TestServer;
  let b: TestServer;
  let memory: TestServer;

  beforeAll(async () => {
    a = await startTestServer({ clusterNodes: nodes });
    b = await startTestServer({ shareWith: a });
    memory = await startTestServer();
    await Promise.all([populate(a), populate(memory)]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), memory?.close()]);
  });

  it('spreads the accounts over every partition, and every call that reads many of them works', async () => {
    expect(new Set(USERS.map(partitionOf)).size).toBe(PARTITIONS);
    const alice = demoClient(a, 'alice');
    const profiles = await alice.user.getUsers.query({ accounts: [...USERS].reverse() });
    expect(profiles.map((p) => p.account)).toEqual([...USERS].reverse());
    // Through the other instance, too.
    expect(
      await demoClient(b, 'alice').user.getUsers.query({ accounts: USERS.slice(0, 5) }),
    ).toEqual(profiles.slice(-5).reverse());
  });

  it('search pages and cursors are the same as on one data set in memory', async () => {
    const walk = async (server: TestServer) => {
      const client = demoClient(server, 'alice');
      const pages: { accounts: string[]; nextCursor: string | null }[] = [];
      let cursor: string | null = null;
      do {
        const page: { users: { account: string }[]; nextCursor: string | null } =
          await client.user.search.query({
            query: 'team',
            limit: 7,
            ...(cursor ? { cursor } : {}),
          });
        pages.push({ accounts: page.users.map((u) => u.account), nextCursor: page.nextCursor });
        cursor = page.nextCursor;
      } while (cursor && pages.length < 50);
      return pages;
    };
    const onCluster = await walk(a);
    expect(onCluster.flatMap((p) => p.accounts).sort()).toEqual(USERS);
    expect(onCluster).toEqual(await walk(memory));
  });

  it('tokens and sessions work whichever node holds them; a bad one is UNAUTHORIZED, never 500', async () => {
    for (const account of USERS.slice(0, 20)) {
      const me = await clientFor(a.url, {
        token: `${account}-token-0123456789`,
      }).user.getMyInfo.query();
      expect(me.account).toBe(account);
    }
    await expectTRPCError(
      clientFor(a.url, { token: 'no-such-token-0123456789' }).user.getMyInfo.query(),
      'UNAUTHORIZED',
    );
    let cookie = '';
    await clientFor(b.url, {
      onResponse: (response) => {
        cookie ||= response.headers.get('set-cookie')?.split(';')[0] ?? '';
      },
    }).auth.signIn.mutate({ account: 'cl007', token: 'cl007-token-0123456789' });
    expect(cookie).toMatch(/=/);
    expect((await clientFor(a.url, { cookie }).user.getMyInfo.query()).account).toBe('cl007');
    await expectTRPCError(
      clientFor(a.url).auth.signIn.mutate({ account: 'cl007', token: 'wrong-token-0123456789' }),
      'UNAUTHORIZED',
    );
  });

  it('live changes written through A reach a subscriber on B; it resumes on A from its cursor', async () => {
    const watched = USERS.filter((_, i) => i % 4 === 0);
    const sub = subscribeLive(b.url, { token: a.tokens.alice, accounts: watched });
    try {
      await sub.waitForReady();
      const writer = adminClient(a);
      for (const [i, account] of watched.entries()) {
        await writer.admin.updateUser.mutate({ account, patch: { sign: `first ${i}` } });
      }
      for (const [i, account] of watched.entries()) {
        await sub.waitForProfile(account, (p) => p.sign === `first ${i}`);
      }
      expectStrictlyIncreasingIds(sub.items);
      const last = sub.lastId();
      sub.unsubscribe();

      for (const [i, account] of watched.entries()) {
        await writer.admin.updateUser.mutate({ account, patch: { sign: `away ${i}` } });
      }
      const back = subscribeLive(a.url, {
        token: a.tokens.alice,
        accounts: watched,
        lastEventId: last,
      });
      try {
        await back.waitForReady();
        const replayed = back.profiles().map((p) => `${p.account}:${p.profile.sign}`);
        expect(replayed.sort()).toEqual(watched.map((account, i) => `${account}:away ${i}`).sort());
        expect(back.items.filter((i) => i.data.type === 'resync')).toEqual([]);
        expectStrictlyIncreasingIds(back.items);
      } finally {
        back.unsubscribe();
      }
    } finally {
      sub.unsubscribe();
    }
  });

  it('sync pages friends across partitions and its cursor resumes the subscription', async () => {
    const alice = demoClient(a, 'alice');
    for (const friend of USERS.slice(0, 12)) await alice.friend.add.mutate({ account: friend });
    const first = await alice.user.sync.query({});
    expect(first.users.map((u) => u.account)).toEqual(expect.arrayContaining(USERS.slice(0, 12)));
    await adminClient(a).admin.updateUser.mutate({ account: 'cl003', patch: { sign: 'synced' } });
    const second = await alice.user.sync.query({ since: first.cursor });
    expect(second.users.map((u) => u.account)).toEqual(['cl003']);
    expect(second.full).toBe(false);
  });

  it('/healthz is 503 while a master does not answer, and ok again after', async () => {
    const ok = await fetch(`${a.url}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ok', redis: true });
    // Pause every client of the master of cl000's partition (the cluster bus goes on, so no
    // failover): its PING goes unanswered.
    const masterOf = await masterServing(nodes, 'cl000');
    const admin = new Redis(masterOf);
    try {
      await admin.client('PAUSE', 3000, 'ALL');
      const degraded = await fetch(`${a.url}/healthz`);
      expect(degraded.status).toBe(503);
      expect(await degraded.json()).toMatchObject({ status: 'degraded', redis: false });
    } finally {
      await admin.client('UNPAUSE').catch(() => undefined);
      admin.disconnect();
    }
    await waitFor(
      async () => (await fetch(`${a.url}/healthz`)).status === 200,
      15_000,
      '/healthz ok again',
    );
  });
});

/** `host:port` of the master that serves an account's partition now. */
async function masterServing(nodes: readonly string[], account: string): Promise<string> {
  const [host, port] = nodes[0]!.split(':');
  const redis = new Redis({ host: host!, port: Number(port) });
  try {
    const slot = PARTITION_SLOTS[partitionOf(account)]!;
    const ranges = await redis.cluster('SLOTS');
    const master = ranges.find(([from, to]) => from <= slot && slot <= to)?.[2];
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return `redis://${master[0]}:${master[1]}`;
  } finally {
    redis.disconnect();
  }
}
