import { expect, it } from 'vitest';
import {
  hashSecret,
  ProfileNotFoundError,
  rotateToken,
  TokenNotHeldError,
  updateProfileAsTokenHolder,
  getProfile,
  getProfiles,
  keys,
  lastEventId,
  profileExists,
  profilePatchSchema,
  readLogSince,
  updateProfile,
  withoutPrivateFields,
  WRITE_ID_TTL_MS,
  type ProfilePatch,
} from '../src';
import { describeEachBackend } from './backends';
import { accountsOf, createUser, dumpRedis, readWholeLog, newestIdOf } from './util';

const T0 = 1_700_000_000_000;

describeEachBackend('profiles', (backend) => {
  it('reads a profile with defaults for every missing field (gender unknown)', async () => {
    const { db } = backend;
    await createUser(db, 'bare', undefined, T0);
    expect(await getProfile(db, 'bare')).toEqual({
      account: 'bare',
      nick: '',
      avatar: '',
      sign: '',
      gender: 'unknown',
      email: '',
      birth: '',
      tel: '',
      custom: '',
      createTime: T0,
      updateTime: T0,
    });
    expect(await getProfile(db, 'nobody')).toBeNull();
    expect(await profileExists(db, 'bare')).toBe(true);
    expect(await profileExists(db, 'nobody')).toBe(false);
  });

  it('getProfiles: existing ones only, deduplicated, in input order', async () => {
    const { db } = backend;
    for (const a of ['a', 'b', 'c', 'd']) await createUser(db, a, { nick: `nick ${a}` });
    const got = await getProfiles(db, ['c', 'ghost', 'a', 'c', 'd', 'a', 'zzz', 'b', 'c']);
    expect(accountsOf(got)).toEqual(['c', 'a', 'd', 'b']);
    expect(got.map((p) => p.nick)).toEqual(['nick c', 'nick a', 'nick d', 'nick b']);
    expect(await getProfiles(db, [])).toEqual([]);
    expect(await getProfiles(db, ['ghost', 'ghost2'])).toEqual([]);
    // The same as reading them one by one.
    for (const p of got) expect(await getProfile(db, p.account)).toEqual(p);
  });

  it('getProfiles reads 150 accounts in one call', async () => {
    const { db } = backend;
    const names = Array.from({ length: 150 }, (_, i) => `u${String(i).padStart(3, '0')}`);
    await Promise.all(names.map((a) => createUser(db, a, { nick: a.toUpperCase() })));
    const reversed = [...names].reverse();
    const got = await getProfiles(db, reversed);
    expect(accountsOf(got)).toEqual(reversed);
    expect(got.every((p) => p.nick === p.account.toUpperCase())).toBe(true);
  });

  it('updateProfile changes only the patched fields', async () => {
    const { db } = backend;
    const full: ProfilePatch = {
      nick: 'Alice',
      avatar: 'https://img.example.com/a.png',
      sign: 'hello',
      gender: 'female',
      email: 'alice@example.com',
      birth: '1990-05-04',
      tel: '+1-555-0100',
      custom: '{"theme":"dark"}',
    };
    const created = await createUser(db, 'alice', full, T0);
    const event = await updateProfile(db, 'alice', { sign: 'busy', tel: '+1-555-0199' }, T0 + 10);
    expect(BigInt(event.id)).toBeGreaterThan(BigInt(created.event.id));
    const expected = {
      ...full,
      account: 'alice',
      sign: 'busy',
      tel: '+1-555-0199',
      createTime: T0,
      updateTime: T0 + 10,
    };
    expect(event).toEqual({ id: event.id, type: 'profile', account: 'alice', profile: expected });
    expect(await getProfile(db, 'alice')).toEqual(expected);
  });

  it("'' clears a field (and gender falls back to unknown)", async () => {
    const { db } = backend;
    await createUser(
      db,
      'alice',
      { nick: 'Alice', sign: 's', gender: 'male', email: 'a@b.co', custom: '[1]' },
      T0,
    );
    const event = await updateProfile(db, 'alice', { sign: '', gender: '', custom: '' }, T0 + 1);
    expect(event.profile).toMatchObject({
      nick: 'Alice',
      sign: '',
      gender: 'unknown',
      email: 'a@b.co',
      custom: '',
    });
    expect(await getProfile(db, 'alice')).toEqual(event.profile);
    // Cleared means gone from the hash, not stored as ''.
    const stored = await db.redis.hgetall(keys.profile('alice'));
    expect(stored).not.toHaveProperty('sign');
    expect(stored).not.toHaveProperty('gender');
    expect(stored).not.toHaveProperty('custom');
    expect(stored.nick).toBe('Alice');
  });

  it('updateTime strictly increases even when now repeats or goes backwards', async () => {
    const { db } = backend;
    await createUser(db, 'alice', { nick: 'A' }, T0);
    const times: number[] = [];
    times.push((await updateProfile(db, 'alice', { sign: '1' }, T0)).profile.updateTime); // same now
    times.push((await updateProfile(db, 'alice', { sign: '2' }, T0)).profile.updateTime); // same again
    times.push((await updateProfile(db, 'alice', { sign: '3' }, T0 - 60_000)).profile.updateTime); // backwards
    times.push((await updateProfile(db, 'alice', { sign: '4' }, T0 + 5000)).profile.updateTime); // forwards
    times.push((await updateProfile(db, 'alice', { sign: '5' }, 0)).profile.updateTime); // far back
    expect(times).toEqual([T0 + 1, T0 + 2, T0 + 3, T0 + 5000, T0 + 5001]);
    const stored = await getProfile(db, 'alice');
    expect(stored?.updateTime).toBe(T0 + 5001);
    expect(stored?.createTime).toBe(T0);
  });

  it('a write sent again with the same write id (a resend) is applied once', async () => {
    const { db } = backend;
    await createUser(db, 'alice', { nick: 'A' }, T0);
    const first = await updateProfile(db, 'alice', { sign: 'once' }, T0 + 10, 'write-1');
    const again = await updateProfile(db, 'alice', { sign: 'once' }, T0 + 20, 'write-1');
    expect(again).toEqual(first);
    expect(await newestIdOf(db, 'alice')).toBe(first.id);
    expect((await getProfile(db, 'alice'))?.updateTime).toBe(T0 + 10);
    const next = await updateProfile(db, 'alice', { sign: 'twice' }, T0 + 30, 'write-2');
    expect(BigInt(next.id)).toBeGreaterThan(BigInt(first.id));
  });

  it('a resend that comes after another write is still applied once (no lost update)', async () => {
    // Write 1's reply is lost, write 2 goes through (another server), then ioredis resends
    // write 1 on its new connection: it must not overwrite write 2. (Failed when a profile
    // remembered only its last write id.)
    const { db } = backend;
    const other = backend.connect();
    await createUser(db, 'alice', { nick: 'A' }, T0);
    await updateProfile(db, 'alice', { sign: 'one' }, T0 + 10, 'write-1');
    const second = await updateProfile(other, 'alice', { sign: 'two' }, T0 + 20, 'write-2');
    const resent = await updateProfile(db, 'alice', { sign: 'one' }, T0 + 10, 'write-1');
    expect(resent).toEqual(second);
    expect(await getProfile(db, 'alice')).toMatchObject({ sign: 'two', updateTime: T0 + 20 });
    expect(await newestIdOf(db, 'alice')).toBe(second.id);
    // A write id is remembered for a while, then forgotten (the set does not grow for ever).
    expect(await db.redis.pttl(keys.writes('alice'))).toBeGreaterThan(WRITE_ID_TTL_MS - 60_000);
    expect(await db.redis.zcard(keys.writes('alice'))).toBe(3);
  });

  it('updateTime uses now when it is later, and handles current wall-clock times', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    const now = Date.now();
    const e = await updateProfile(db, 'alice', { nick: 'x' }, now + 1000);
    expect(e.profile.updateTime).toBe(now + 1000);
    const e2 = await updateProfile(db, 'alice', { nick: 'y' });
    expect(e2.profile.updateTime).toBe(now + 1001);
  });

  it('an update of a missing profile throws ProfileNotFoundError and writes nothing', async () => {
    const { db } = backend;
    await createUser(db, 'alice', { nick: 'Alice' });
    const before = await dumpRedis(db.redis);
    const created = await lastEventId(db);
    const attempt = updateProfile(db, 'ghost', { nick: 'Ghost', sign: 'boo' });
    await expect(attempt).rejects.toBeInstanceOf(ProfileNotFoundError);
    await expect(attempt).rejects.toMatchObject({ account: 'ghost' });
    expect(await dumpRedis(db.redis)).toEqual(before);
    expect(await getProfile(db, 'ghost')).toBeNull();
    expect(await lastEventId(db)).toBe(created);
  });

  it("a write for a token's holder is applied only while the token is the account's", async () => {
    const { db } = backend;
    const { token } = await createUser(db, 'alice', { sign: 'before' });
    await createUser(db, 'bob');
    const event = await updateProfileAsTokenHolder(db, 'alice', hashSecret(token), { sign: 'A' });
    expect(event.profile).toMatchObject({ account: 'alice', sign: 'A' });

    // Not alice's token (bob's, then her own once rotated away): refused, nothing written.
    for (const stale of [`bob-token-0123456789`, token]) {
      if (stale === token) await rotateToken(db, 'alice');
      const before = await dumpRedis(db.redis);
      const attempt = updateProfileAsTokenHolder(db, 'alice', hashSecret(stale), { sign: 'B' });
      await expect(attempt).rejects.toBeInstanceOf(TokenNotHeldError);
      expect(await dumpRedis(db.redis)).toEqual(before);
    }
    expect((await getProfile(db, 'alice'))?.sign).toBe('A');
  });

  it('special characters round-trip exactly through the profile, the event and the log', async () => {
    const { db } = backend;
    const patch = profilePatchSchema.parse({
      nick: `"Quoted" \\back\\slash\\ 'single' 😀👩‍👩‍👧 王小明 さくら ｶﾀｶﾅ %s %d \\u0041`,
      sign: `line one\nline two\n\ttabbed "q" \\ \\n literal\u2028sep 🎉 中文 日本語です`,
      custom: JSON.stringify({
        quote: '"',
        backslash: '\\',
        newline: 'a\nb',
        control: '\u0001\u001f\u007f',
        emoji: '🦄',
        cjk: '你好 こんにちは',
        nested: { list: [1, 2.5, null, true, 'x'] },
      }),
      email: "o'brien+tag@example.com",
      // Quotes and backslashes are refused in avatars (issue 8); percent-encoded they are fine.
      avatar: 'https://example.com/a%20b.png?x=%221%22&y=%5C',
    });
    await createUser(db, 'special', { nick: 'placeholder' }, T0);
    const event = await updateProfile(db, 'special', patch, T0 + 1);
    for (const field of Object.keys(patch) as (keyof typeof patch)[]) {
      expect(event.profile[field], field).toBe(patch[field]);
    }
    expect(await getProfile(db, 'special')).toEqual(event.profile);
    const log = await readWholeLog(db);
    expect(log.at(-1)).toEqual(event);
    expect(JSON.parse(event.profile.custom)).toEqual(JSON.parse(patch.custom!));
  });

  it('special characters round-trip when given at account creation too', async () => {
    const { db } = backend;
    const profile = {
      nick: '\\"}{,:[]😀',
      sign: '\n\n"\\"\\\\\n',
      custom: '{\r\n\t"k": "v\\u0000",\n  "e": "é"\r\n}',
    };
    const created = await createUser(db, 'creator', profile, T0);
    expect(created.event.profile).toMatchObject(profile);
    expect(await getProfile(db, 'creator')).toMatchObject(profile);
    expect((await readLogSince(db, '0')).events[0]).toEqual(created.event);
  });

  it('an empty patch still counts as a change: one event, updateTime bumped', async () => {
    const { db } = backend;
    const created = await createUser(db, 'alice', { nick: 'A' }, T0);
    const e = await updateProfile(db, 'alice', {}, T0);
    expect(BigInt(e.id)).toBeGreaterThan(BigInt(created.event.id));
    expect(e.profile).toMatchObject({ nick: 'A', updateTime: T0 + 1 });
  });

  it('withoutPrivateFields drops email and tel only', async () => {
    const { db } = backend;
    await createUser(db, 'alice', { nick: 'A', email: 'a@b.co', tel: '123' });
    const p = (await getProfile(db, 'alice'))!;
    const hidden = withoutPrivateFields(p);
    expect(hidden).not.toHaveProperty('email');
    expect(hidden).not.toHaveProperty('tel');
    expect(hidden).toEqual({ ...p, email: undefined, tel: undefined });
    expect(p.email).toBe('a@b.co'); // the input is not mutated
  });
});
