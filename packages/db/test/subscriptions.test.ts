import { expect, it } from 'vitest';
import {
  countSubscriptions,
  keys,
  lastEventId,
  readAccountsSince,
  SubscriptionLimitError,
  takeSubscriptionLease,
  updateProfile,
  type ProfileChangeEvent,
} from '../src';
import { describeEachBackend } from './backends';
import { createUser, cursorAfter, partitionMates } from './util';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeEachBackend('subscription leases', (backend) => {
  it('holds at most the limit per account, across clients; a release frees a place', async () => {
    const a = { ...backend.db, subscriptionsPerAccount: 2 };
    const b = { ...backend.connect(), subscriptionsPerAccount: 2 };
    const first = await takeSubscriptionLease(a, 'alice');
    const second = await takeSubscriptionLease(b, 'alice');
    await expect(takeSubscriptionLease(b, 'alice')).rejects.toBeInstanceOf(SubscriptionLimitError);
    const bob = await takeSubscriptionLease(a, 'bob');
    expect(await countSubscriptions(a, 'alice')).toBe(2);
    await first.release();
    expect(await countSubscriptions(a, 'alice')).toBe(1);
    const third = await takeSubscriptionLease(b, 'alice');
    for (const lease of [second, third, bob]) await lease.release();
    expect(await countSubscriptions(a, 'alice')).toBe(0);
  });

  it('a lease nobody renews expires by itself', async () => {
    const db = { ...backend.db, subscriptionsPerAccount: 1 };
    // Renewed every third of its length: long enough that a loaded machine (CI runs suites side
    // by side) cannot stall the renewal past the expiry.
    const held = await takeSubscriptionLease(db, 'alice', 1500);
    await expect(takeSubscriptionLease(db, 'alice', 150)).rejects.toBeInstanceOf(
      SubscriptionLimitError,
    );
    // A renewed lease outlives its first length.
    await sleep(2000);
    await expect(takeSubscriptionLease(db, 'alice', 150)).rejects.toBeInstanceOf(
      SubscriptionLimitError,
    );
    // Unrenewed (a crashed instance): its key's members expire.
    await db.redis.zadd(keys.subscriptions('carol'), String(Date.now() + 100), 'crashed');
    await expect(takeSubscriptionLease(db, 'carol', 150)).rejects.toBeInstanceOf(
      SubscriptionLimitError,
    );
    await sleep(200);
    await (await takeSubscriptionLease(db, 'carol', 150)).release();
    await held.release();
  });
});

describeEachBackend("accounts' own change logs", (backend) => {
  it('readAccountsSince gives the events of the accounts asked for, in (after, upto], in order', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    await createUser(db, 'bob');
    await createUser(db, 'noise');
    const from = await lastEventId(db);
    const wanted: ProfileChangeEvent[] = [];
    let cursor = from;
    let upto = from;
    for (let i = 0; i < 4; i++) {
      wanted.push(await updateProfile(db, 'alice', { sign: `a${i}` }));
      cursor = cursorAfter(cursor, await updateProfile(db, 'noise', { sign: `n${i}` }));
      wanted.push(await updateProfile(db, 'bob', { sign: `b${i}` }));
      cursor = cursorAfter(cursor, ...wanted.slice(-2));
      if (i === 3) upto = cursorAfter(upto, ...wanted.slice(0, 7));
    }
    const read = await readAccountsSince(db, ['alice', 'bob', 'ghost'], from, upto);
    expect(read.gap).toBe(false);
    expect(new Set(read.events.map((e) => e.id))).toEqual(
      new Set(wanted.slice(0, 7).map((e) => e.id)),
    );
    const ofAccount = (a: string) => read.events.filter((e) => e.account === a);
    expect(ofAccount('alice').map((e) => e.profile.sign)).toEqual(['a0', 'a1', 'a2', 'a3']);
    expect(ofAccount('bob').map((e) => e.profile.sign)).toEqual(['b0', 'b1', 'b2']);
    expect(await readAccountsSince(db, ['alice'], upto, upto)).toEqual({ events: [], gap: false });
  });

  it("an account log capped past the reader's point reports a gap", async () => {
    const db = { ...backend.db, accountLogMax: 3 };
    await createUser(db, 'alice');
    const start = await lastEventId(db);
    const events: ProfileChangeEvent[] = [];
    for (let i = 0; i < 6; i++) events.push(await updateProfile(db, 'alice', { sign: `${i}` }));
    expect(await db.redis.zcard(keys.accountLog('alice'))).toBe(3);
    const newest = await lastEventId(db);
    const at = (i: number) => cursorAfter(start, ...events.slice(0, i + 1));
    expect((await readAccountsSince(db, ['alice'], at(1), newest)).gap).toBe(true);
    const kept = await readAccountsSince(db, ['alice'], at(2), newest);
    expect(kept).toMatchObject({ gap: false });
    expect(kept.events.map((e) => e.id)).toEqual(events.slice(3).map((e) => e.id));
  });

  it("an account log keeps only what its partition's log still holds", async () => {
    const db = { ...backend.connect({ logMaxLen: 3 }) };
    const [bob] = partitionMates('alice', 1, 'bob');
    await createUser(db, 'alice');
    await createUser(db, bob!);
    for (let i = 0; i < 6; i++) await updateProfile(db, bob!, { sign: `${i}` });
    await updateProfile(db, 'alice', { sign: 'again' });
    // The partition's log holds the newest 3 and one more; alice's creation is older than that.
    expect(await db.redis.zcard(keys.accountLog('alice'))).toBe(1);
  });
});
