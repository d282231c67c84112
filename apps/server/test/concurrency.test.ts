/**
 * Two devices of one account editing different fields of its profile at the same time, through
 * real HTTP: no write is lost, each field ends with its last acknowledged value, updateTime only
 * goes forward, and the change log holds exactly one event per acknowledged write, in order.
 * Runs in memory mode and against a real Redis.
 */
import {
  cursorPosition,
  lastEventId,
  partitionOf,
  readLogSince,
  type Profile,
  type ProfileChangeEvent,
} from '@namecard/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClient,
  clientFor,
  describeRealRedis,
  realRedisUrl,
  startTestServer,
  type Client,
  type TestServer,
} from './helpers';

const redis = await realRedisUrl();

type Patch = Partial<Pick<Profile, 'nick' | 'sign' | 'email' | 'tel'>>;
type Device = 'A' | 'B';

/** Device A edits nick + sign, device B email + tel; every value names its device and counter. */
const patchOf = (device: Device, i: number): Patch =>
  device === 'A'
    ? { nick: `A nick ${i}`, sign: `A sign ${i}` }
    : { email: `b${i}@device-b.example.com`, tel: `+1-555-${String(i).padStart(4, '0')}` };

interface Ack {
  device: Device;
  i: number;
  patch: Patch;
  profile: Profile;
}

async function eventsSince(server: TestServer, afterId: string): Promise<ProfileChangeEvent[]> {
  const read = await readLogSince(server.db, afterId, 10_000);
  expect(read.gap).toBe(false);
  return read.events;
}

async function storedAlice(server: TestServer): Promise<Profile> {
  const [profile] = await adminClient(server).admin.getUsers.query({ accounts: ['alice'] });
  if (!profile) throw new Error('alice is gone');
  return profile;
}

/**
 * The log after `baseline` must hold exactly one event per acknowledged write, with unique,
 * increasing ids, and each acknowledgement must be its event's profile. Every logged
 * state must be the previous one with that write's patch applied (nothing lost, nothing mixed in),
 * and updateTime must strictly increase along the log. Returns the acks in log order.
 */
function checkLog(events: ProfileChangeEvent[], acks: Ack[], baseline: string): Ack[] {
  expect(events).toHaveLength(acks.length);
  // alice's events: one partition, so her ids are one increasing sequence after the baseline's.
  const ids = events.map((e) => BigInt(e.id));
  expect(new Set(ids).size).toBe(ids.length);
  const start = cursorPosition(baseline, partitionOf('alice'));
  ids.forEach((id, k) => expect(id).toBeGreaterThan(k === 0 ? start : ids[k - 1]!));

  const byUpdateTime = new Map<number, Ack>();
  for (const ack of acks) {
    expect(
      byUpdateTime.has(ack.profile.updateTime),
      `two acks with updateTime ${ack.profile.updateTime}`,
    ).toBe(false);
    byUpdateTime.set(ack.profile.updateTime, ack);
  }
  const ordered: Ack[] = [];
  let previous: Profile | undefined;
  for (const event of events) {
    expect(event.account).toBe('alice');
    const ack = byUpdateTime.get(event.profile.updateTime);
    expect(ack, `no acknowledged write for event ${event.id}`).toBeDefined();
    expect(event.profile).toEqual(ack!.profile);
    byUpdateTime.delete(event.profile.updateTime);
    if (previous) {
      expect(event.profile.updateTime).toBeGreaterThan(previous.updateTime);
      expect(event.profile).toEqual({
        ...previous,
        ...ack!.patch,
        updateTime: event.profile.updateTime,
      });
    }
    previous = event.profile;
    ordered.push(ack!);
  }
  expect(byUpdateTime.size).toBe(0);
  return ordered;
}

/** The value of each field written by the last write (in log order) that included it. */
function lastWritten(ordered: Ack[]): Patch {
  const expected: Patch = {};
  for (const ack of ordered) Object.assign(expected, ack.patch);
  return expected;
}

