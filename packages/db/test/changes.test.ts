import { expect, it } from 'vitest';
import {
  compareEventIds,
  createAccount,
  keys,
  lastEventId,
  parseEvent,
  readLogSince,
  updateProfile,
  type ProfileChangeEvent,
} from '../src';
import { describeEachBackend } from './backends';
import { createUser, readWholeLog } from './util';

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

  it('every write gets exactly one event; ids are unique and increase by 1', async () => {
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
    expect(log.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5']);
    expect(log.map((e) => e.account)).toEqual(['alice', 'bob', 'alice', 'bob', 'alice']);
    expect(log.every((e) => e.type === 'profile')).toBe(true);
    expect(log[2]!.profile).toMatchObject({ nick: 'A', sign: 'one' });
    expect(log[4]!.profile).toMatchObject({ nick: '', sign: 'one' });
    expect(await lastEventId(db)).toBe('5');
  });

  it('ids stay unique and consecutive across two clients writing at once', async () => {
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
    const ids = events.map((e) => Number(e.id)).sort((x, y) => x - y);
    expect(ids).toEqual(Array.from({ length: 40 }, (_, i) => i + 3));
    expect((await readWholeLog(db)).map((e) => e.id)).toEqual(
      Array.from({ length: 42 }, (_, i) => String(i + 1)),
    );
  });

  it('readLogSince pages with count, oldest first', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    for (let i = 0; i < 6; i++) await updateProfile(db, 'alice', { sign: String(i) });
    const ids = async (after: string, count?: number) => {
      const read = await readLogSince(db, after, count);
      expect(read.gap).toBe(false);
      return read.events.map((e) => e.id);
    };
    expect(await ids('0', 3)).toEqual(['1', '2', '3']);
    expect(await ids('3', 3)).toEqual(['4', '5', '6']);
    expect(await ids('6', 3)).toEqual(['7']);
    expect(await ids('7', 3)).toEqual([]);
    expect(await ids('2')).toEqual(['3', '4', '5', '6', '7']);
    expect(await ids('100')).toEqual([]);
    const events = (await readLogSince(db, '4', 1)).events;
    expect(events.map((e) => e.profile.sign)).toEqual(['3']);
  });

  it('reports a gap once the events after the reader were trimmed (small logMaxLen)', async () => {
    const db = backend.connect({ logMaxLen: 5 });
    await createUser(db, 'alice');
    for (let i = 1; i <= 7; i++) await updateProfile(db, 'alice', { sign: `s${i}` });
    expect(await lastEventId(db)).toBe('8');
    expect(await db.redis.zcard(keys.log)).toBe(5);

    const fromStart = await readLogSince(db, '0');
    expect(fromStart.gap).toBe(true);
    expect(fromStart.events.map((e) => e.id)).toEqual(['4', '5', '6', '7', '8']);
    expect((await readLogSince(db, '2')).gap).toBe(true);
    expect((await readLogSince(db, '2', 2)).gap).toBe(true);

    // Readers whose next event is still in the log see no gap.
    const fromThree = await readLogSince(db, '3');
    expect(fromThree).toMatchObject({ gap: false });
    expect(fromThree.events.map((e) => e.id)).toEqual(['4', '5', '6', '7', '8']);
    expect(await readLogSince(db, '6')).toMatchObject({ gap: false });
    expect(await readLogSince(db, '8')).toEqual({ events: [], gap: false });
    expect(fromThree.events.at(-1)?.profile.sign).toBe('s7');
  });

  it('trims a long log in steps of 1%: never below logMaxLen, never past it by more than 1%', async () => {
    const db = backend.connect({ logMaxLen: 200 });
    await createUser(db, 'alice'); // event 1
    const sizes: number[] = [];
    for (let i = 1; i <= 210; i++) {
      await updateProfile(db, 'alice', { sign: `s${i}` });
      sizes.push(await db.redis.zcard(keys.log));
    }
    expect(Math.min(...sizes.slice(198))).toBe(200);
    expect(Math.max(...sizes)).toBe(202);
    // Trimmed exactly once (at 203 entries) so far: back to the newest 200, then two more.
    expect(sizes.slice(198, 204)).toEqual([200, 201, 202, 200, 201, 202]);
    const read = await readLogSince(db, '0', 1000);
    expect(read.gap).toBe(true);
    expect(read.events.at(-1)?.id).toBe('211');
    expect(read.events.length).toBe(sizes.at(-1));
  });

  it('a writer with a small logMaxLen trims what a default writer logged', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    for (let i = 0; i < 9; i++) await updateProfile(db, 'alice', { sign: `${i}` });
    expect((await readLogSince(db, '0')).gap).toBe(false);
    await updateProfile(backend.connect({ logMaxLen: 3 }), 'alice', { sign: 'last' });
    expect(await db.redis.zcard(keys.log)).toBe(3);
    const read = await readLogSince(db, '0');
    expect(read.gap).toBe(true);
    expect(read.events.map((e) => e.id)).toEqual(['9', '10', '11']);
  });

  it('keeps exact ids past 2^32 (Lua number formatting on both backends)', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    await db.redis.set(keys.logSeq, '4294967300');
    const e1 = await updateProfile(db, 'alice', { sign: 'big' });
    const e2 = await updateProfile(db, 'alice', { sign: 'bigger' });
    expect([e1.id, e2.id]).toEqual(['4294967301', '4294967302']);
    expect(await lastEventId(db)).toBe('4294967302');
    const read = await readLogSince(db, '4294967300');
    expect(read).toMatchObject({ gap: false });
    expect(read.events).toEqual([e1, e2]);
    expect(await readLogSince(db, '4294967301')).toEqual({ events: [e2], gap: false });
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
