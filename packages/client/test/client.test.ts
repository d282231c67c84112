/**
 * createNamecardClient against a real server (memory mode, in this process, real HTTP and SSE).
 */
import { TRPCClientError } from '@trpc/client';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { LIMITS } from '@namecard/db/schema';
import { createNamecardClient, createNamecardTrpc, NamecardClientClosedError } from '../src';
import {
  adminClient,
  closeAll,
  countingFetch,
  createAccounts,
  recordingClient,
  sleep,
  startTestServer,
  waitFor,
  type TestServer,
} from './helpers';

let server: TestServer;
/** Accounts that are nobody's friends: u000 ... u319. */
const MANY = Array.from({ length: 320 }, (_, i) => `u${String(i).padStart(3, '0')}`);

beforeAll(async () => {
  server = await startTestServer();
  await createAccounts(server, [...MANY, 'dave', 'erin', 'frank', 'grace']);
});
afterEach(closeAll);
afterAll(async () => {
  await server?.close();
});

/** A plain typed client signed in as `token` (another session of that account). */
const session = (token: string) => createNamecardTrpc({ url: server.url, token });
/** How many operations of `path` (e.g. `user.getUsers`) the recorded requests carried. */
const ops = (paths: readonly string[], path: string) =>
  paths.flatMap((p) => p.replace(/^\/trpc\//, '').split(',')).filter((p) => p === path).length;

describe('start: initial sync and callbacks', () => {
  test('onmyinfo comes first with my profile, then onusers with my friends; then ready and live', async () => {
    const statuses: string[] = [];
    const { client, log, errors } = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      onstatus: (s) => statuses.push(s),
    });
    expect(client.status).toBe('starting');
    await client.ready;

    expect(log.map((d) => d.cb)).toEqual(['onmyinfo', 'onusers']);
    const [first, second] = log;
    if (first?.cb !== 'onmyinfo' || second?.cb !== 'onusers') throw new Error('unexpected order');
    expect(first.profile).toMatchObject({
      account: 'alice',
      nick: 'Alice Liddell',
      email: 'alice@example.com',
    });
    expect(second.profiles.map((p) => p.account).sort()).toEqual(['bob', 'carol']);
    // bob and carol added alice as a friend, so she sees their private fields.
    expect(second.profiles.find((p) => p.account === 'bob')).toMatchObject({
      email: 'bob@example.com',
    });

    expect(client.status).toBe('live');
    expect(statuses).toEqual(['live']);
    expect(client.account).toBe('alice');
    expect(client.cursor).toMatch(/^n24_[0-9a-z]+_[0-9a-z.]+$/);
    expect(client.cached('bob')?.nick).toBe('Bob 鲍勃');
    expect(errors).toEqual([]);
  });

  test('syncFriendUsers: false delivers onmyinfo only', async () => {
    const { client, log } = recordingClient({
      url: server.url,
      token: server.tokens.bob,
      syncFriendUsers: false,
    });
    await client.ready;
    expect(log.map((d) => d.cb)).toEqual(['onmyinfo']);
  });

  test('an account without friends still gets onusers, with an empty list', async () => {
    const tokens = await createAccounts(server, ['loner']);
    const { client, log } = recordingClient({ url: server.url, token: tokens.get('loner')! });
    await client.ready;
    expect(log).toEqual([
      expect.objectContaining({ cb: 'onmyinfo' }),
      { cb: 'onusers', profiles: [] },
    ]);
  });

  test('the url may be the base URL or the /trpc endpoint, with or without a trailing slash', async () => {
    for (const url of [`${server.url}/`, `${server.url}/trpc`, `${server.url}/trpc/`]) {
      const { client } = recordingClient({ url, token: server.tokens.carol });
      await client.ready;
      expect((await client.getMyInfo()).account).toBe('carol');
    }
  });

  test('a bad token: ready rejects with UNAUTHORIZED, status failed, no retries', async () => {
    const counting = countingFetch();
    const { client, errors } = recordingClient({
      url: server.url,
      token: 'not-a-real-token-at-all',
      fetch: counting.fetch,
    });
    const error = await client.ready.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<never>).message).toMatch(/token/);
    expect(client.status).toBe('failed');
    expect(errors.map((e) => e.source)).toEqual(['sync']);
    await sleep(300);
    expect(counting.paths).toHaveLength(1);
  });

  test('watch beyond the limit is refused at once', () => {
    const watch = Array.from({ length: LIMITS.watch + 1 }, (_, i) => `w${i}`);
    expect(() =>
      createNamecardClient({ url: server.url, token: server.tokens.alice, watch }),
    ).toThrow(RangeError);
  });
});

describe('batching of calls', () => {
  test('calls made in one tick share a request by default, and go out one by one with batch: false', async () => {
    const batched = countingFetch();
    const a = createNamecardTrpc({
      url: server.url,
      token: server.tokens.alice,
      fetch: batched.fetch,
    });
    await Promise.all([a.user.getMyInfo.query(), a.user.getUser.query({ account: 'bob' })]);
    expect(batched.paths).toEqual(['/trpc/user.getMyInfo,user.getUser']);

    const single = countingFetch();
    const b = createNamecardTrpc({
      url: server.url,
      token: server.tokens.alice,
      fetch: single.fetch,
      batch: false,
    });
    await Promise.all([b.user.getMyInfo.query(), b.user.getUser.query({ account: 'bob' })]);
    expect([...single.paths].sort()).toEqual(['/trpc/user.getMyInfo', '/trpc/user.getUser']);
  });
});