function concurrencySuite(start: () => Promise<TestServer>): void {
  let server: TestServer;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('two devices, each writing in sequence, concurrently: each field ends at its last acknowledged write', async () => {
    const N = 100;
    const devices: Record<Device, Client> = {
      A: clientFor(server.url, { token: server.tokens.alice }),
      B: clientFor(server.url, { token: server.tokens.alice }),
    };
    const baseline = await lastEventId(server.db);
    const before = await storedAlice(server);

    const run = async (device: Device): Promise<Ack[]> => {
      const acks: Ack[] = [];
      for (let i = 0; i < N; i++) {
        const patch = patchOf(device, i);
        const profile = await devices[device].user.updateMyInfo.mutate(patch);
        expect(profile).toMatchObject(patch); // my own write is in my answer
        const last = acks.at(-1)?.profile.updateTime ?? before.updateTime;
        expect(profile.updateTime, `device ${device} write ${i}`).toBeGreaterThan(last);
        acks.push({ device, i, patch, profile });
      }
      return acks;
    };
    const [a, b] = await Promise.all([run('A'), run('B')]);

    const final = await storedAlice(server);
    expect(final).toMatchObject({ ...patchOf('A', N - 1), ...patchOf('B', N - 1) });
    expect(final).toMatchObject({
      account: 'alice',
      createTime: before.createTime,
      gender: before.gender,
      birth: before.birth,
    });
    expect(final.updateTime).toBe(
      Math.max(a.at(-1)!.profile.updateTime, b.at(-1)!.profile.updateTime),
    );

    const ordered = checkLog(await eventsSince(server, baseline), [...a, ...b], baseline);
    expect(final).toMatchObject(lastWritten(ordered));
    // Each device's writes appear in the log in the order it made them, and the two interleave.
    for (const device of ['A', 'B'] as const) {
      expect(ordered.filter((x) => x.device === device).map((x) => x.i)).toEqual([
        ...Array(N).keys(),
      ]);
    }
    const switches = ordered.filter((x, k) => k > 0 && x.device !== ordered[k - 1]!.device).length;
    expect(switches).toBeGreaterThan(1);
  });

  it('all writes of both devices at once: one event per write, no field lost', async () => {
    const M = 60;
    const devices: Record<Device, Client> = {
      A: clientFor(server.url, { token: server.tokens.alice }),
      B: clientFor(server.url, { token: server.tokens.alice }),
    };
    const baseline = await lastEventId(server.db);
    const calls: Promise<Ack>[] = [];
    for (let i = 0; i < M; i++) {
      for (const device of ['A', 'B'] as const) {
        const patch = patchOf(device, 1000 + i);
        calls.push(
          devices[device].user.updateMyInfo
            .mutate(patch)
            .then((profile) => ({ device, i, patch, profile })),
        );
      }
    }
    const acks = await Promise.all(calls);
    for (const ack of acks) expect(ack.profile).toMatchObject(ack.patch);

    const ordered = checkLog(await eventsSince(server, baseline), acks, baseline);
    const final = await storedAlice(server);
    expect(final).toEqual(ordered.at(-1)!.profile);
    expect(final).toMatchObject(lastWritten(ordered));
  });

  it('two devices on two server instances sharing the data set', async () => {
    const N = 40;
    const second = await startTestServer({ shareWith: server });
    try {
      const devices: Record<Device, Client> = {
        A: clientFor(server.url, { token: server.tokens.alice }),
        B: clientFor(second.url, { token: server.tokens.alice }),
      };
      const baseline = await lastEventId(server.db);
      const run = async (device: Device): Promise<Ack[]> => {
        const acks: Ack[] = [];
        for (let i = 0; i < N; i++) {
          const patch = patchOf(device, 2000 + i);
          const profile = await devices[device].user.updateMyInfo.mutate(patch);
          if (acks.length > 0)
            expect(profile.updateTime).toBeGreaterThan(acks.at(-1)!.profile.updateTime);
          acks.push({ device, i, patch, profile });
        }
        return acks;
      };
      const [a, b] = await Promise.all([run('A'), run('B')]);
      const final = await storedAlice(server);
      expect(await storedAlice(second)).toEqual(final);
      expect(final).toMatchObject({ ...patchOf('A', 2000 + N - 1), ...patchOf('B', 2000 + N - 1) });
      checkLog(await eventsSince(server, baseline), [...a, ...b], baseline);
    } finally {
      await second.close();
    }
  });
}

describe('concurrent edits of one profile [memory]', () => {
  concurrencySuite(() => startTestServer());
});

describeRealRedis('concurrent edits of one profile', redis, (url) => {
  concurrencySuite(() => startTestServer({ redisUrl: url }));
});
