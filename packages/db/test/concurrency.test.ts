/**
 * Two clients (two connections, as two server processes would have) write different fields of
 * one profile at the same time. Every write is one atomic script, so no write may lose another's
 * field, the log must hold one event per write with consecutive ids, and updateTime must keep
 * increasing with the event id however the clients' clocks disagree.
 */
import { expect, it } from 'vitest';
import { compareEventIds, getProfile, updateProfile, type ProfileChangeEvent } from '../src';
import { describeEachBackend } from './backends';
import { createUser, readWholeLog, newestIdOf } from './util';

const WRITES_PER_CLIENT = 100;
const T0 = 1_700_000_000_000;

/** The counter a tagged value carries (`nick-42` -> 42). */
const tagOf = (value: string | undefined) => Number(/(\d+)$/.exec(value ?? '')?.[1] ?? NaN);

describeEachBackend('concurrent writers', (backend) => {
  it('two clients patching different fields of one profile: no lost field, ordered events', async () => {
    const a = backend.db;
    const b = backend.connect();
    const created = await createUser(
      a,
      'shared',
      { nick: 'start', sign: 'start', email: 'start-0@example.com', tel: '0' },
      T0,
    );

    // All 200 calls are in flight at once. Each client's calls go out in order on its own
    // connection; `now` jumps around (clock skew, clocks going backwards).
    const fromA: Promise<ProfileChangeEvent>[] = [];
    const fromB: Promise<ProfileChangeEvent>[] = [];
    for (let i = 1; i <= WRITES_PER_CLIENT; i++) {
      fromA.push(
        updateProfile(
          a,
          'shared',
          { nick: `nick-${i}`, sign: `sign "${i}"\n-${i}` },
          T0 + ((i * 7919) % 50),
        ),
      );
      fromB.push(
        updateProfile(
          b,
          'shared',
          { email: `mail-${i}@example.com`, tel: `+1-${i}` },
          T0 - 1000 + i,
        ),
      );
    }
    const eventsA = await Promise.all(fromA);
    const eventsB = await Promise.all(fromB);
    const all = [...eventsA, ...eventsB].sort((x, y) => compareEventIds(x.id, y.id));

    // Ids: unique, after the create event, the last one the newest.
    expect(new Set(all.map((e) => e.id)).size).toBe(2 * WRITES_PER_CLIENT);
    expect(BigInt(all[0]!.id)).toBeGreaterThan(BigInt(created.event.id));
    expect(await newestIdOf(a, 'shared')).toBe(all.at(-1)!.id);

    // Each client's writes were applied in the order it issued them.
    const increasing = (events: ProfileChangeEvent[]) =>
      events.every((e, i) => i === 0 || Number(e.id) > Number(events[i - 1]!.id));
    expect(increasing(eventsA)).toBe(true);
    expect(increasing(eventsB)).toBe(true);

    // updateTime strictly increases with the event id.
    for (let i = 1; i < all.length; i++) {
      expect(all[i]!.profile.updateTime, `event ${all[i]!.id}`).toBeGreaterThan(
        all[i - 1]!.profile.updateTime,
      );
    }

    // Every event's profile is a consistent snapshot: each writer's pair of fields carries one
    // counter, and neither writer's fields ever move backwards.
    let lastA = 0;
    let lastB = 0;
    for (const e of all) {
      const { nick, sign, email, tel } = e.profile;
      const nA = nick === 'start' ? 0 : tagOf(nick);
      const nB = tel === '0' ? 0 : tagOf(tel);
      expect(sign === 'start' ? 0 : tagOf(sign), `sign in event ${e.id}`).toBe(nA);
      expect(
        email === 'start-0@example.com' ? 0 : tagOf((email ?? '').replace('@example.com', '')),
        `email in event ${e.id}`,
      ).toBe(nB);
      expect(nA).toBeGreaterThanOrEqual(lastA);
      expect(nB).toBeGreaterThanOrEqual(lastB);
      lastA = nA;
      lastB = nB;
    }

    // Every field holds the last value its writer wrote.
    const final = await getProfile(a, 'shared');
    expect(final).toMatchObject({
      nick: `nick-${WRITES_PER_CLIENT}`,
      sign: `sign "${WRITES_PER_CLIENT}"\n-${WRITES_PER_CLIENT}`,
      email: `mail-${WRITES_PER_CLIENT}@example.com`,
      tel: `+1-${WRITES_PER_CLIENT}`,
      createTime: T0,
    });
    // ...which is also what the latest event says, and what the other client reads.
    expect(final).toEqual(all.at(-1)!.profile);
    expect(await getProfile(b, 'shared')).toEqual(final);

    // The durable log holds exactly the returned events, in id order.
    const log = await readWholeLog(a);
    expect(log.slice(1)).toEqual(all);
  });

  it("a new client's first calls: scripts and plain commands in the same event-loop turn", async () => {
    await createUser(backend.db, 'shared', undefined, T0);
    // A client that has sent nothing yet. Real Redis clients pipeline the commands of one turn
    // together; a script defined only on first use was missing from that turn's pipeline, and
    // ioredis threw out of its reply handling (ioredis #1931), which would crash a server.
    const fresh = backend.connect();
    const calls: Promise<unknown>[] = [];
    for (let i = 1; i <= 10; i++) {
      calls.push(getProfile(fresh, 'shared'));
      calls.push(updateProfile(fresh, 'shared', { nick: `fresh-${i}` }, T0 + i));
    }
    const settled = await Promise.allSettled(calls);
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    expect((await getProfile(backend.db, 'shared'))?.nick).toBe('fresh-10');
  });

  it('awaited in order per field: the last write of each field wins', async () => {
    const a = backend.db;
    const b = backend.connect();
    await createUser(a, 'shared', undefined, T0);
    const writer = async (
      db: typeof a,
      patch: (i: number) => Parameters<typeof updateProfile>[2],
    ): Promise<ProfileChangeEvent[]> => {
      const events: ProfileChangeEvent[] = [];
      for (let i = 1; i <= 50; i++) events.push(await updateProfile(db, 'shared', patch(i), T0));
      return events;
    };
    const [eventsA, eventsB] = await Promise.all([
      writer(a, (i) => ({ nick: `A${i}`, sign: `A${i}` })),
      writer(b, (i) => ({ email: `b${i}@example.com`, tel: String(i) })),
    ]);
    const final = await getProfile(b, 'shared');
    expect(final).toMatchObject({ nick: 'A50', sign: 'A50', email: 'b50@example.com', tel: '50' });
    const all = [...eventsA, ...eventsB].sort((x, y) => Number(x.id) - Number(y.id));
    expect(new Set(all.map((e) => e.id)).size).toBe(100);
    expect(all.map((e) => e.profile.updateTime)).toEqual(
      Array.from({ length: 100 }, (_, i) => T0 + i + 1),
    );
  });
});
