/**
 * Faults that lose messages or writes, driven on a redis-server of the test's own (spare port,
 * stopped by PID):
 *
 * - a friends notice lost while the pub/sub connection is down (CLIENT KILL) must not leave a
 *   subscriber seeing the private fields of an owner who removed it;
 * - a Redis that comes back from an older snapshot (kill -9, restart on the last RDB) has lost
 *   events subscribers saw: they get `resync`, and no event id is ever handed out twice;
 * - a reply lost in flight (a proxy that swallows replies, then drops the connection) makes
 *   ioredis resend the write after another write went through: it is applied once.
 */
import {
  addFriend,
  closeDb,
  createAccount,
  createDb,
  getProfile,
  keys,
  removeFriend,
  updateProfile,
  type Db,
  cursorPosition,
  partitionOf,
} from '@namecard/db';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { adminClient, describeRealRedis, startTestServer, type TestServer } from './helpers';
import {
  describeItems,
  expectStrictlyIncreasingIds,
  liveClientFor,
  redisServerBinary,
  useOwnRedisStack,
  startRedisServer,
  startTcpProxy,
  subscribeLive,
  waitFor,
  type LiveEnvelope,
  type LiveSubscription,
  type RedisProcess,
  type TcpProxy,
} from './live-helpers';

// Needs the redis-server binary: skipped (with a warning) without it, failing under CI=true.
const redisServer = redisServerBinary('lost-message tests');

/** A plain client of `url` for the test's own commands (CLIENT KILL, SAVE, ...). */
function rawRedis(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 5 });
  redis.on('error', () => undefined);
  return redis;
}

/**
 * Ids increase before the first resync and from it on; the resync itself carries the newest id
 * of the store that lost writes, which may be below the lost ones the subscriber saw.
 */
function expectIncreasingAroundResync(items: LiveEnvelope[]) {
  const at = items.findIndex((i) => i.data.type === 'resync');
  expect(at, 'a resync').toBeGreaterThan(0);
  expectStrictlyIncreasingIds(items.slice(0, at));
  expectStrictlyIncreasingIds(items.slice(at));
}

/** `n` changes of `account`'s sign (`<prefix> 0`...), one after another; their event ids. */
async function writeSigns(store: Db, account: string, prefix: string, n: number) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push((await updateProfile(store, account, { sign: `${prefix} ${i}` })).id);
  }
  return ids;
}

describeRealRedis('a friends notice lost in a reconnect', redisServer, () => {
  const stack = useOwnRedisStack();
  const subs: LiveSubscription[] = [];
  afterEach(() => {
    for (const s of subs.splice(0)) s.unsubscribe();
  });

  it('does not leak email and tel after a removal the subscriber missed', async () => {
    // (Failed before: the subscription kept "may see owner's private fields" until a friends
    // notice cleared it, and that notice was lost while the pub/sub connection was down.)
    const { redis, server } = stack;
    await adminClient(server).admin.createAccount.mutate({
      account: 'owner',
      profile: { email: 'owner@example.com', tel: '+1-555-0100' },
    });
    await addFriend(server.db, 'owner', 'alice');
    const alice = subscribeLive(server.url, { token: server.tokens.alice, accounts: ['owner'] });
    subs.push(alice);
    await alice.waitForReady();
    await updateProfile(server.db, 'owner', { email: 'shared@example.com' });
    const shared = await alice.waitForProfile('owner', (p) => p.email === 'shared@example.com');
    expect(shared.profile.tel).toBe('+1-555-0100');

    // One transaction: the server's pub/sub connection is killed, then the owner removes alice,
    // so the notice is published while nobody can hear it.
    const admin = rawRedis(redis.url);
    try {
      const killed = await admin
        .multi()
        .client('KILL', 'TYPE', 'pubsub')
        .srem(keys.friends('owner'), 'alice')
        .publish(keys.channel('owner'), JSON.stringify({ type: 'friends', account: 'owner' }))
        .exec();
      expect(killed?.[0]?.[1], 'pub/sub connections killed').toBeGreaterThan(0);
      expect(killed?.[1]?.[1], 'alice removed').toBe(1);
    } finally {
      admin.disconnect();
    }
    await updateProfile(server.db, 'owner', { email: 'private@example.com', sign: 'after' });
    const after = await alice.waitForProfile('owner', (p) => p.sign === 'after', 15_000);
    expect(after.profile).not.toHaveProperty('email');
    expect(after.profile).not.toHaveProperty('tel');
    const viaQuery = await liveClientFor(server.url, server.tokens.alice).user.getUser.query({
      account: 'owner',
    });
    expect(viaQuery).not.toHaveProperty('email');
    expectStrictlyIncreasingIds(alice.items);

    // Friends again: shown again (the answer is read from the store, not guessed).
    await addFriend(server.db, 'owner', 'alice');
    await updateProfile(server.db, 'owner', { sign: 'friends again' });
    const again = await alice.waitForProfile('owner', (p) => p.sign === 'friends again');
    expect(again.profile.email).toBe('private@example.com');
    // And removed once more, with the notice heard this time.
    await removeFriend(server.db, 'owner', 'alice');
    await updateProfile(server.db, 'owner', { sign: 'removed, heard' });
    const heard = await alice.waitForProfile('owner', (p) => p.sign === 'removed, heard');
    expect(heard.profile).not.toHaveProperty('email');
  }, 30_000);
});

