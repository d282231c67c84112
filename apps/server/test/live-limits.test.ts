/**
 * What live subscriptions may cost, on a redis-server of the test's own with two API instances:
 * a per-account limit on concurrent subscriptions held in Redis (so it holds across instances,
 * and a crashed instance's leases expire), no channels for watched accounts that do not exist,
 * and a resume that reads the watched accounts' own logs, not the global one.
 */
import {
  ALL_PARTITIONS,
  countSubscriptions,
  createAccount,
  createDb,
  closeDb,
  keys,
  lastEventId,
  takeSubscriptionLease,
  updateProfile,
} from '@namecard/db';
import { type Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRealRedis, startTestServer, type TestServer } from './helpers';
import {
  redisServerBinary,
  subscribeLive,
  useOwnRedisStack,
  waitFor,
  type LiveSubscription,
} from './live-helpers';

const redisServer = redisServerBinary('subscription limit tests');
const LIMIT = 3;

describeRealRedis('limits on live subscriptions', redisServer, () => {
  const stack = useOwnRedisStack({ server: { subscriptionsPerAccount: LIMIT } });
  let b: TestServer;
  beforeAll(async () => {
    b = await startTestServer({
      shareWith: stack.server,
      subscriptionsPerAccount: LIMIT,
      shutdownGraceMs: 300,
    });
  });
  afterAll(async () => {
    await b?.close();
  });

  const codeOf = (error: unknown) => (error as { data?: { code?: string } }).data?.code;

  it(`one account holds at most ${LIMIT} subscriptions across both instances`, async () => {
    // (Failed before: one account opened 2,000.)
    const a = stack.server;
    const subs: LiveSubscription[] = [];
    try {
      for (const server of [a, a, b]) {
        const s = subscribeLive(server.url, { token: a.tokens.alice });
        subs.push(s);
        await s.waitForReady();
      }
      expect(await countSubscriptions(stack.store, 'alice')).toBe(LIMIT);
      const over = subscribeLive(b.url, { token: a.tokens.alice });
      subs.push(over);
      expect(codeOf(await over.waitForError())).toBe('TOO_MANY_REQUESTS');
      expect(over.items).toEqual([]);
      // Another account is not affected.
      const bob = subscribeLive(b.url, { token: a.tokens.bob });
      subs.push(bob);
      await bob.waitForReady();

      // Ending one frees its place, on any instance.
      subs[0]!.unsubscribe();
      await waitFor(
        async () => (await countSubscriptions(stack.store, 'alice')) === LIMIT - 1,
        5000,
        'the lease to be released',
      );
      const again = subscribeLive(b.url, { token: a.tokens.alice });
      subs.push(again);
      await again.waitForReady();
    } finally {
      for (const s of subs) s.unsubscribe();
    }
  });

  it("a crashed instance's subscriptions stop counting once their leases expire", async () => {
    const a = stack.server;
    const crashed = createDb({ url: stack.redis.url, subscriptionsPerAccount: LIMIT });
    for (let i = 0; i < LIMIT; i++) await takeSubscriptionLease(crashed, 'carol', 3000);
    const refused = subscribeLive(a.url, { token: a.tokens.carol });
    try {
      expect(codeOf(await refused.waitForError())).toBe('TOO_MANY_REQUESTS');
    } finally {
      refused.unsubscribe();
    }
    // The instance dies: nothing renews its leases and nothing releases them.
    await closeDb(crashed);
    await waitFor(
      async () => (await countSubscriptions(stack.store, 'carol')) === 0,
      15_000,
      'the leases to expire',
    );
    const accepted = subscribeLive(a.url, { token: a.tokens.carol });
    try {
      await accepted.waitForReady();
    } finally {
      accepted.unsubscribe();
    }
  });

  it('watched accounts that do not exist get no channel', async () => {
    // (Failed before: 1,000 subscriptions watching 500 made-up accounts made 500,001 channels.)
    const a = stack.server;
    const madeUp = Array.from({ length: 149 }, (_, i) => `nobody-${i}`);
    await createAccount(stack.store, { account: 'somebody' });
    const sub = subscribeLive(a.url, {
      token: a.tokens.alice,
      accounts: [...madeUp, 'somebody'],
    });
    try {
      await sub.waitForReady();
      // alice, her friends bob and carol, and the one watched account that exists.
      expect(a.feed.stats).toEqual({ listeners: 1, channels: 4 });
      const channels = (await stack.store.redis.pubsub('CHANNELS', 'nc:*')) as string[];
      expect(channels.filter((c) => c.includes('nobody-'))).toEqual([]);
      await updateProfile(stack.store, 'somebody', { sign: 'watched' });
      await sub.waitForProfile('somebody', (p) => p.sign === 'watched');
    } finally {
      sub.unsubscribe();
    }
  });

  it("a resume reads the watched accounts' own logs, not the partitions' logs", async () => {
    // (Failed before: resuming scanned the global log from lastEventId, whatever was watched.)
    const a = stack.server;
    await createAccount(stack.store, { account: 'noise' });
    const from = await lastEventId(stack.store);
    for (let i = 0; i < 300; i++) await updateProfile(stack.store, 'noise', { sign: `n${i}` });
    for (let i = 0; i < 3; i++) await updateProfile(stack.store, 'bob', { sign: `missed ${i}` });

    const seen: string[][] = [];
    const monitor: Redis = await stack.store.redis.monitor();
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(args));
    try {
      const sub = subscribeLive(a.url, { token: a.tokens.alice, lastEventId: from });
      try {
        await sub.waitForReady();
        expect(sub.profiles().map((p) => `${p.account}:${p.profile.sign}`)).toEqual([
          'bob:missed 0',
          'bob:missed 1',
          'bob:missed 2',
        ]);
      } finally {
        sub.unsubscribe();
      }
    } finally {
      monitor.disconnect();
    }
    const touching = (key: string) => seen.filter((args) => args.slice(1).includes(key));
    // The partitions' logs: only the exact existence check of the resume point, once for each
    // partition the cursor has a position in.
    const checks = ALL_PARTITIONS.flatMap((p) =>
      touching(keys.log(p)).map((args) => args[0]?.toLowerCase()),
    );
    expect(checks.length).toBeGreaterThan(0);
    expect(new Set(checks)).toEqual(new Set(['zcount']));
    expect(touching(keys.accountLog('noise'))).toEqual([]);
    // bob's log once; alice's and carol's at most once (not at all when nothing was written to
    // their partitions since the cursor).
    expect(touching(keys.accountLog('bob')).length).toBe(1);
    for (const account of ['alice', 'carol']) {
      expect(touching(keys.accountLog(account)).length, account).toBeLessThanOrEqual(1);
    }
  });
});
