import { expect, it } from 'vitest';
import {
  compareCursors,
  compareEventIds,
  createAccount,
  encodeCursor,
  InvalidCursorError,
  keys,
  lastEventId,
  parseCursor,
  parseEvent,
  PARTITIONS,
  partitionOf,
  readLogSince,
  resumePoint,
  startPositions,
  updateProfile,
  type ProfileChangeEvent,
} from '../src';
import { describeEachBackend } from './backends';
import {
  createUser,
  cursorAfter,
  listen,
  logOf,
  newestIdOf,
  partitionMates,
  readWholeLog,
} from './util';

/** The cursor of a reader who has seen nothing. */
const START = encodeCursor(startPositions());
/** The cursor after these events (from the start). */
const after = (...events: ProfileChangeEvent[]) => cursorAfter(START, ...events);
/** bob lives in alice's partition: their ids are one sequence. */
const [BOB] = partitionMates('alice', 1, 'bob');

function expectIncreasing(ids: string[]) {
  for (let i = 1; i < ids.length; i++) expect(compareEventIds(ids[i - 1]!, ids[i]!)).toBe(-1);
}

it('compareEventIds compares numerically, beyond 2^53', () => {
  expect(compareEventIds('9', '10')).toBe(-1);
  expect(compareEventIds('10', '9')).toBe(1);
  expect(compareEventIds('42', '42')).toBe(0);
  expect(compareEventIds('9007199254740993', '9007199254740992')).toBe(1);
});

it('cursors: one position per partition, compact, round-trip; old ids and other layouts are foreign', () => {
  const positions = startPositions();
  positions[3] = '1795762903189000';
  positions[9] = '1795762903189123';
  positions[15] = '1795762800000000';
  const cursor = encodeCursor(positions);
  expect(cursor).toMatch(/^n24_[0-9a-z]+_[0-9a-z.]*$/);
  expect(cursor.length).toBeLessThan(60);
  expect(parseCursor(cursor)).toEqual({ kind: 'positions', positions });
  expect(parseCursor('0')).toEqual({ kind: 'positions', positions: startPositions() });
  // Every partition busy, ids a day apart at most: still short.
  const busy = startPositions().map((_, p) => String(1795762903189000 - p * 3_600_000_000));
  expect(encodeCursor(busy).length).toBeLessThan(250);
  expect(parseCursor(encodeCursor(busy))).toEqual({ kind: 'positions', positions: busy });
  // Positions past 2^53 (encoded with bigints instead of numbers) round-trip exactly too.
  const far = startPositions();
  far[0] = '9007199254740993';
  far[5] = '12345678901234567890';
  expect(parseCursor(encodeCursor(far))).toEqual({ kind: 'positions', positions: far });
  // Foreign: a plain id of today's servers, a cursor of another layout.
  expect(parseCursor('1795762903189000')).toEqual({ kind: 'foreign' });
  expect(parseCursor('n32_abc_' + '.'.repeat(31))).toEqual({ kind: 'foreign' });
  // Malformed.
  for (const bad of [
    '',
    'abc',
    'n24_abc_' + '.'.repeat(3),
    'n24_%_x',
    '-1',
    'n24_1_2' + '.'.repeat(23),
  ]) {
    expect(() => parseCursor(bad), bad).toThrow(InvalidCursorError);
  }
  expect(compareCursors(START, cursor)).toBe(-1);
  expect(compareCursors(cursor, cursor)).toBe(0);
  expect(PARTITIONS).toBe(24);
});

