/**
 * `@namecard/client/nim` against a real server (memory mode, in this process, real HTTP and SSE):
 * NIM's callback order, done(error, result) exactly once plus a promise, the 150 limit without a
 * request, syncFriendUsers, cached reads vs sync: true, the singleton, disconnect/connect,
 * destroy, NIM-like errors, mergeUsers and NIM.util.merge.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createNamecardTrpc } from '../src';
import { NIM, NIMError, type NIMOptions, type NIMUser } from '../src/nim';
import {
  adminClient,
  countingFetch,
  cuttableFetch,
  createAccounts,
  startTestServer,
  waitFor,
  type TestServer,
} from './helpers';

let server: TestServer;
let tokens: Map<string, string>;
const MANY = Array.from({ length: 151 }, (_, i) => `m${String(i).padStart(3, '0')}`);

beforeAll(async () => {
  server = await startTestServer();
  tokens = await createAccounts(server, ['dave', 'erin', ...MANY.slice(0, 3)]);
});
const opened: NIM[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((nim) => nim.destroy()));
});
afterAll(async () => {
  await server?.close();
});

type Event = [string, ...unknown[]];

/** A NIM instance whose callbacks record into `events`; destroyed after each test. */
function nimFor(account: string, token: string, extra: Partial<NIMOptions> = {}) {
  const events: Event[] = [];
  const counter = countingFetch();
  const nim = NIM.getInstance({
    url: server.url,
    account,
    token,
    fetch: counter.fetch,
    onconnect: () => events.push(['onconnect']),
    onmyinfo: (user) => events.push(['onmyinfo', user]),
    onusers: (users) => events.push(['onusers', users]),
    onsyncdone: () => events.push(['onsyncdone']),
    onupdatemyinfo: (user) => events.push(['onupdatemyinfo', user]),
    onupdateuser: (user) => events.push(['onupdateuser', user]),
    onwillreconnect: (info) => events.push(['onwillreconnect', info]),
    ondisconnect: (error) => events.push(['ondisconnect', error]),
    onerror: (error) => events.push(['onerror', error]),
    ...extra,
  });
  opened.push(nim);
  const names = () => events.map((e) => e[0]);
  const synced = () => waitFor(() => names().includes('onsyncdone'), 10_000, 'onsyncdone');
  return { nim, events, names, synced, counter };
}

/** A `done` that records every call, to check it runs exactly once. */
function doneRecorder<T>() {
  const calls: [NIMError | null, T | null][] = [];
  const done = (error: NIMError | null, result: T | null) => calls.push([error, result]);
  return { calls, done, settled: () => waitFor(() => calls.length > 0, 10_000, 'done') };
}

const session = (token: string) => createNamecardTrpc({ url: server.url, token });
const usersOf = (e: Event | undefined) => (e?.[1] as NIMUser[]).map((u) => u.account).sort();

describe('connect: NIM callback order', () => {
  test('onconnect, onmyinfo (NIM format), onusers with the friends, onsyncdone', async () => {
    const { names, events, synced } = nimFor('alice', server.tokens.alice);
    await synced();
    expect(names()).toEqual(['onconnect', 'onmyinfo', 'onusers', 'onsyncdone']);
    const me = events[1]![1] as NIMUser;
    expect(me).toMatchObject({ account: 'alice', email: 'alice@example.com' });
    expect(['unknown', 'male', 'female']).toContain(me.gender);
    expect(typeof me.createTime).toBe('number');
    expect(me.updateTime).toBeGreaterThanOrEqual(me.createTime);
    expect(usersOf(events[2])).toEqual(['bob', 'carol']);
  });

  test('syncFriendUsers: false gives no onusers', async () => {
    const { names, synced } = nimFor('bob', server.tokens.bob, { syncFriendUsers: false });
    await synced();
    expect(names()).toEqual(['onconnect', 'onmyinfo', 'onsyncdone']);
  });

  test('a bad token: ondisconnect with 302, and calls fail with 302', async () => {
    const { events, nim } = nimFor('alice', 'not-a-real-token-0123456789');
    const update = doneRecorder<NIMUser>();
    const promise = nim.updateMyInfo({ nick: 'x', done: update.done });
    await waitFor(() => events.some((e) => e[0] === 'ondisconnect'), 10_000, 'ondisconnect');
    const disconnect = events.find((e) => e[0] === 'ondisconnect')!;
    expect(disconnect[1]).toBeInstanceOf(NIMError);
    expect((disconnect[1] as NIMError).code).toBe(302);
    await expect(promise).rejects.toMatchObject({ code: 302 });
    expect(update.calls).toHaveLength(1);
    expect(update.calls[0]![0]).toMatchObject({ code: 302 });
  });

  test("a token of another account than `account`: 302, and no onmyinfo with someone else's profile", async () => {
    const { events } = nimFor('alice', server.tokens.bob);
    await waitFor(() => events.some((e) => e[0] === 'ondisconnect'), 10_000, 'ondisconnect');
    expect(events.map((e) => e[0])).toEqual(['ondisconnect']);
    expect((events[0]![1] as NIMError).code).toBe(302);
  });
});