describe('getUsers', () => {
  test(`more than ${LIMITS.getUsers} accounts: batches of ${LIMITS.getUsers}, input order, duplicates collapse`, async () => {
    const counting = countingFetch();
    const { client } = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      fetch: counting.fetch,
    });
    await client.ready;
    // A shuffled order (deterministic), duplicates, and one account that does not exist.
    const shuffled = [...MANY].sort(
      (a, b) => ((Number(a.slice(1)) * 7919) % 320) - ((Number(b.slice(1)) * 7919) % 320),
    );
    const input = [
      ...shuffled.slice(0, 200),
      'nobody',
      ...shuffled.slice(0, 10),
      ...shuffled.slice(200),
      'u005',
    ];

    const users = await client.getUsers(input);
    expect(users.map((u) => u.account)).toEqual(shuffled); // 320: each once, first-occurrence order, 'nobody' left out
    expect(users[0]).toMatchObject({ nick: `Nick ${shuffled[0]}` });
    expect(users[0]).not.toHaveProperty('email'); // strangers' private fields stay private
    // 321 distinct accounts -> 150 + 150 + 21: three requests, each with one getUsers call.
    expect(counting.count('/trpc/user.getUsers')).toBe(3);
    expect(ops(counting.paths, 'user.getUsers')).toBe(3);
    expect(client.cached('u319')?.account).toBe('u319');
  });

  test('exactly the batch size is one request; an empty list is none', async () => {
    const counting = countingFetch();
    const { client } = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      fetch: counting.fetch,
    });
    await client.ready;
    expect(await client.getUsers([])).toEqual([]);
    expect((await client.getUsers(MANY.slice(0, LIMITS.getUsers))).length).toBe(LIMITS.getUsers);
    expect(counting.count('/trpc/user.getUsers')).toBe(1);
  });

  test('a batch that fails rejects the whole call', async () => {
    const { client } = recordingClient({ url: server.url, token: server.tokens.alice });
    await client.ready;
    await expect(client.getUsers([...MANY.slice(0, 200), 'bad account!'])).rejects.toThrow(
      TRPCClientError,
    );
  });
});

describe('mergeUsers and the cache', () => {
  test('client.mergeUsers: newer wins, ties go to the later copy, and the cache takes the result', async () => {
    const { client } = recordingClient({ url: server.url, token: server.tokens.alice });
    await client.ready;
    const bob = client.cached('bob')!;
    const newer = { ...bob, sign: 'newer', updateTime: bob.updateTime + 10 };
    const older = { ...bob, sign: 'older', updateTime: bob.updateTime - 10 };
    const tie = { ...bob, sign: 'tie' };

    expect(client.mergeUsers([older], [bob])).toEqual([bob]);
    expect(client.cached('bob')).toEqual(bob);
    expect(client.mergeUsers([tie])).toEqual([tie]);
    expect(client.cached('bob')?.sign).toBe('tie');
    expect(client.mergeUsers([newer], [older])).toEqual([newer]);
    expect(client.cached('bob')?.sign).toBe('newer');
    // An older copy merged later never replaces the newer cached one.
    client.mergeUsers([older]);
    expect(client.cached('bob')?.sign).toBe('newer');
  });
});

describe('refreshIfStale', () => {
  test('fetches only when the cached copy is older or missing; concurrent calls share one request', async () => {
    const counting = countingFetch();
    const { client } = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      fetch: counting.fetch,
    });
    await client.ready;
    const getUserCalls = () => ops(counting.paths, 'user.getUser');

    // bob is cached from the sync: as new or newer than asked -> no request.
    const bob = client.cached('bob')!;
    expect(await client.refreshIfStale('bob', bob.updateTime)).toEqual(bob);
    expect(await client.refreshIfStale('bob', bob.updateTime - 1000)).toEqual(bob);
    expect(getUserCalls()).toBe(0);

    // dave is not cached: fetched once, then known.
    const dave = await client.refreshIfStale('dave', 1);
    expect(dave.account).toBe('dave');
    expect(getUserCalls()).toBe(1);
    expect(await client.refreshIfStale('dave', dave.updateTime)).toEqual(dave);
    expect(getUserCalls()).toBe(1);

    // dave changes (alice does not watch him): a newer updateTime makes the copy stale.
    const changed = await adminClient(server).admin.updateUser.mutate({
      account: 'dave',
      patch: { sign: 'new sign' },
    });
    const refreshed = await client.refreshIfStale('dave', changed.updateTime);
    expect(refreshed).toMatchObject({ sign: 'new sign', updateTime: changed.updateTime });
    expect(getUserCalls()).toBe(2);

    // Five concurrent calls for erin (not cached): one request.
    const all = await Promise.all(
      Array.from({ length: 5 }, () => client.refreshIfStale('erin', 1)),
    );
    expect(new Set(all.map((p) => p.account))).toEqual(new Set(['erin']));
    expect(getUserCalls()).toBe(3);

    await expect(client.refreshIfStale('nobody', 1)).rejects.toThrow(/no user nobody/);
  });
});

