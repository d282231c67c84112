import { expect, it } from 'vitest';
import {
  accountForToken,
  getProfile,
  getProfiles,
  lastEventId,
  readLogSince,
  listFriends,
  normalizeForSearch,
  profilePatchSchema,
  searchDirectory,
  seedDemoData,
} from '../src';
import { describeEachBackend } from './backends';
import { accountsOf, readWholeLog, searchAllPages } from './util';

describeEachBackend('seedDemoData', (backend) => {
  it('seeds once: demo accounts with working tokens, generated users, search, friends', async () => {
    const { db } = backend;
    const result = await seedDemoData(db, 50);
    expect(result).not.toBeNull();
    expect(result!.users).toBe(50);
    expect(result!.demo.map((d) => d.account)).toEqual(['alice', 'bob', 'carol']);
    for (const demo of result!.demo) {
      expect(await accountForToken(db, demo.token)).toBe(demo.account);
      expect((await getProfile(db, demo.account))?.nick).toBe(demo.nick);
    }

    // A second call (even from another client) seeds nothing.
    expect(await seedDemoData(db, 50)).toBeNull();
    expect(await seedDemoData(backend.connect(), 50)).toBeNull();

    const names = Array.from({ length: 50 }, (_, i) => `user${String(i + 1).padStart(4, '0')}`);
    const profiles = await getProfiles(db, names);
    expect(accountsOf(profiles)).toEqual(names);
    // Every generated profile is valid by the schema the API uses.
    for (const p of profiles) {
      const { nick, avatar, sign, gender, email, birth, tel, custom } = p;
      const parsed = profilePatchSchema.safeParse({
        nick,
        avatar,
        sign,
        gender,
        email,
        birth,
        tel,
        custom,
      });
      expect(parsed.success, `${p.account}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
      expect(p.nick).not.toBe('');
    }

    // Written through the store: one event each, and the directory knows them.
    const log = await readWholeLog(db);
    expect(log.length).toBe(53);
    expect(await lastEventId(db)).toBe((await readLogSince(db, '0', 1000)).cursor);
    expect((await searchAllPages(db, 'user00', 20)).flat().sort()).toEqual(names);
    expect(accountsOf((await searchDirectory(db, 'alice', 10)).profiles)).toEqual(['alice']);
    expect(accountsOf((await searchDirectory(db, 'キャロ', 10)).profiles)).toContain('carol');
    for (const p of profiles.slice(0, 10)) {
      const prefix = [...normalizeForSearch(p.nick)].slice(0, 2).join('');
      const found = (await searchAllPages(db, prefix, 100)).flat();
      expect(found, `${p.nick} by ${prefix}`).toContain(p.account);
    }

    expect(await listFriends(db, 'alice')).toEqual(expect.arrayContaining(['bob', 'carol']));
    expect(await listFriends(db, 'alice')).not.toContain('alice');
    for (const name of names.slice(0, 10)) {
      const friends = await listFriends(db, name);
      expect(friends.length).toBeGreaterThan(0);
      expect(friends).not.toContain(name);
    }
  });
});