describe('updateMyInfo', () => {
  test("the guide's invalid custom: done once with 414 naming custom; nothing changes", async () => {
    const { nim, synced } = nimFor('carol', server.tokens.carol);
    await synced();
    const before = await session(server.tokens.carol).user.getMyInfo.query();
    const update = doneRecorder<NIMUser>();
    const promise = nim.updateMyInfo({
      nick: 'newNick',
      custom: '{type: "newCustom", value: "new"}',
      done: update.done,
    });
    await expect(promise).rejects.toBeInstanceOf(NIMError);
    await update.settled();
    expect(update.calls).toHaveLength(1);
    const [error, result] = update.calls[0]!;
    expect(result).toBeNull();
    expect(error).toMatchObject({
      code: 414,
      event: { api: 'updateMyInfo', trpcCode: 'BAD_REQUEST' },
    });
    expect(error!.message).toMatch(/custom/);
    expect(Object.keys(error!.fieldErrors!)).toEqual(['custom']);
    expect(await session(server.tokens.carol).user.getMyInfo.query()).toEqual(before);
  });

  test('success: done(null, user) and the promise; no onupdatemyinfo for my own change, one for another session', async () => {
    const { nim, events, synced, names } = nimFor('dave', tokens.get('dave')!);
    await synced();
    const update = doneRecorder<NIMUser>();
    const user = await nim.updateMyInfo({ sign: 'mine', gender: 'female', done: update.done });
    expect(user).toMatchObject({ account: 'dave', sign: 'mine', gender: 'female' });
    expect(update.calls).toEqual([[null, user]]);

    await session(tokens.get('dave')!).user.updateMyInfo.mutate({ nick: 'from the phone' });
    await waitFor(() => names().includes('onupdatemyinfo'), 10_000, 'onupdatemyinfo');
    const updates = events.filter((e) => e[0] === 'onupdatemyinfo');
    // Only the other session's change: the echo of my own updateMyInfo is not reported.
    expect(updates).toHaveLength(1);
    expect(updates[0]![1]).toMatchObject({ nick: 'from the phone', sign: 'mine' });
  });
});

