/**
 * Resuming user.onChange with `lastEventId`: what was missed is replayed from the change log,
 * once each and in order, before `ready` and the live events; a log that no longer reaches back
 * (trimmed, or reset) gives `resync`; and the client's own reconnect (EventSource's
 * Last-Event-ID) resumes by itself after its connection is cut. Memory mode and real Redis.
 */
import {
  ALL_PARTITIONS,
  compareCursors,
  cursorAhead,
  cursorPosition,
  encodeCursor,
  keys,
  lastEventId,
  partitionOf,
  startPositions,
} from '@namecard/db';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { urlWithDb } from '@namecard/db/testing';
import {
  adminClient,
  describeRealRedis,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from './helpers';
import {
  describeItems,
  expectStrictlyIncreasingIds,
  liveClientFor,
  liveRedis,
  startTcpProxy,
  subscribeLive,
  waitFor,
  type LiveEnvelope,
  type LiveSubscription,
  type TcpProxy,
} from './live-helpers';

const RESUME_DB = 11;
const SMALL_LOG_DB = 12;
const RESET_DB = 13;

/** A server for one describe block, closed after it; every subscription ends after each test. */
function useLiveServer(options: () => TestServerOptions) {
  const state: { server: TestServer; subs: LiveSubscription[] } = {
    server: undefined as never,
    subs: [],
  };
  beforeAll(async () => {
    state.server = await startTestServer({ shutdownGraceMs: 300, ...options() });
  });
  afterEach(async () => {
    for (const s of state.subs.splice(0)) s.unsubscribe();
    const { feed } = state.server;
    await waitFor(
      () => feed.stats.listeners === 0,
      5000,
      () => `no listeners left, got ${JSON.stringify(feed.stats)}`,
    );
  });
  afterAll(async () => {
    await state.server?.close();
  });
  return {
    get server() {
      return state.server;
    },
    subscribe(...args: Parameters<typeof subscribeLive>) {
      const s = subscribeLive(...args);
      state.subs.push(s);
      return s;
    },
    as: (token: string) => liveClientFor(state.server.url, token),
  };
}

const summary = (items: readonly LiveEnvelope[]) =>
  items.map((i) =>
    i.data.type === 'profile' ? `${i.data.account}:${i.data.profile.sign}` : i.data.type,
  );

/** Subscribes, waits for `ready`, sees one live change of bob arrive, then unsubscribes; returns its id. */
async function subscribeAndLeave(
  ctx: ReturnType<typeof useLiveServer>,
  accounts: string[],
  tag: string,
): Promise<string> {
  const { server } = ctx;
  const first = ctx.subscribe(server.url, { token: server.tokens.alice, accounts });
  await first.waitForReady();
  await ctx.as(server.tokens.bob).user.updateMyInfo.mutate({ sign: `${tag} live` });
  await first.waitForProfile('bob', (p) => p.sign === `${tag} live`);
  const last = first.lastId();
  first.unsubscribe();
  await waitFor(() => server.feed.stats.listeners === 0, 5000, 'the first subscription to end');
  return last;
}

function resumeSuite(redisUrls?: { resume: string; smallLog: string; reset: string }) {
  describe('with the whole log', () => {
    const ctx = useLiveServer(() => (redisUrls ? { redisUrl: redisUrls.resume } : {}));
    let n = 0;
    async function newAccount(name: string) {
      const account = `${name}${++n}`;
      const { token } = await adminClient(ctx.server).admin.createAccount.mutate({
        account,
        profile: { email: `${account}@example.com`, tel: '+1-555-0199' },
      });
      return { account, client: ctx.as(token) };
    }

    it('replays every missed change of interest, once each, in order, then ready, then live ones', async () => {
      const { server } = ctx;
      const watched = await newAccount('watched');
      const stranger = await newAccount('stranger');
      const last = await subscribeAndLeave(ctx, [watched.account], 'r1');

      // Changes while away: friends, myself (another session), a watched account, a stranger.
      const writers = [
        { account: 'bob', client: ctx.as(server.tokens.bob) },
        { account: 'carol', client: ctx.as(server.tokens.carol) },
        { account: 'alice', client: ctx.as(server.tokens.alice) },
        watched,
        stranger,
      ];
      const expected: string[] = [];
      for (let i = 0; i < 15; i++) {
        const w = writers[i % writers.length]!;
        await w.client.user.updateMyInfo.mutate({ sign: `away ${i}` });
        if (w !== stranger) expected.push(`${w.account}:away ${i}`);
      }
      const newest = await lastEventId(server.db);

      const again = ctx.subscribe(server.url, {
        token: server.tokens.alice,
        accounts: [watched.account],
        lastEventId: last,
      });
      const ready = await again.waitForReady();
      expect(ready.id).toBe(newest);
      const replayed = again.items.slice(0, again.items.indexOf(ready));
      expect(summary(replayed), describeItems(again.items)).toEqual(expected);
      expect(replayed.every((i) => compareCursors(i.id, last) === 1)).toBe(true);
      expectStrictlyIncreasingIds(again.items);

      // Private fields in replayed events follow the same rule as live ones.
      const bobs = again.profiles('bob');
      expect(bobs.every((p) => p.profile.email === 'bob@example.com')).toBe(true);
      const watchedOnes = again.profiles(watched.account);
      expect(watchedOnes).toHaveLength(3);
      expect(watchedOnes.every((p) => !('email' in p.profile) && !('tel' in p.profile))).toBe(true);

      // Then live.
      await ctx.as(server.tokens.carol).user.updateMyInfo.mutate({ sign: 'after the resume' });
      await again.waitForProfile('carol', (p) => p.sign === 'after the resume');
      expect(summary(again.items.slice(again.items.indexOf(ready)))).toEqual([
        'ready',
        'carol:after the resume',
      ]);
      expectStrictlyIncreasingIds(again.items);
    });

    it('lastEventId equal to the newest id: nothing to replay, ready at once', async () => {
      const { server } = ctx;
      const last = await subscribeAndLeave(ctx, [], 'r2');
      expect(last).toBe(await lastEventId(server.db));
      const again = ctx.subscribe(server.url, { token: server.tokens.alice, lastEventId: last });
      await again.waitForReady();
      expect(again.items).toEqual([{ id: last, data: { type: 'ready' } }]);
    });

    it('an id of the old counter scheme, or one never handed out, gives resync', async () => {
      const { server } = ctx;
      // A small counter value, and a clock id from 2023 (before anything this data set logged).
      for (const old of ['5', '1700000000000000']) {
        const sub = ctx.subscribe(server.url, { token: server.tokens.alice, lastEventId: old });
        await sub.waitForReady();
        expect(
          sub.items.map((i) => i.data.type),
          old,
        ).toEqual(['resync', 'ready']);
      }
    });

    it('lastEventId beyond the newest id (a log that was reset) gives resync, then ready, then live', async () => {
      const { server } = ctx;
      const newest = await lastEventId(server.db);
      const future = cursorAhead(newest, 1000n);
      const sub = ctx.subscribe(server.url, { token: server.tokens.alice, lastEventId: future });
      await sub.waitForReady();
      expect(sub.items).toEqual([
        { id: newest, data: { type: 'resync' } },
        { id: newest, data: { type: 'ready' } },
      ]);
      await ctx.as(server.tokens.bob).user.updateMyInfo.mutate({ sign: 'after resync' });
      const got = await sub.waitForProfile('bob', (p) => p.sign === 'after resync');
      expect(compareCursors(got.id, newest)).toBe(1);
    });

    it("the client's own reconnect resumes from the last id after its connection is cut", async () => {
      const { server } = ctx;
      const proxy: TcpProxy = await startTcpProxy(server.port);
      try {
        const sub = ctx.subscribe(server.url, {
          token: server.tokens.alice,
          subscriptionUrl: proxy.url,
          retryMs: 50,
        });
        await sub.waitForReady();
        await ctx.as(server.tokens.bob).user.updateMyInfo.mutate({ sign: 'before the cut' });
        await sub.waitForProfile('bob', (p) => p.sign === 'before the cut');
        expect(sub.starts).toBe(1);

        // Cut the connection and keep the server unreachable while changes are made.
        proxy.setBlocked(true);
        proxy.dropAll();
        const expected: string[] = [];
        for (let i = 0; i < 6; i++) {
          const who = i % 2 === 0 ? 'bob' : 'carol';
          await ctx.as(server.tokens[who]).user.updateMyInfo.mutate({ sign: `while cut ${i}` });
          expected.push(`${who}:while cut ${i}`);
        }
        // The EventSource kept trying meanwhile (and was refused)...
        await waitFor(
          () => proxy.rejected() >= 2,
          5000,
          'reconnection attempts while the server is unreachable',
        );
        await waitFor(
          () => server.feed.stats.listeners === 0,
          5000,
          'the cut subscription to end on the server',
        );
        proxy.setBlocked(false);
        // ...and once it gets through, it resumes with Last-Event-ID: the missed changes, then ready.
        await sub.waitForReady(2, 5000);
        const secondReady = sub.items.filter((i) => i.data.type === 'ready')[1]!;
        const afterCut = sub.items.slice(sub.items.findIndex((i) => i.data.type === 'profile') + 1);
        expect(summary(afterCut), describeItems(sub.items)).toEqual([...expected, 'ready']);
        expect(secondReady.id).toBe(await lastEventId(server.db));
        expectStrictlyIncreasingIds(sub.items);
        expect(sub.errors).toEqual([]);

        await ctx.as(server.tokens.carol).user.updateMyInfo.mutate({ sign: 'live again' });
        await sub.waitForProfile('carol', (p) => p.sign === 'live again');
        expect(sub.items.filter((i) => i.data.type === 'resync')).toEqual([]);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('with a log of 10 events', () => {
    const ctx = useLiveServer(() => ({
      logMaxLen: 10,
      ...(redisUrls ? { redisUrl: redisUrls.smallLog } : {}),
    }));

    it('10 changes while away still fit: all replayed, no resync', async () => {
      const { server } = ctx;
      const last = await subscribeAndLeave(ctx, [], 's1');
      const bob = ctx.as(server.tokens.bob);
      for (let i = 0; i < 10; i++) await bob.user.updateMyInfo.mutate({ sign: `fits ${i}` });
      const again = ctx.subscribe(server.url, { token: server.tokens.alice, lastEventId: last });
      await again.waitForReady();
      expect(summary(again.items)).toEqual([
        ...Array.from({ length: 10 }, (_, i) => `bob:fits ${i}`),
        'ready',
      ]);
      expectStrictlyIncreasingIds(again.items);
    });

    it('11 or more changes while away: resync, then ready, then live events', async () => {
      const { server } = ctx;
      const last = await subscribeAndLeave(ctx, [], 's2');
      const bob = ctx.as(server.tokens.bob);
      for (let i = 0; i < 25; i++) await bob.user.updateMyInfo.mutate({ sign: `too many ${i}` });
      const newest = await lastEventId(server.db);
      const again = ctx.subscribe(server.url, { token: server.tokens.alice, lastEventId: last });
      await again.waitForReady();
      expect(again.items).toEqual([
        { id: newest, data: { type: 'resync' } },
        { id: newest, data: { type: 'ready' } },
      ]);
      await ctx.as(server.tokens.carol).user.updateMyInfo.mutate({ sign: 'live after resync' });
      await again.waitForProfile('carol', (p) => p.sign === 'live after resync');
      expect(summary(again.items)).toEqual(['resync', 'ready', 'carol:live after resync']);
    });

    it('exactly one event too many is already a resync', async () => {
      const { server } = ctx;
      const last = await subscribeAndLeave(ctx, [], 's3');
      const bob = ctx.as(server.tokens.bob);
      for (let i = 0; i < 11; i++)
        await bob.user.updateMyInfo.mutate({ sign: `one too many ${i}` });
      const again = ctx.subscribe(server.url, { token: server.tokens.alice, lastEventId: last });
      await again.waitForReady();
      expect(summary(again.items)).toEqual(['resync', 'ready']);
    });
  });

  describe('after the log was reset', () => {
    const ctx = useLiveServer(() => (redisUrls ? { redisUrl: redisUrls.reset } : {}));

    it('an id from the old log gives resync; the new log then goes on live', async () => {
      const { server } = ctx;
      const last = await subscribeAndLeave(ctx, [], 'reset');
      const bobs = partitionOf('bob');
      expect(cursorPosition(last, bobs)).toBeGreaterThan(0n);
      // The logs and their counters are gone (e.g. restored from an older backup of the data set).
      for (const p of ALL_PARTITIONS) await server.db.redis.del(keys.log(p), keys.logSeq(p));
      const again = ctx.subscribe(server.url, { token: server.tokens.alice, lastEventId: last });
      await again.waitForReady();
      const start = encodeCursor(startPositions());
      expect(again.items).toEqual([
        { id: start, data: { type: 'resync' } },
        { id: start, data: { type: 'ready' } },
      ]);
      await ctx.as(server.tokens.bob).user.updateMyInfo.mutate({ sign: 'first of the new log' });
      const got = await again.waitForProfile('bob', (p) => p.sign === 'first of the new log');
      // Never an id handed out before: ids follow Redis's clock, not a counter that was reset.
      expect(cursorPosition(got.id, bobs)).toBeGreaterThan(cursorPosition(last, bobs));
    });
  });
}

describe('resume [memory mode]', () => {
  resumeSuite();
});

describeRealRedis('resume', await liveRedis(RESUME_DB), (url) => {
  resumeSuite({
    resume: url,
    smallLog: urlWithDb(url, SMALL_LOG_DB),
    reset: urlWithDb(url, RESET_DB),
  });
});
