import { expect, it } from 'vitest';
import {
  compareEventIds,
  createAccount,
  keys,
  lastEventId,
  parseEvent,
  readLogSince,
  resumePoint,
  updateProfile,
  type ProfileChangeEvent,
} from '../src';
import { describeEachBackend } from './backends';
import { createUser, readWholeLog } from './util';

function expectIncreasing(ids: string[]) {
  for (let i = 1; i < ids.length; i++) expect(compareEventIds(ids[i - 1]!, ids[i]!)).toBe(-1);
}

it('compareEventIds compares numerically, beyond 2^53', () => {
  expect(compareEventIds('9', '10')).toBe(-1);
  expect(compareEventIds('10', '9')).toBe(1);
  expect(compareEventIds('42', '42')).toBe(0);
  expect(compareEventIds('9007199254740993', '9007199254740992')).toBe(1);
});

describeEachBackend('change log', (backend) => {
  it('starts empty: lastEventId 0, nothing to read, no gap', async () => {
    const { db } = backend;
    expect(await lastEventId(db)).toBe('0');
    expect(await readLogSince(db, '0')).toEqual({ events: [], gap: false });
  });

  it('every write gets exactly one event; ids are unique and increase', async () => {
    const { db } = backend;
    const returned: ProfileChangeEvent[] = [];
    returned.push((await createUser(db, 'alice', { nick: 'A' })).event);
    returned.push((await createUser(db, 'bob')).event);
    returned.push(await updateProfile(db, 'alice', { sign: 'one' }));
    returned.push(await updateProfile(db, 'bob', { nick: 'B' }));
    returned.push(await updateProfile(db, 'alice', { nick: '' }));
    // Failed writes add no event.
    await expect(updateProfile(db, 'ghost', { nick: 'x' })).rejects.toThrow();
    await expect(createUser(db, 'alice')).rejects.toThrow();

    const log = await readWholeLog(db);
    expect(log).toEqual(returned);
    expectIncreasing(log.map((e) => e.id));
    expect(log.map((e) => e.account)).toEqual(['alice', 'bob', 'alice', 'bob', 'alice']);
    expect(log.every((e) => e.type === 'profile')).toBe(true);
    expect(log[2]!.profile).toMatchObject({ nick: 'A', sign: 'one' });
    expect(log[4]!.profile).toMatchObject({ nick: '', sign: 'one' });
    expect(await lastEventId(db)).toBe(log[4]!.id);
  });

  it("ids are Redis's clock in ms x 1000 plus a counter: about now, and never repeated", async () => {
    const { db } = backend;
    const before = BigInt(Date.now() - 60_000) * 1000n;
    await createUser(db, 'alice');
    const e = await updateProfile(db, 'alice', { sign: 'x' });
    expect(BigInt(e.id)).toBeGreaterThan(before);
    expect(BigInt(e.id)).toBeLessThan(BigInt(Date.now() + 60_000) * 1000n);
    expect(e.id).toMatch(/^\d{16}$/);
  });

  it('ids stay unique and increasing across two clients writing at once', async () => {
    const { db } = backend;
    const other = backend.connect();
    await createUser(db, 'alice');
    await createUser(other, 'bob');
    const events = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2
          ? updateProfile(db, 'alice', { sign: `a${i}` })
          : updateProfile(other, 'bob', { sign: `b${i}` }),
      ),
    );
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(40);
    const log = (await readWholeLog(db)).map((e) => e.id);
    expect(log.length).toBe(42);
    expectIncreasing(log);
    expect([...ids].sort(compareEventIds)).toEqual(log.slice(2));
  });

  it('an id past the clock (clock behind, or a write burst) goes on from last + 1', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    const ahead = (BigInt(Date.now() + 3_600_000) * 1000n).toString();
    await db.redis.set(keys.logSeq, ahead);
    const e1 = await updateProfile(db, 'alice', { sign: 'big' });
    const e2 = await updateProfile(db, 'alice', { sign: 'bigger' });
    expect([e1.id, e2.id]).toEqual([
      (BigInt(ahead) + 1n).toString(),
      (BigInt(ahead) + 2n).toString(),
    ]);
    expect(await lastEventId(db)).toBe(e2.id);
    expect(await readLogSince(db, e1.id)).toEqual({ events: [e2], gap: false });
  });

  it('after Redis lost its newest writes, no id is handed out again and the lost ones are gone', async () => {
    // As after a restore from an older snapshot, kill -9 with AOF everysec, or a promoted
    // replica: the counter and the log go back. (Failed with a plain INCR counter: the next
    // writes reused the lost ids, and resuming from one looked fine.)
    const { db } = backend;
    await createUser(db, 'alice');
    const kept = await updateProfile(db, 'alice', { sign: 'kept' });
    const lost = [];
    for (let i = 0; i < 3; i++) lost.push(await updateProfile(db, 'alice', { sign: `lost ${i}` }));
    await db.redis.zremrangebyscore(keys.log, `(${kept.id}`, '+inf');
    await db.redis.set(keys.logSeq, kept.id);
    // A Redis comes back later than it lost the writes (a restart or a failover takes far longer
    // than a millisecond; ids run ahead of the clock only past 1,000 writes in one).
    await new Promise((resolve) => setTimeout(resolve, 5));

    const after = [];
    for (let i = 0; i < 3; i++) after.push(await updateProfile(db, 'alice', { sign: `new ${i}` }));
    for (const e of after) {
      expect(lost.map((l) => l.id)).not.toContain(e.id);
      expect(BigInt(e.id)).toBeGreaterThan(BigInt(lost.at(-1)!.id));
    }
    // A reader that saw a lost event must resync; one that saw a kept one goes on.
    expect((await resumePoint(db, lost[0]!.id)).ok).toBe(false);
    expect((await readLogSince(db, lost[2]!.id)).gap).toBe(true);
    expect((await resumePoint(db, kept.id)).ok).toBe(true);
    expect((await readLogSince(db, kept.id)).events).toEqual(after);
  });

  it('readLogSince pages with count, oldest first', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    for (let i = 0; i < 6; i++) await updateProfile(db, 'alice', { sign: String(i) });
    const all = (await readWholeLog(db)).map((e) => e.id);
    const ids = async (after: string, count?: number) => {
      const read = await readLogSince(db, after, count);
      expect(read.gap).toBe(false);
      return read.events.map((e) => e.id);
    };
    expect(await ids('0', 3)).toEqual(all.slice(0, 3));
    expect(await ids(all[2]!, 3)).toEqual(all.slice(3, 6));
    expect(await ids(all[5]!, 3)).toEqual(all.slice(6));
    expect(await ids(all[6]!, 3)).toEqual([]);
    expect(await ids(all[1]!)).toEqual(all.slice(2));
    const events = (await readLogSince(db, all[3]!, 1)).events;
    expect(events.map((e) => e.profile.sign)).toEqual(['3']);
    // An id that was never handed out (or is past the newest) is not a place to resume from.
    expect((await readLogSince(db, '100')).gap).toBe(true);
    expect((await readLogSince(db, (BigInt(all[6]!) + 1n).toString())).gap).toBe(true);
  });

  it("reports a gap once the reader's event was trimmed (small logMaxLen)", async () => {
    const db = backend.connect({ logMaxLen: 5 });
    const ids = [(await createUser(db, 'alice')).event.id];
    for (let i = 1; i <= 7; i++) ids.push((await updateProfile(db, 'alice', { sign: `s${i}` })).id);
    expect(await lastEventId(db)).toBe(ids[7]);
    // The newest 5 and the one before them: a reader 5 events behind can still resume.
    expect(await db.redis.zcard(keys.log)).toBe(6);

    const fromStart = await readLogSince(db, '0');
    expect(fromStart.events.map((e) => e.id)).toEqual(ids.slice(2));
    expect((await readLogSince(db, ids[0]!)).gap).toBe(true);
    expect((await readLogSince(db, ids[1]!, 2)).gap).toBe(true);
    expect((await readLogSince(db, ids[1]!)).gap).toBe(true);

    // Readers whose event is still in the log see no gap.
    const fromThree = await readLogSince(db, ids[2]!);
    expect(fromThree).toMatchObject({ gap: false });
    expect(fromThree.events.map((e) => e.id)).toEqual(ids.slice(3));
    expect(await readLogSince(db, ids[7]!)).toEqual({ events: [], gap: false });
    expect(fromThree.events.at(-1)?.profile.sign).toBe('s7');
  });

  it('trims a long log in steps of 1%: never below logMaxLen + 1, never past it by more than 1%', async () => {
    const db = backend.connect({ logMaxLen: 200 });
    await createUser(db, 'alice'); // event 1
    const sizes: number[] = [];
    let last = '';
    for (let i = 1; i <= 210; i++) {
      last = (await updateProfile(db, 'alice', { sign: `s${i}` })).id;
      sizes.push(await db.redis.zcard(keys.log));
    }
    expect(Math.min(...sizes.slice(198))).toBe(200);
    expect(Math.max(...sizes)).toBe(203);
    // Trimmed exactly once (at 204 entries) so far: back to the newest 200 and the one before
    // them, then one more.
    expect(sizes.slice(198, 205)).toEqual([200, 201, 202, 203, 201, 202, 203]);
    const read = await readLogSince(db, '0', 1000);
    expect(read.events.at(-1)?.id).toBe(last);
    expect(read.events.length).toBe(sizes.at(-1));
  });

  it('a writer with a small logMaxLen trims what a default writer logged', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    for (let i = 0; i < 9; i++) await updateProfile(db, 'alice', { sign: `${i}` });
    const before = (await readWholeLog(db)).map((e) => e.id);
    await updateProfile(backend.connect({ logMaxLen: 3 }), 'alice', { sign: 'last' });
    expect(await db.redis.zcard(keys.log)).toBe(4);
    const read = await readLogSince(db, '0');
    expect(read.events.map((e) => e.id)).toEqual([...before.slice(-3), await lastEventId(db)]);
    expect((await readLogSince(db, before[0]!)).gap).toBe(true);
  });

  it('publishes each event on the account channel as it logs it', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    const subscriber = db.redis.duplicate();
    try {
      const received: string[] = [];
      subscriber.on('message', (channel: string, message: string) => {
        if (channel === keys.channel('alice')) received.push(message);
      });
      await subscriber.subscribe(keys.channel('alice'));
      const e1 = await updateProfile(db, 'alice', { nick: 'Ålice "1"' });
      const e2 = await updateProfile(db, 'alice', { sign: 'x\ny' });
      await expect.poll(() => received.length, { timeout: 5000 }).toBe(2);
      expect(received.map(parseEvent)).toEqual([e1, e2]);
      expect(await db.redis.zrangebyscore(keys.log, e1.id, e2.id)).toEqual(received);
    } finally {
      subscriber.disconnect();
    }
  });

  it('events created by createAccount are logged and parse back to the same profile', async () => {
    const { db } = backend;
    const created = await createAccount(
      db,
      { account: 'carol', profile: { nick: 'キャロル', gender: 'female' } },
      1234,
    );
    const [logged] = (await readLogSince(db, '0')).events;
    expect(logged).toEqual(created.event);
    expect(logged?.profile).toMatchObject({
      nick: 'キャロル',
      gender: 'female',
      createTime: 1234,
      updateTime: 1234,
    });
  });
});