describe('getUser / getUsers', () => {
  test('more than 150 accounts: done with 414 and no request sent', async () => {
    const { nim, synced, counter } = nimFor('alice', server.tokens.alice);
    await synced();
    const before = counter.paths.length;
    const users = doneRecorder<NIMUser[]>();
    await expect(nim.getUsers({ accounts: MANY, done: users.done })).rejects.toMatchObject({
      code: 414,
      fieldErrors: { accounts: ['must list at most 150 accounts'] },
    });
    expect(users.calls).toHaveLength(1);
    expect(users.calls[0]![0]).toMatchObject({ code: 414 });
    expect(counter.paths.length).toBe(before);
    // Exactly 150 is allowed and is one request.
    const ok = await nim.getUsers({ accounts: MANY.slice(0, 150), sync: true });
    expect(ok.map((u) => u.account)).toEqual(MANY.slice(0, 3));
    expect(counter.count('/trpc/user.getUsers')).toBe(1);
  });

  test('cached reads unless sync: true', async () => {
    const { nim, synced, counter } = nimFor('alice', server.tokens.alice);
    await synced();
    const fetched = await nim.getUser({ account: 'erin' });
    expect(fetched.account).toBe('erin');
    const requests = counter.paths.length;

    // erin is neither a friend nor watched: her change does not reach this instance.
    await adminClient(server).admin.updateUser.mutate({ account: 'erin', patch: { sign: 'v2' } });
    const cached = await nim.getUser({ account: 'erin' });
    expect(cached.sign).not.toBe('v2');
    expect(await nim.getUsers({ accounts: ['erin', 'bob'] })).toHaveLength(2);
    expect(counter.paths.length).toBe(requests); // both answered from the cache

    const fresh = await nim.getUser({ account: 'erin', sync: true });
    expect(fresh.sign).toBe('v2');
    expect(counter.paths.length).toBe(requests + 1);
    const batch = await nim.getUsers({ accounts: ['erin', 'nobody-here', 'bob'], sync: true });
    expect(batch.map((u) => u.account)).toEqual(['erin', 'bob']);
    expect(counter.paths.length).toBe(requests + 2);
  });

  test('a friend read from the cache is current: the live feed keeps it so', async () => {
    const { nim, synced, names } = nimFor('alice', server.tokens.alice);
    await synced();
    await session(server.tokens.bob).user.updateMyInfo.mutate({ sign: 'live sign' });
    await waitFor(() => names().includes('onupdateuser'), 10_000, 'onupdateuser');
    expect((await nim.getUser({ account: 'bob' })).sign).toBe('live sign');
  });

  test('an account that does not exist: 404', async () => {
    const { nim, synced } = nimFor('alice', server.tokens.alice);
    await synced();
    const user = doneRecorder<NIMUser>();
    await expect(nim.getUser({ account: 'ghost', done: user.done })).rejects.toMatchObject({
      code: 404,
    });
    expect(user.calls).toHaveLength(1);
  });
});