describe('live changes', () => {
  test('onupdatemyinfo: a change of my profile from another session arrives', async () => {
    const { client, updates } = recordingClient({ url: server.url, token: server.tokens.carol });
    await client.ready;
    const made = await session(server.tokens.carol).user.updateMyInfo.mutate({
      sign: 'from my phone',
    });
    await waitFor(() => updates().length === 1, 5000, 'onupdatemyinfo');
    expect(updates()).toEqual([{ cb: 'onupdatemyinfo', profile: made }]);
    expect(client.cached('carol')).toEqual(made);

    // A change through this client's own updateMyInfo comes back through the feed too.
    const own = await client.updateMyInfo({ nick: 'Carol C.' });
    expect(own.nick).toBe('Carol C.');
    await waitFor(() => updates().length === 2, 5000, 'onupdatemyinfo (own change)');
    expect(updates()[1]).toEqual({ cb: 'onupdatemyinfo', profile: own });
  });

  test("onupdateuser: a friend's change and a watched account's change arrive; a stranger's does not", async () => {
    const { client, updates, errors } = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      watch: ['frank'],
    });
    await client.ready;
    const admin = adminClient(server);
    // The stranger first, so that once the later changes arrived, it would have arrived too.
    await admin.admin.updateUser.mutate({ account: 'grace', patch: { sign: 'stranger' } });
    const friend = await session(server.tokens.bob).user.updateMyInfo.mutate({
      sign: 'friend change',
    });
    const watched = await admin.admin.updateUser.mutate({
      account: 'frank',
      patch: { sign: 'watched change' },
    });

    await waitFor(() => updates().length >= 2, 5000, 'two updates');
    await sleep(100);
    // frank has not added alice as a friend: his email and tel stay private.
    const { email: _email, tel: _tel, ...watchedPublic } = watched;
    expect(updates()).toEqual([
      { cb: 'onupdateuser', profile: friend },
      { cb: 'onupdateuser', profile: watchedPublic },
    ]);
    expect(client.cached('frank')?.sign).toBe('watched change');
    expect(client.cached('grace')).toBeUndefined();
    expect(errors).toEqual([]);
  });

  test('a callback that throws goes to onerror and delivery goes on', async () => {
    const errors: unknown[] = [];
    const seen: string[] = [];
    const client = createNamecardClient({
      url: server.url,
      token: server.tokens.alice,
      onerror: (error, source) => errors.push([source, (error as Error).message]),
      onupdateuser: (p) => {
        seen.push(p.sign);
        if (p.sign === 'first') throw new Error('callback broke');
      },
    });
    try {
      await client.ready;
      const bob = session(server.tokens.bob);
      await bob.user.updateMyInfo.mutate({ sign: 'first' });
      await bob.user.updateMyInfo.mutate({ sign: 'second' });
      await waitFor(() => seen.length === 2, 5000, 'two updates');
      expect(seen).toEqual(['first', 'second']);
      expect(errors).toEqual([['callback', 'callback broke']]);
    } finally {
      await client.close();
    }
  });
});

describe('close', () => {
  test('ends the subscription: no callbacks afterwards; idempotent', async () => {
    const counting = countingFetch();
    const { client, updates } = recordingClient({
      url: server.url,
      token: server.tokens.alice,
      fetch: counting.fetch,
    });
    await client.ready;
    await client.close();
    await client.close();
    expect(client.status).toBe('closed');
    await session(server.tokens.bob).user.updateMyInfo.mutate({ sign: 'after close' });
    await sleep(300);
    expect(updates()).toEqual([]);
    expect(counting.count('/trpc/user.onChange')).toBe(1);
    // The typed calls still work: close() only stops the live part.
    expect((await client.getUser('bob')).sign).toBe('after close');
  });

  test('closing before ready rejects ready with NamecardClientClosedError and delivers nothing', async () => {
    const { client, log } = recordingClient({ url: server.url, token: server.tokens.alice });
    const closing = client.close();
    await expect(client.ready).rejects.toBeInstanceOf(NamecardClientClosedError);
    await closing;
    await sleep(200);
    expect(log).toEqual([]);
  });
});

test('trpc: the raw typed client reaches everything else (friends, admin with adminSecret)', async () => {
  const { client } = recordingClient({
    url: server.url,
    token: server.tokens.alice,
    adminSecret: server.adminSecret,
  });
  await client.ready;
  await client.trpc.friend.add.mutate({ account: 'dave' });
  expect(await client.trpc.friend.list.query()).toContain('dave');
  const [dave] = await client.trpc.admin.getUsers.query({ accounts: ['dave'] });
  expect(dave?.account).toBe('dave');
  await client.trpc.friend.remove.mutate({ account: 'dave' });
});