describeRealRedis('Redis back from an older snapshot', redisServer, () => {
  const stack = useOwnRedisStack({ persistence: 'no' });

  it('subscribers that saw lost events get resync, and no id is handed out twice', async () => {
    // (Failed before: the INCR counter went back with the snapshot, the next writes reused the
    // ids of the lost events, and a subscriber resuming from one of them was replayed the rest
    // as if nothing had happened: no resync, the lost states kept, the new writes missed.)
    const { redis, server, store } = stack;
    const write = (prefix: string, n: number) => writeSigns(store, 'bob', prefix, n);
    const live = subscribeLive(server.url, { token: server.tokens.alice });
    const away = subscribeLive(server.url, { token: server.tokens.alice });
    try {
      await live.waitForReady();
      await away.waitForReady();
      const kept = await write('kept', 10);
      const admin = rawRedis(redis.url);
      try {
        expect(await admin.save()).toBe('OK');
      } finally {
        admin.disconnect();
      }
      const lost = await write('lost', 20);
      await live.waitForProfile('bob', (p) => p.sign === 'lost 19');
      await away.waitForProfile('bob', (p) => p.sign === 'lost 19');
      const awayLast = away.lastId();
      // (Its cursor's position in bob's partition is his last event's id.)
      expect(cursorPosition(awayLast, partitionOf('bob')).toString()).toBe(lost.at(-1));
      away.unsubscribe();

      await redis.kill9();
      await redis.start();
      await waitFor(
        async () => (await getProfile(store, 'bob'))?.sign === 'kept 9',
        10_000,
        'the store back on the snapshot',
      );
      const after = await write('after', 30);
      for (const id of after) {
        expect([...kept, ...lost], 'an id handed out twice').not.toContain(id);
        expect(BigInt(id)).toBeGreaterThan(BigInt(lost.at(-1)!));
      }

      // The subscriber that was connected through it: resync, then the new writes.
      await live.waitForProfile('bob', (p) => p.sign === 'after 29', 15_000);
      expect(live.items.filter((i) => i.data.type === 'resync').length).toBeGreaterThan(0);
      const seen = live.profiles().map((p) => p.id);
      expect(new Set(seen).size, `ids seen twice: ${describeItems(live.items)}`).toBe(seen.length);
      expectIncreasingAroundResync(live.items);

      // The one that was away resumes from a lost event: resync first, then live.
      const back = subscribeLive(server.url, { token: server.tokens.alice, lastEventId: awayLast });
      try {
        await back.waitForReady();
        expect(back.items.map((i) => i.data.type)).toEqual(['resync', 'ready']);
      } finally {
        back.unsubscribe();
      }
    } finally {
      live.unsubscribe();
      away.unsubscribe();
    }
  }, 60_000);
});

