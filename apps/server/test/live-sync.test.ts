/**
 * user.sync over many friends comes in bounded pages: each page covers at most `limit` friends
 * (default and maximum LIMITS.syncPage), a `nextPage` token continues it, every page carries the
 * cursor of the first, and gathering the pages gives every friend exactly once. A `since` that no
 * longer exists in the log answers a full sync, flagged `full`. Memory mode and Redis.
 */
import {
  ALL_PARTITIONS,
  addFriend,
  createAccount,
  keys,
  LIMITS,
  parseCursor,
  updateProfile,
  type Db,
} from '@namecard/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clientFor,
  demoClient,
  describeRealRedis,
  expectTRPCError,
  startTestServer,
  type TestServer,
} from './helpers';
import { redisServerBinary, useOwnRedisStack } from './live-helpers';

const FRIENDS = 620;

function syncSuite(get: () => { server: TestServer; db: Db }) {
  let friends: string[] = [];
  beforeAll(async () => {
    const { db } = get();
    await createAccount(db, { account: 'many', token: 'many-token-0123456789' });
    friends = Array.from({ length: FRIENDS }, (_, i) => `f${String(i).padStart(4, '0')}`);
    for (const account of friends) {
      await createAccount(db, { account, profile: { email: `${account}@example.com` } });
      await addFriend(db, 'many', account);
    }
    // A third of them share their private fields with "many".
    for (const account of friends.filter((_, i) => i % 3 === 0)) {
      await addFriend(db, account, 'many');
    }
  }, 120_000);

  const many = () => clientFor(get().server.url, { token: 'many-token-0123456789' });

  it(`pages of at most ${LIMITS.syncPage} friends (or the limit asked for) gather every friend once`, async () => {
    // (Failed before: one answer held every friend, whatever their number.)
    const client = many();
    const first = await client.user.sync.query();
    expect(first.users).toHaveLength(LIMITS.syncPage);
    expect(first.full).toBe(true);
    expect(first.nextPage).toEqual(expect.any(String));

    const pages = [];
    let page: string | null = null;
    do {
      const answer: Awaited<ReturnType<typeof client.user.sync.query>> =
        await client.user.sync.query({ limit: 250, page });
      expect(answer.users.length).toBeLessThanOrEqual(250);
      pages.push(answer);
      page = answer.nextPage;
    } while (page && pages.length < 10);
    expect(pages.map((p) => p.users.length)).toEqual([250, 250, FRIENDS - 500]);
    expect(new Set(pages.map((p) => p.cursor)).size).toBe(1);
    const gathered = pages.flatMap((p) => p.users);
    expect(gathered.map((u) => u.account)).toEqual(friends);
    // Each filtered for "many": email only where the friend added "many" back.
    gathered.forEach((u, i) => expect('email' in u, u.account).toBe(i % 3 === 0));
  });

  it('an incremental sync pages the same way and holds only the changed friends', async () => {
    const client = many();
    const { cursor } = await client.user.sync.query({ limit: 1 });
    await updateProfile(get().db, 'f0001', { sign: 'changed' });
    await updateProfile(get().db, 'f0600', { sign: 'changed' });
    const first = await client.user.sync.query({ since: cursor, limit: 300 });
    expect(first.full).toBe(false);
    const rest = await client.user.sync.query({ page: first.nextPage, limit: 300 });
    const last = await client.user.sync.query({ page: rest.nextPage, limit: 300 });
    expect(last.nextPage).toBeNull();
    expect([first, rest, last].map((p) => p.users.map((u) => u.account))).toEqual([
      ['f0001'],
      [],
      ['f0600'],
    ]);
  });

  it('a since that no longer exists answers a full sync', async () => {
    const client = many();
    const { cursor } = await client.user.sync.query({ limit: 1 });
    // As after Redis lost its newest writes (or the log was trimmed past it).
    const parsed = parseCursor(cursor);
    if (parsed.kind !== 'positions') throw new Error('a cursor of this layout expected');
    for (const p of ALL_PARTITIONS) {
      const at = parsed.positions[p]!;
      if (at !== '0') await get().db.redis.zremrangebyscore(keys.log(p), at, at);
    }
    const answer = await client.user.sync.query({ since: cursor, limit: 100 });
    expect(answer.full).toBe(true);
    expect(answer.users).toHaveLength(100);
  });

  it('a bad page token or limit is BAD_REQUEST naming it', async () => {
    const alice = demoClient(get().server, 'alice');
    await expectTRPCError(alice.user.sync.query({ page: 'not-a-token' }), 'BAD_REQUEST', ['page']);
    await expectTRPCError(alice.user.sync.query({ limit: LIMITS.syncPage + 1 }), 'BAD_REQUEST', [
      'limit',
    ]);
    await expectTRPCError(alice.user.sync.query({ limit: 0 }), 'BAD_REQUEST', ['limit']);
  });
}

describe('user.sync pages [memory mode]', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });
  syncSuite(() => ({ server, db: server.db }));
});

describeRealRedis('user.sync pages', redisServerBinary('sync paging tests'), () => {
  const stack = useOwnRedisStack();
  syncSuite(() => ({ server: stack.server, db: stack.store }));
});