describeEachBackend('change log', (backend) => {
  it('starts empty: lastEventId is the start, nothing to read, no gap', async () => {
    const { db } = backend;
    expect(await lastEventId(db)).toBe(START);
    expect(await readLogSince(db, '0')).toEqual({ events: [], gap: false, cursor: START });
  });

  it('every write gets exactly one event; ids are unique and increase', async () => {
    const { db } = backend;
    const returned: ProfileChangeEvent[] = [];
    returned.push((await createUser(db, 'alice', { nick: 'A' })).event);
    returned.push((await createUser(db, BOB!)).event);
    returned.push(await updateProfile(db, 'alice', { sign: 'one' }));
    returned.push(await updateProfile(db, BOB!, { nick: 'B' }));
    returned.push(await updateProfile(db, 'alice', { nick: '' }));
    // Failed writes add no event.
    await expect(updateProfile(db, 'ghost', { nick: 'x' })).rejects.toThrow();
    await expect(createUser(db, 'alice')).rejects.toThrow();

    const log = await readWholeLog(db);
    expect(log).toEqual(returned);
    expectIncreasing(log.map((e) => e.id));
    expect(log.map((e) => e.account)).toEqual(['alice', BOB, 'alice', BOB, 'alice']);
    expect(log.every((e) => e.type === 'profile')).toBe(true);
    expect(log[2]!.profile).toMatchObject({ nick: 'A', sign: 'one' });
    expect(log[4]!.profile).toMatchObject({ nick: '', sign: 'one' });
    expect(await lastEventId(db)).toBe(after(...log));
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
    await createUser(other, BOB!);
    const events = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2
          ? updateProfile(db, 'alice', { sign: `a${i}` })
          : updateProfile(other, BOB!, { sign: `b${i}` }),
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
    await db.redis.set(keys.logSeq(partitionOf('alice')), ahead);
    const e1 = await updateProfile(db, 'alice', { sign: 'big' });
    const e2 = await updateProfile(db, 'alice', { sign: 'bigger' });
    expect([e1.id, e2.id]).toEqual([
      (BigInt(ahead) + 1n).toString(),
      (BigInt(ahead) + 2n).toString(),
    ]);
    expect(await newestIdOf(db, 'alice')).toBe(e2.id);
    expect(await readLogSince(db, after(e1))).toEqual({
      events: [e2],
      gap: false,
      cursor: after(e1, e2),
    });
  });

  it('after Redis lost its newest writes, no id is handed out again and the lost ones are gone', async () => {
    // As after a restore from an older snapshot, kill -9 with AOF everysec, or a promoted
    // replica: the counter and the log go back. (Failed with a plain INCR counter: the next
    // writes reused the lost ids, and resuming from one looked fine.)
    const { db } = backend;
    await createUser(db, 'alice');
    const other = (await createUser(db, 'zed')).event; // (another partition: unaffected)
    expect(partitionOf('zed')).not.toBe(partitionOf('alice'));
    const kept = await updateProfile(db, 'alice', { sign: 'kept' });
    const lost = [];
    for (let i = 0; i < 3; i++) lost.push(await updateProfile(db, 'alice', { sign: `lost ${i}` }));
    const p = partitionOf('alice');
    await db.redis.zremrangebyscore(keys.log(p), `(${kept.id}`, '+inf');
    await db.redis.set(keys.logSeq(p), kept.id);
    // A Redis comes back later than it lost the writes (a restart or a failover takes far longer
    // than a millisecond; ids run ahead of the clock only past 1,000 writes in one).
    await new Promise((resolve) => setTimeout(resolve, 5));

    const afterwards = [];
    for (let i = 0; i < 3; i++) {
      afterwards.push(await updateProfile(db, 'alice', { sign: `new ${i}` }));
    }
    for (const e of afterwards) {
      expect(lost.map((l) => l.id)).not.toContain(e.id);
      expect(BigInt(e.id)).toBeGreaterThan(BigInt(lost.at(-1)!.id));
    }
    // A reader that saw a lost event must resync (its partition is reported lost, no other);
    // one that saw a kept one goes on.
    const sawLost = await resumePoint(db, after(other, kept, lost[0]!));
    expect(sawLost).toMatchObject({ ok: false, lost: [p] });
    expect((await readLogSince(db, after(other, kept, ...lost))).gap).toBe(true);
    expect((await resumePoint(db, after(other, kept))).ok).toBe(true);
    expect((await readLogSince(db, after(other, kept))).events).toEqual(afterwards);
  });

  it('readLogSince pages with count, oldest first', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    for (let i = 0; i < 6; i++) await updateProfile(db, 'alice', { sign: String(i) });
    const log = await readWholeLog(db);
    const all = log.map((e) => e.id);
    const at = (i: number) => after(...log.slice(0, i + 1));
    const ids = async (from: string, count?: number) => {
      const read = await readLogSince(db, from, count);
      expect(read.gap).toBe(false);
      return read.events.map((e) => e.id);
    };
    expect(await ids('0', 3)).toEqual(all.slice(0, 3));
    expect(await ids(at(2), 3)).toEqual(all.slice(3, 6));
    expect(await ids(at(5), 3)).toEqual(all.slice(6));
    expect(await ids(at(6), 3)).toEqual([]);
    expect(await ids(at(1))).toEqual(all.slice(2));
    const events = (await readLogSince(db, at(3), 1)).events;
    expect(events.map((e) => e.profile.sign)).toEqual(['3']);
    // An id that was never handed out (or is past the newest) is not a place to resume from,
    // nor is a plain number from servers before partitions.
    const positions = startPositions();
    positions[partitionOf('alice')] = '100';
    expect((await readLogSince(db, encodeCursor(positions))).gap).toBe(true);
    positions[partitionOf('alice')] = (BigInt(all[6]!) + 1n).toString();
    expect((await readLogSince(db, encodeCursor(positions))).gap).toBe(true);
    expect((await readLogSince(db, all[6]!)).gap).toBe(true);
  });

  it("reports a gap once the reader's event was trimmed (small logMaxLen)", async () => {
    const db = backend.connect({ logMaxLen: 5 });
    const written = [(await createUser(db, 'alice')).event];
    for (let i = 1; i <= 7; i++) written.push(await updateProfile(db, 'alice', { sign: `s${i}` }));
    const ids = written.map((e) => e.id);
    const at = (i: number) => after(...written.slice(0, i + 1));
    expect(await newestIdOf(db, 'alice')).toBe(ids[7]);
    // The newest 5 and the one before them: a reader 5 events behind can still resume.
    expect(await db.redis.zcard(logOf('alice'))).toBe(6);

    const fromStart = await readLogSince(db, '0');
    expect(fromStart.events.map((e) => e.id)).toEqual(ids.slice(2));
    expect((await readLogSince(db, at(0))).gap).toBe(true);
    expect((await readLogSince(db, at(1), 2)).gap).toBe(true);
    expect((await readLogSince(db, at(1))).gap).toBe(true);

    // Readers whose event is still in the log see no gap.
    const fromThree = await readLogSince(db, at(2));
    expect(fromThree).toMatchObject({ gap: false });
    expect(fromThree.events.map((e) => e.id)).toEqual(ids.slice(3));
    expect(await readLogSince(db, at(7))).toEqual({ events: [], gap: false, cursor: at(7) });
    expect(fromThree.events.at(-1)?.profile.sign).toBe('s7');
  });

  it('trims a long log in steps of 1%: never below logMaxLen + 1, never past it by more than 1%', async () => {
    const db = backend.connect({ logMaxLen: 200 });
    await createUser(db, 'alice'); // event 1
    const sizes: number[] = [];
    let last = '';
    for (let i = 1; i <= 210; i++) {
      last = (await updateProfile(db, 'alice', { sign: `s${i}` })).id;
      sizes.push(await db.redis.zcard(logOf('alice')));
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
    const before = await readWholeLog(db);
    await updateProfile(backend.connect({ logMaxLen: 3 }), 'alice', { sign: 'last' });
    expect(await db.redis.zcard(logOf('alice'))).toBe(4);
    const read = await readLogSince(db, '0');
    expect(read.events.map((e) => e.id)).toEqual([
      ...before.slice(-3).map((e) => e.id),
      await newestIdOf(db, 'alice'),
    ]);
    expect((await readLogSince(db, after(before[0]!))).gap).toBe(true);
  });

  it('publishes each event on the account channel as it logs it', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    const received: string[] = [];
    const subscriber = await listen(db, keys.channel('alice'), (message) => received.push(message));
    try {
      const e1 = await updateProfile(db, 'alice', { nick: 'Ålice "1"' });
      const e2 = await updateProfile(db, 'alice', { sign: 'x\ny' });
      await expect.poll(() => received.length, { timeout: 5000 }).toBe(2);
      expect(received.map(parseEvent)).toEqual([e1, e2]);
      expect(await db.redis.zrangebyscore(logOf('alice'), e1.id, e2.id)).toEqual(received);
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