describeRealRedis('a write resent by ioredis after another write', redisServer, () => {
  let redis: RedisProcess;
  let proxy: TcpProxy;
  let viaProxy: Db;
  let direct: Db;

  beforeAll(async () => {
    redis = await startRedisServer();
    proxy = await startTcpProxy(redis.port);
    viaProxy = createDb({ url: `redis://127.0.0.1:${new URL(proxy.url).port}/1` });
    direct = createDb({ url: redis.url });
  });
  afterAll(async () => {
    if (viaProxy) await closeDb(viaProxy);
    if (direct) await closeDb(direct);
    await proxy?.close();
    await redis?.dispose();
  });

  it('is applied once: the later write stays', async () => {
    // (Failed before: the profile remembered only its last write id, so the resent write 1 was
    // applied over write 2, and both callers had been told their write succeeded.)
    await direct.redis.flushdb();
    await createAccount(direct, { account: 'dana', token: 'dana-token-0123456789' });
    expect(await viaProxy.redis.ping()).toBe('PONG');

    proxy.setSwallowReplies(true);
    const first = updateProfile(viaProxy, 'dana', { sign: 'one' });
    await waitFor(
      async () => (await getProfile(direct, 'dana'))?.sign === 'one',
      5000,
      'write 1 applied (its reply swallowed)',
    );
    const second = await updateProfile(direct, 'dana', { sign: 'two' });
    expect(second.profile.sign).toBe('two');

    // The connection drops; ioredis reconnects and resends write 1.
    proxy.setSwallowReplies(false);
    proxy.dropAll();
    const resent = await first;
    expect(resent.profile.sign).toBe('two');
    expect(await getProfile(direct, 'dana')).toMatchObject({ sign: 'two' });
    expect(proxy.accepted(), 'ioredis reconnected through the proxy').toBeGreaterThan(1);
  }, 30_000);
});

describeRealRedis('a replica promoted without the last writes', redisServer, () => {
  let master: RedisProcess;
  let replica: RedisProcess;
  let proxy: TcpProxy;
  let server: TestServer;
  let store: Db;

  beforeAll(async () => {
    master = await startRedisServer({ persistence: 'no' });
    replica = await startRedisServer({
      persistence: 'no',
      args: ['--replicaof', '127.0.0.1', String(master.port)],
    });
    const probe = rawRedis(replica.url);
    try {
      await waitFor(
        async () => /master_link_status:up/.test(await probe.info('replication')),
        10_000,
        'the replica to sync',
      );
    } finally {
      probe.disconnect();
    }
    // The API and the store reach "the master" through one address, as a failover moves it.
    proxy = await startTcpProxy(master.port);
    const url = `redis://127.0.0.1:${new URL(proxy.url).port}/1`;
    server = await startTestServer({ redisUrl: url, shutdownGraceMs: 300 });
    store = createDb({ url });
  });
  afterAll(async () => {
    await server?.close();
    if (store) await closeDb(store);
    await proxy?.close();
    await master?.dispose();
    await replica?.dispose();
  });

  it('gives resync to subscribers that saw lost events and never reuses an id', async () => {
    // (Failed before: the promoted replica's counter handed out the lost events' ids again.)
    const write = (prefix: string, n: number) => writeSigns(store, 'bob', prefix, n);
    const live = subscribeLive(server.url, { token: server.tokens.alice });
    try {
      await live.waitForReady();
      const kept = await write('kept', 10);
      const onMaster = rawRedis(master.url);
      const onReplica = rawRedis(replica.url);
      try {
        expect(await onMaster.wait(1, 5000)).toBe(1);
        // The replica stops following: what the master takes from now on, it never gets.
        await onReplica.replicaof('NO', 'ONE');
        const lost = await write('lost', 20);
        await live.waitForProfile('bob', (p) => p.sign === 'lost 19');

        // Failover: the address now leads to the replica, and the master dies.
        proxy.setTarget(replica.port);
        proxy.dropAll();
        await master.kill9();
        await waitFor(
          async () => (await getProfile(store, 'bob').catch(() => null))?.sign === 'kept 9',
          10_000,
          'the store on the promoted replica',
        );
        const after = await write('after', 30);
        for (const id of after) {
          expect([...kept, ...lost], 'an id handed out twice').not.toContain(id);
        }
        await live.waitForProfile('bob', (p) => p.sign === 'after 29', 15_000);
        expect(live.items.filter((i) => i.data.type === 'resync').length).toBeGreaterThan(0);
        const seen = live.profiles().map((p) => p.id);
        expect(new Set(seen).size, describeItems(live.items)).toBe(seen.length);
        expectIncreasingAroundResync(live.items);
      } finally {
        onMaster.disconnect();
        onReplica.disconnect();
      }
    } finally {
      live.unsubscribe();
    }
  }, 60_000);
});
