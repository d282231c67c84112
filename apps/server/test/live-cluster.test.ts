/**
 * Two Namecard server instances on one real Redis (as behind a load balancer): a change made
 * through either reaches subscribers connected to the other, and a subscription can be resumed
 * on the other instance.
 */
import { lastEventId } from '@namecard/db';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeRealRedis, startTestServer, type TestServer } from './helpers';
import {
  describeItems,
  expectStrictlyIncreasingIds,
  liveClientFor,
  liveRedis,
  subscribeLive,
  waitFor,
  type LiveSubscription,
} from './live-helpers';

const CLUSTER_DB = 10;

describeRealRedis('two instances on one Redis', await liveRedis(CLUSTER_DB), (url) => {
  let a: TestServer;
  let b: TestServer;
  const subs: LiveSubscription[] = [];
  const subscribe = (...args: Parameters<typeof subscribeLive>) => {
    const s = subscribeLive(...args);
    subs.push(s);
    return s;
  };

  beforeAll(async () => {
    a = await startTestServer({ redisUrl: url, shutdownGraceMs: 300 });
    b = await startTestServer({ shareWith: a, shutdownGraceMs: 300 });
  });
  afterEach(async () => {
    for (const s of subs.splice(0)) s.unsubscribe();
    await waitFor(
      () => a.feed.stats.listeners === 0 && b.feed.stats.listeners === 0,
      5000,
      () =>
        `no listeners left, got A ${JSON.stringify(a.feed.stats)}, B ${JSON.stringify(b.feed.stats)}`,
    );
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('two instances: their own ports, connections and feeds, the same data', async () => {
    expect(a.port).not.toBe(b.port);
    expect(a.db.redis).not.toBe(b.db.redis);
    expect(a.feed).not.toBe(b.feed);
    const fromB = await liveClientFor(b.url, a.tokens.alice).user.getMyInfo.query();
    expect(fromB.account).toBe('alice');
  });

  it('a change made through A reaches a subscriber on B, and one made through B a subscriber on A', async () => {
    const aliceOnB = subscribe(b.url, { token: a.tokens.alice });
    const bobOnA = subscribe(a.url, { token: a.tokens.bob });
    await Promise.all([aliceOnB.waitForReady(), bobOnA.waitForReady()]);

    await liveClientFor(a.url, a.tokens.bob).user.updateMyInfo.mutate({ sign: 'bob via A' });
    const toB = await aliceOnB.waitForProfile('bob', (p) => p.sign === 'bob via A');
    expect(toB.profile.email).toBe('bob@example.com');

    await liveClientFor(b.url, a.tokens.carol).user.updateMyInfo.mutate({ sign: 'carol via B' });
    await bobOnA.waitForProfile('carol', (p) => p.sign === 'carol via B');
    await aliceOnB.waitForProfile('carol', (p) => p.sign === 'carol via B');

    // My own change through one instance reaches my session on the other.
    await liveClientFor(a.url, a.tokens.alice).user.updateMyInfo.mutate({ sign: 'alice via A' });
    await aliceOnB.waitForProfile('alice', (p) => p.sign === 'alice via A');
    expect(aliceOnB.errors).toEqual([]);
    expect(bobOnA.errors).toEqual([]);
  });

  it('interleaved changes through both instances arrive on both, complete and in the same order', async () => {
    const onA = subscribe(a.url, { token: a.tokens.alice });
    const onB = subscribe(b.url, { token: a.tokens.alice });
    await Promise.all([onA.waitForReady(), onB.waitForReady()]);
    const writers = [liveClientFor(a.url, a.tokens.bob), liveClientFor(b.url, a.tokens.carol)];
    // Both writers at once, 20 changes each.
    await Promise.all(
      writers.map(async (w, k) => {
        for (let i = 0; i < 20; i++) await w.user.updateMyInfo.mutate({ sign: `w${k} ${i}` });
      }),
    );
    const last = await lastEventId(a.db);
    for (const sub of [onA, onB]) {
      await sub.waitFor((items) => items.some((i) => i.id === last), 5000, `event ${last}`);
      expectStrictlyIncreasingIds(sub.items);
      const signs = sub.profiles().map((p) => p.profile.sign);
      for (const k of [0, 1]) {
        expect(
          signs.filter((s) => s.startsWith(`w${k} `)),
          describeItems(sub.items),
        ).toEqual(Array.from({ length: 20 }, (_, i) => `w${k} ${i}`));
      }
    }
    expect(onB.items.map((i) => i.id)).toEqual(onA.items.map((i) => i.id));
  });

  it('a subscription left on A resumes on B with lastEventId', async () => {
    const first = subscribe(a.url, { token: a.tokens.alice });
    await first.waitForReady();
    const last = first.lastId();
    first.unsubscribe();
    const bob = liveClientFor(a.url, a.tokens.bob);
    for (let i = 0; i < 5; i++) await bob.user.updateMyInfo.mutate({ sign: `missed ${i}` });
    const again = subscribe(b.url, { token: a.tokens.alice, lastEventId: last });
    await again.waitForReady();
    expect(again.profiles().map((p) => p.profile.sign)).toEqual(
      Array.from({ length: 5 }, (_, i) => `missed ${i}`),
    );
    await liveClientFor(a.url, a.tokens.carol).user.updateMyInfo.mutate({ sign: 'live on B' });
    await again.waitForProfile('carol', (p) => p.sign === 'live on B');
    expectStrictlyIncreasingIds(again.items);
  });
});
