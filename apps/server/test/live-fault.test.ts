/**
 * Redis restarts under a live subscription: a redis-server of the test's own (spare port, AOF
 * with fsync on every write) is stopped and started again while two writers keep changing
 * profiles, one through the API and one straight through the store on its own connection (as
 * another instance would). Every acknowledged write must reach the subscriber, once, in order.
 */
import { cursorPosition, partitionOf, readLogSince, updateProfile } from '@namecard/db';
import { expect, it } from 'vitest';
import { adminClient, describeRealRedis } from './helpers';
import {
  describeItems,
  expectStrictlyIncreasingIds,
  liveClientFor,
  redisServerBinary,
  useOwnRedisStack,
  subscribeLive,
  waitFor,
  type LiveSubscription,
} from './live-helpers';

// Needs the redis-server binary: skipped (with a warning) without it, failing under CI=true.
const redisServer = redisServerBinary('Redis restart tests');

interface Ack {
  sign: string;
  /** The event id (store writer) or the profile's updateTime (API writer). */
  id?: string;
  updateTime: number;
}

interface Writer {
  account: string;
  acked: Ack[];
  failed: string[];
  /** Writes acknowledged after the restart. */
  ackedAfterRestart(): number;
  stop(): Promise<void>;
}

/** Writes `sign` values one after another until stopped; a failed write is recorded and the next one goes on. */
function startWriter(
  account: string,
  write: (sign: string) => Promise<Omit<Ack, 'sign'>>,
  restarted: () => boolean,
): Writer {
  const acked: Ack[] = [];
  const failed: string[] = [];
  let afterRestart = 0;
  let stopping = false;
  const loop = (async () => {
    for (let i = 0; !stopping; i++) {
      const sign = `${account} ${i}`;
      const wasRestarted = restarted();
      try {
        acked.push({ sign, ...(await write(sign)) });
        if (wasRestarted) afterRestart++;
      } catch {
        failed.push(sign);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
  return {
    account,
    acked,
    failed,
    ackedAfterRestart: () => afterRestart,
    stop: async () => {
      stopping = true;
      await loop;
    },
  };
}

describeRealRedis('Redis restart under a live subscription', redisServer, () => {
  const stack = useOwnRedisStack();

  it('delivers every acknowledged write once, in order, across the restart', async () => {
    const { redis, server, store } = stack;
    const { token: daveToken } = await adminClient(server).admin.createAccount.mutate({
      account: 'dave',
    });
    expect(daveToken).toBeTruthy();
    const sub: LiveSubscription = subscribeLive(server.url, {
      token: server.tokens.alice,
      accounts: ['dave'],
    });
    try {
      await sub.waitForReady();
      let restarted = false;
      const bobApi = liveClientFor(server.url, server.tokens.bob);
      const writers = [
        // bob is alice's friend; through the API of the server alice is subscribed to.
        startWriter(
          'bob',
          async (sign) => ({
            updateTime: (await bobApi.user.updateMyInfo.mutate({ sign })).updateTime,
          }),
          () => restarted,
        ),
        // dave is watched; written through the store on a connection of its own.
        startWriter(
          'dave',
          async (sign) => {
            const event = await updateProfile(store, 'dave', { sign });
            return { id: event.id, updateTime: event.profile.updateTime };
          },
          () => restarted,
        ),
      ];
      try {
        await waitFor(
          () => writers.every((w) => w.acked.length >= 15),
          10_000,
          'writes before the restart',
        );
        await waitFor(
          () => sub.profiles().length >= 20,
          10_000,
          () => `events before the restart${describeItems(sub.items)}`,
        );

        await redis.stop();
        expect(redis.running()).toBe(false);
        // Down for a moment while the writers keep trying.
        const ackedWhileDown = writers.map((w) => w.acked.length);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(
          writers.map((w) => w.acked.length),
          'no write acknowledged while Redis was down',
        ).toEqual(ackedWhileDown);
        restarted = true;
        await redis.start();

        await waitFor(
          () => writers.every((w) => w.ackedAfterRestart() >= 15),
          20_000,
          () =>
            `writes after the restart (${writers.map((w) => `${w.account}: ${w.ackedAfterRestart()}, failed ${w.failed.length}`).join('; ')})`,
        );
      } finally {
        await Promise.all(writers.map((w) => w.stop()));
      }

      for (const w of writers) {
        const lastSign = w.acked[w.acked.length - 1]!.sign;
        await sub.waitForProfile(w.account, (p) => p.sign === lastSign, 15_000);
      }
      expectStrictlyIncreasingIds(sub.items);
      expect(sub.errors).toEqual([]);
      expect(sub.items.filter((i) => i.data.type === 'resync')).toEqual([]);

      // What the log holds from the subscription's start on is exactly what was delivered.
      const readyId = sub.items[0]!.id;
      const { events, gap } = await readLogSince(server.db, readyId, 100_000);
      expect(gap).toBe(false);
      for (const w of writers) {
        const delivered = sub.profiles(w.account);
        expect(
          // An item's id is a cursor: its position in the account's partition is the event id.
          delivered.map((p) => `${cursorPosition(p.id, partitionOf(w.account))} ${p.profile.sign}`),
          `${w.account}: delivered = logged`,
        ).toEqual(
          events.filter((e) => e.account === w.account).map((e) => `${e.id} ${e.profile.sign}`),
        );
        // Every acknowledged write, in the order acknowledged (each writer writes sequentially).
        const deliveredSigns = delivered.map((p) => p.profile.sign);
        const ackedSigns = w.acked.map((a) => a.sign);
        expect(
          [...new Set(deliveredSigns)].filter((sign) => ackedSigns.includes(sign)),
          `${w.account}: acknowledged writes as delivered (failed: ${w.failed.join(', ') || 'none'})`,
        ).toEqual(ackedSigns);
        // With the value the write was acknowledged with.
        for (const ack of w.acked) {
          const mine = delivered.filter((p) => p.profile.sign === ack.sign);
          expect(mine.map((p) => p.profile.updateTime)).toContain(ack.updateTime);
          const ids = mine.map((p) => cursorPosition(p.id, partitionOf(w.account)).toString());
          if (ack.id) expect(ids).toContain(ack.id);
        }
        // No write is applied twice: ioredis re-sends the commands that were in flight when the
        // connection dropped (autoResendUnfulfilledCommands), and the write id in the script
        // makes the second run a no-op.
        const twice = deliveredSigns.filter((sign, i) => deliveredSigns.indexOf(sign) !== i);
        expect(twice, `${w.account}: writes applied twice`).toEqual([]);
      }
    } finally {
      sub.unsubscribe();
    }
  }, 60_000);
});
