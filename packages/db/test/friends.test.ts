import { expect, it } from 'vitest';
import {
  LIMITS,
  addFriend,
  getProfileAs,
  getProfilesAs,
  keys,
  lastEventId,
  listFriends,
  ownersSharingPrivateFields,
  readLogSince,
  removeFriend,
  syncUser,
  updateProfile,
  viewProfiles,
  getProfiles,
} from '../src';
import { describeEachBackend } from './backends';
import { accountsOf, createUser, listen } from './util';

describeEachBackend('friends', (backend) => {
  it('adds, reports already, removes and lists sorted', async () => {
    const { db } = backend;
    expect(await addFriend(db, 'alice', 'carol')).toBe('added');
    expect(await addFriend(db, 'alice', 'bob')).toBe('added');
    expect(await addFriend(db, 'alice', 'Zed')).toBe('added');
    expect(await addFriend(db, 'alice', 'bob')).toBe('already');
    expect(await listFriends(db, 'alice')).toEqual(['Zed', 'bob', 'carol']);
    expect(await listFriends(db, 'bob')).toEqual([]); // one-way
    expect(await removeFriend(db, 'alice', 'bob')).toBe(true);
    expect(await removeFriend(db, 'alice', 'bob')).toBe(false);
    expect(await removeFriend(db, 'alice', 'nobody')).toBe(false);
    expect(await listFriends(db, 'alice')).toEqual(['Zed', 'carol']);
    expect(await addFriend(db, 'alice', 'bob')).toBe('added');
  });

  it(`stops at LIMITS.friends (${LIMITS.friends})`, async () => {
    const { db } = backend;
    const existing = Array.from({ length: LIMITS.friends - 1 }, (_, i) => `f${i}`);
    await db.redis.sadd(keys.friends('alice'), ...existing);
    expect(await addFriend(db, 'alice', 'last')).toBe('added');
    expect(await addFriend(db, 'alice', 'one-too-many')).toBe('limit');
    expect(await addFriend(db, 'alice', 'f1')).toBe('already');
    expect(await db.redis.scard(keys.friends('alice'))).toBe(LIMITS.friends);
    expect(await removeFriend(db, 'alice', 'f0')).toBe(true);
    expect(await addFriend(db, 'alice', 'one-too-many')).toBe('added');
  });

  it('parallel adds cannot pass the limit or report one friend added twice', async () => {
    const { db } = backend;
    const other = backend.connect();
    await db.redis.sadd(
      keys.friends('alice'),
      ...Array.from({ length: LIMITS.friends - 2 }, (_, i) => `f${i}`),
    );
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => addFriend(i % 2 ? db : other, 'alice', `new${i}`)),
    );
    expect(results.filter((r) => r === 'added')).toHaveLength(2);
    expect(results.filter((r) => r === 'limit')).toHaveLength(8);
    expect(await db.redis.scard(keys.friends('alice'))).toBe(LIMITS.friends);

    const same = await Promise.all(
      Array.from({ length: 6 }, (_, i) => addFriend(i % 2 ? db : other, 'bob', 'carol')),
    );
    expect([...same].sort()).toEqual([
      'added',
      'already',
      'already',
      'already',
      'already',
      'already',
    ]);
    expect(await listFriends(db, 'bob')).toEqual(['carol']);
  });

  it('adding and removing a friend publishes a friends notice on the account channel', async () => {
    const { db } = backend;
    const received: unknown[] = [];
    const subscriber = await listen(db, keys.channel('alice'), (message) =>
      received.push(JSON.parse(message)),
    );
    try {
      expect(await addFriend(db, 'alice', 'bob')).toBe('added');
      expect(await removeFriend(db, 'alice', 'bob')).toBe(true);
      await expect.poll(() => received.length, { timeout: 5000 }).toBe(2);
      expect(received).toEqual([
        { type: 'friends', account: 'alice' },
        { type: 'friends', account: 'alice' },
      ]);
    } finally {
      subscriber.disconnect();
    }
  });

  it('ownersSharingPrivateFields: the viewer and owners who added the viewer', async () => {
    const { db } = backend;
    await addFriend(db, 'alice', 'bob'); // alice shares with bob
    await addFriend(db, 'bob', 'carol'); // bob shares with carol, not with alice
    await addFriend(db, 'dave', 'erin');
    const sharing = await ownersSharingPrivateFields(
      db,
      ['alice', 'carol', 'bob', 'alice', 'dave', 'ghost'],
      'bob',
    );
    expect([...sharing].sort()).toEqual(['alice', 'bob']);
    expect([...(await ownersSharingPrivateFields(db, ['alice', 'bob'], 'alice'))].sort()).toEqual([
      'alice',
    ]);
    expect([...(await ownersSharingPrivateFields(db, [], 'zoe'))]).toEqual(['zoe']);
    expect([...(await ownersSharingPrivateFields(db, ['bob'], 'carol'))].sort()).toEqual([
      'bob',
      'carol',
    ]);
  });

  it('viewProfiles / getProfilesAs show email and tel only to the owner and to friends the owner added', async () => {
    const { db } = backend;
    for (const a of ['alice', 'bob', 'carol']) {
      await createUser(db, a, { nick: a, email: `${a}@example.com`, tel: '+1-555-0100' });
    }
    await addFriend(db, 'alice', 'bob'); // bob may see alice's private fields
    await addFriend(db, 'bob', 'carol'); // but bob adding carol does not let bob see carol's

    const seen = await getProfilesAs(db, 'bob', ['alice', 'carol', 'bob', 'ghost', 'alice']);
    expect(accountsOf(seen)).toEqual(['alice', 'carol', 'bob']);
    const [a, c, b] = seen;
    expect(a).toMatchObject({ email: 'alice@example.com', tel: '+1-555-0100' });
    expect(c).not.toHaveProperty('email');
    expect(c).not.toHaveProperty('tel');
    expect(c).toMatchObject({ account: 'carol', nick: 'carol' });
    expect(b).toMatchObject({ email: 'bob@example.com', tel: '+1-555-0100' });

    // carol sees bob's (bob added her), not alice's.
    const asCarol = await getProfilesAs(db, 'carol', ['alice', 'bob']);
    expect(asCarol[0]).not.toHaveProperty('email');
    expect(asCarol[1]).toHaveProperty('email', 'bob@example.com');

    expect(await getProfileAs(db, 'alice', 'bob')).not.toHaveProperty('tel');
    expect(await getProfileAs(db, 'alice', 'ghost')).toBeNull();

    // viewProfiles filters any list; removing the friend takes the access away.
    const all = await getProfiles(db, ['alice']);
    expect((await viewProfiles(db, 'bob', all))[0]).toHaveProperty('email');
    await removeFriend(db, 'alice', 'bob');
    expect((await viewProfiles(db, 'bob', all))[0]).not.toHaveProperty('email');
    expect(all[0]).toHaveProperty('email'); // input not mutated
  });

  it('getProfilesAs of 150 accounts (every partition) equals viewProfiles(getProfiles())', async () => {
    const { db } = backend;
    const accounts = Array.from({ length: 150 }, (_, i) => `many${i}`);
    await Promise.all(
      accounts.map((a, i) =>
        createUser(db, a, {
          nick: `Nick "${i}" é`,
          ...(i % 3 === 0 ? { email: `${a}@example.com`, tel: `+1-${i}` } : {}),
          ...(i % 4 === 0 ? { gender: 'female' as const, birth: '1990-01-02' } : {}),
          ...(i % 5 === 0 ? { custom: '{"a":[1,2]}', sign: 'line\nbreak' } : {}),
        }),
      ),
    );
    // Every third account added the viewer as a friend.
    await Promise.all(accounts.filter((_, i) => i % 3 === 0).map((a) => addFriend(db, a, 'many7')));
    const asked = [...accounts, 'ghost', 'many7', 'many0'];
    const seen = await getProfilesAs(db, 'many7', asked);
    expect(seen).toHaveLength(150);
    expect(seen).toEqual(await viewProfiles(db, 'many7', await getProfiles(db, asked)));
    expect(seen[0]).toMatchObject({ account: 'many0', email: 'many0@example.com' });
    expect(seen[1]).not.toHaveProperty('email');
    expect(seen[7]).toHaveProperty('email', ''); // the viewer's own: every field
  });

  it('syncUser: all friends first, then only those changed after the cursor', async () => {
    const { db } = backend;
    for (const a of ['alice', 'bob', 'carol', 'dave']) {
      await createUser(db, a, { nick: a, email: `${a}@example.com` });
    }
    await addFriend(db, 'alice', 'bob');
    await addFriend(db, 'alice', 'carol');
    await addFriend(db, 'alice', 'ghost'); // a friend without a profile is left out
    await addFriend(db, 'carol', 'alice'); // carol shares her private fields with alice

    const first = await syncUser(db, 'alice');
    expect(first).not.toBeNull();
    expect(first!.myInfo).toMatchObject({ account: 'alice', email: 'alice@example.com' });
    expect(accountsOf(first!.users)).toEqual(['bob', 'carol']);
    expect(first!.users[0]).not.toHaveProperty('email');
    expect(first!.users[1]).toHaveProperty('email', 'carol@example.com');
    expect(first!.cursor).toBe(await lastEventId(db));
    expect(first!.full).toBe(true);
    expect(first!.nextPage).toBeNull();

    await updateProfile(db, 'carol', { sign: 'changed' });
    await updateProfile(db, 'dave', { sign: 'not a friend' });
    await updateProfile(db, 'alice', { sign: 'me' });

    const second = await syncUser(db, 'alice', { since: first!.cursor });
    expect(accountsOf(second!.users)).toEqual(['carol']);
    expect(second!.users[0]).toMatchObject({ sign: 'changed', email: 'carol@example.com' });
    expect(second!.myInfo.sign).toBe('me');
    expect(second!.cursor).toBe(await lastEventId(db));
    expect(second!.full).toBe(false);

    // The cursor is a position in every partition: the logs after it hold exactly what happened
    // since (ids of different partitions may tie: they follow their partitions' clocks).
    const since = await readLogSince(db, first!.cursor);
    expect(since.gap).toBe(false);
    expect(since.events.map((e) => e.account).sort()).toEqual(['alice', 'carol', 'dave']);
    expect(since.cursor).toBe(second!.cursor);

    const third = await syncUser(db, 'alice', { since: second!.cursor });
    expect(third!.users).toEqual([]);
    expect(third!.cursor).toBe(second!.cursor);

    // A friend added later whose profile is older than the cursor is not "changed" (the client
    // fetches new friends itself), but its next change is.
    await addFriend(db, 'alice', 'dave');
    expect((await syncUser(db, 'alice', { since: third!.cursor }))!.users).toEqual([]);
    await updateProfile(db, 'dave', { nick: 'Dave 2' });
    expect(accountsOf((await syncUser(db, 'alice', { since: third!.cursor }))!.users)).toEqual([
      'dave',
    ]);

    // since '0' is the same as since absent.
    expect(accountsOf((await syncUser(db, 'alice', { since: '0' }))!.users)).toEqual([
      'bob',
      'carol',
      'dave',
    ]);
    expect(await syncUser(db, 'ghost')).toBeNull();
  });
});