describe('instances', () => {
  test('getInstance is a singleton per account; a second call applies its new callbacks', async () => {
    const first = nimFor('alice', server.tokens.alice);
    await first.synced();
    const later: NIMUser[] = [];
    const again = NIM.getInstance({
      url: server.url,
      account: 'alice',
      token: server.tokens.alice,
      onupdateuser: (user) => later.push(user),
    });
    expect(again).toBe(first.nim);
    const other = nimFor('bob', server.tokens.bob);
    expect(other.nim).not.toBe(first.nim);

    await session(server.tokens.carol).user.updateMyInfo.mutate({ nick: 'Carol again' });
    await waitFor(() => later.length > 0, 10_000, 'the new onupdateuser');
    expect(later[0]).toMatchObject({ account: 'carol', nick: 'Carol again' });
    expect(first.names()).not.toContain('onupdateuser'); // the old callback was replaced
  });

  test('disconnect: ondisconnect(), calls fail; getInstance connects again and syncs what changed', async () => {
    const { nim, synced, events, names } = nimFor('alice', server.tokens.alice);
    await synced();
    const disconnected: (NIMError | null)[] = [];
    await nim.disconnect({ done: (error) => disconnected.push(error) });
    expect(disconnected).toEqual([null]);
    expect(events.at(-1)).toEqual(['ondisconnect', undefined]);
    await expect(nim.getUser({ account: 'bob' })).rejects.toMatchObject({ code: 'disconnected' });

    await session(server.tokens.bob).user.updateMyInfo.mutate({ sign: 'while you were away' });
    const count = events.length;
    expect(NIM.getInstance({ url: server.url, account: 'alice', token: server.tokens.alice })).toBe(
      nim,
    );
    await waitFor(() => names().slice(count).includes('onsyncdone'), 10_000, 'second sync');
    expect(names().slice(count)).toEqual(['onconnect', 'onmyinfo', 'onusers', 'onsyncdone']);
    // Incremental: only the friend who changed since.
    expect(usersOf(events[count + 2])).toEqual(['bob']);
  });

  test('a dropped stream: onwillreconnect, then onconnect again; a change made meanwhile arrives once', async () => {
    const cuttable = cuttableFetch();
    const { synced, events, names } = nimFor('alice', server.tokens.alice, {
      fetch: cuttable.fetch,
    });
    await synced();
    await waitFor(() => cuttable.lastEventIds.length === 1, 10_000, 'the live stream');
    const count = events.length;
    expect(cuttable.cut()).toBe(1);
    await session(server.tokens.bob).user.updateMyInfo.mutate({ sign: 'during the drop' });
    await waitFor(() => names().slice(count).includes('onupdateuser'), 10_000, 'the change');
    // onerror reports the drop (no answer: 415); the stream comes back by itself.
    expect(names().slice(count)).toEqual([
      'onerror',
      'onwillreconnect',
      'onconnect',
      'onupdateuser',
    ]);
    expect(events[count]![1]).toMatchObject({ code: 415 });
    const info = events[count + 1]![1] as { retryCount: number; duration: number };
    expect(info.retryCount).toBe(1);
    expect(info.duration).toBeGreaterThanOrEqual(0);
    expect(events.at(-1)![1]).toMatchObject({ account: 'bob', sign: 'during the drop' });
  });

  test('destroy: done, ondisconnect, the instance is gone and a new one replaces it', async () => {
    const { nim, synced, events } = nimFor('alice', server.tokens.alice);
    await synced();
    const destroyed: (NIMError | null)[] = [];
    await nim.destroy({ done: (error) => destroyed.push(error) });
    expect(destroyed).toEqual([null]);
    expect(events.at(-1)).toEqual(['ondisconnect', undefined]);
    await expect(nim.getUser({ account: 'bob' })).rejects.toMatchObject({ code: 'destroyed' });
    const count = events.length;

    const next = nimFor('alice', server.tokens.alice);
    expect(next.nim).not.toBe(nim);
    await next.synced();
    await session(server.tokens.bob).user.updateMyInfo.mutate({ nick: 'Bob after destroy' });
    await waitFor(() => next.names().includes('onupdateuser'), 10_000, 'onupdateuser');
    // The new instance got the change; the destroyed one, on the same server, got nothing.
    expect(events.length).toBe(count);
  });
});

describe('mergeUsers and NIM.util.merge', () => {
  const u = (account: string, updateTime: number, nick = `${account}@${updateTime}`) => ({
    account,
    updateTime,
    nick,
  });

  test('nim.mergeUsers: by account, newer updateTime wins, one user or a list, inputs untouched', () => {
    const { nim } = nimFor('alice', server.tokens.alice);
    const list = [u('a', 1), u('b', 5)];
    const snapshot = JSON.stringify(list);
    expect(nim.mergeUsers(list, u('a', 2))).toEqual([u('a', 2), u('b', 5)]);
    expect(nim.mergeUsers(list, [u('b', 4), u('c', 1)])).toEqual([u('a', 1), u('b', 5), u('c', 1)]);
    expect(nim.mergeUsers(undefined, [u('a', 1)])).toEqual([u('a', 1)]);
    expect(nim.mergeUsers(list, null)).toEqual(list);
    expect(nim.mergeUsers(list, u('a', 2))).not.toBe(list);
    expect(JSON.stringify(list)).toBe(snapshot);
  });

  test('NIM.util.merge: a new object, later wins, undefined skipped, an older profile does not roll back', () => {
    const mine = { account: 'a', nick: 'new', sign: 's', updateTime: 10 };
    const copy = { ...mine };
    expect(NIM.util.merge(mine, { nick: 'newer', updateTime: 11 })).toEqual({
      ...mine,
      nick: 'newer',
      updateTime: 11,
    });
    expect(NIM.util.merge(mine, { nick: 'stale', updateTime: 9 })).toEqual(mine);
    expect(NIM.util.merge(mine, { sign: undefined, nick: 'n2' })).toEqual({ ...mine, nick: 'n2' });
    expect(NIM.util.merge(undefined, mine)).toEqual(mine);
    expect(NIM.util.merge(mine, {})).not.toBe(mine);
    expect(mine).toEqual(copy);
  });
});
