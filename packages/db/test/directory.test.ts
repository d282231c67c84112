import { describe, expect, it } from 'vitest';
import {
  InvalidCursorError,
  keys,
  normalizeForSearch,
  searchDirectory,
  updateProfile,
  type Db,
} from '../src';
import { describeEachBackend } from './backends';
import { accountsOf, createUser, searchAllPages, directoryOf } from './util';

describe('normalizeForSearch', () => {
  it('folds case, accents, compatibility forms and whitespace', () => {
    expect(normalizeForSearch('José')).toBe('jose');
    expect(normalizeForSearch('JOSÉ')).toBe('jose');
    expect(normalizeForSearch('Jose\u0301')).toBe('jose'); // decomposed é
    expect(normalizeForSearch('ｊｏｓｅ')).toBe('jose');
    expect(normalizeForSearch('  Zoë   Müller ')).toBe('zoe muller');
    expect(normalizeForSearch('ｷｬﾛﾙ')).toBe('キャロル');
    expect(normalizeForSearch('ｶﾞ')).toBe('ガ');
    expect(normalizeForSearch('が')).not.toBe(normalizeForSearch('か'));
    expect(normalizeForSearch('王伟')).toBe('王伟');
  });
});

/** All matches for a query, in order (pages of 100). */
async function search(db: Db, query: string): Promise<string[]> {
  return (await searchAllPages(db, query, 100)).flat();
}

describeEachBackend('directory', (backend) => {
  it('finds by nick prefix and by account prefix, case-insensitively', async () => {
    const { db } = backend;
    await createUser(db, 'alice', { nick: 'Wonderland Girl' });
    await createUser(db, 'bob', { nick: 'Builder' });
    await createUser(db, 'Zed_01', { nick: 'Alpha Centauri' });
    expect(await search(db, 'won')).toEqual(['alice']);
    expect(await search(db, 'WONDERLAND g')).toEqual(['alice']);
    expect(await search(db, 'ali')).toEqual(['alice']);
    expect(await search(db, 'ALI')).toEqual(['alice']);
    expect(await search(db, 'bu')).toEqual(['bob']);
    expect(await search(db, 'bo')).toEqual(['bob']);
    expect(await search(db, 'zed_')).toEqual(['Zed_01']);
    expect(await search(db, 'al')).toEqual(expect.arrayContaining(['alice', 'Zed_01']));
    expect((await search(db, 'al')).length).toBe(2);
    expect(await search(db, 'x')).toEqual([]);
    expect(await search(db, 'girl')).toEqual([]); // prefix, not substring
    const page = await searchDirectory(db, 'won', 10);
    expect(page.nextCursor).toBeNull();
    expect(page.profiles[0]).toMatchObject({ account: 'alice', nick: 'Wonderland Girl' });
  });

  it('folds accents and full-width forms: jose, JOSÉ and ｊｏｓｅ all find José', async () => {
    const { db } = backend;
    await createUser(db, 'u1', { nick: 'José Álvarez' });
    await createUser(db, 'u2', { nick: 'Zoë Müller' });
    await createUser(db, 'u3', { nick: 'Joseph' });
    for (const q of ['jose', 'JOSÉ', 'José', 'Jose\u0301', 'ｊｏｓｅ', 'ＪＯＳＥ']) {
      expect(await search(db, q), q).toEqual(['u1', 'u3']);
    }
    expect(await search(db, 'jose a')).toEqual(['u1']);
    expect(await search(db, 'josé álv')).toEqual(['u1']);
    expect(await search(db, 'zoe m')).toEqual(['u2']);
    expect(await search(db, 'ZOË MÜ')).toEqual(['u2']);
  });

  it('finds Chinese and Japanese nicks by prefix', async () => {
    const { db } = backend;
    await createUser(db, 'wang1', { nick: '王伟' });
    await createUser(db, 'wang2', { nick: '王芳' });
    await createUser(db, 'li', { nick: '李娜' });
    await createUser(db, 'sato', { nick: '佐藤さくら' });
    await createUser(db, 'carol', { nick: 'キャロル' });
    await createUser(db, 'gakko', { nick: 'がっこう' });
    await createUser(db, 'kana', { nick: 'かな' });
    expect(await search(db, '王')).toEqual(expect.arrayContaining(['wang1', 'wang2']));
    expect((await search(db, '王')).length).toBe(2);
    expect(await search(db, '王芳')).toEqual(['wang2']);
    expect(await search(db, '李')).toEqual(['li']);
    expect(await search(db, '佐藤')).toEqual(['sato']);
    expect(await search(db, '佐藤さ')).toEqual(['sato']);
    expect(await search(db, 'キャ')).toEqual(['carol']);
    expect(await search(db, 'ｷｬﾛ')).toEqual(['carol']); // half-width katakana query
    expect(await search(db, 'か')).toEqual(['kana']); // が is not か
    expect(await search(db, 'が')).toEqual(['gakko']);
    expect(await search(db, 'さくら')).toEqual([]);
  });

  it('a nick change moves the entry; clearing the nick leaves the account findable', async () => {
    const { db } = backend;
    await createUser(db, 'acc1', { nick: 'Oldname' });
    expect(await search(db, 'old')).toEqual(['acc1']);
    const entriesBefore = await db.redis.zcard(directoryOf('acc1'));

    await updateProfile(db, 'acc1', { nick: 'Newname' });
    expect(await search(db, 'old')).toEqual([]);
    expect(await search(db, 'new')).toEqual(['acc1']);
    expect(await db.redis.zcard(directoryOf('acc1'))).toBe(entriesBefore);

    // A patch without nick leaves the entry alone.
    await updateProfile(db, 'acc1', { sign: 'still here' });
    expect(await search(db, 'new')).toEqual(['acc1']);

    await updateProfile(db, 'acc1', { nick: '' });
    expect(await search(db, 'new')).toEqual([]);
    expect(await search(db, 'acc')).toEqual(['acc1']);
    expect(await db.redis.zcard(directoryOf('acc1'))).toBe(entriesBefore - 1);

    await updateProfile(db, 'acc1', { nick: 'Back Again' });
    expect(await search(db, 'back')).toEqual(['acc1']);
    expect(await db.redis.zcard(directoryOf('acc1'))).toBe(entriesBefore);
  });

  it('a nick that folds to nothing indexes no nick entry', async () => {
    const { db } = backend;
    await createUser(db, 'spacey', { nick: '   ' });
    expect(await db.redis.zcard(directoryOf('spacey'))).toBe(1);
    expect(await search(db, 'spa')).toEqual(['spacey']);
  });

  it('orders matches by the matched text, a shorter text before the longer ones it begins', async () => {
    const { db } = backend;
    await createUser(db, 'u1', { nick: 'a b' });
    await createUser(db, 'u2', { nick: 'a0' });
    await createUser(db, 'u3', { nick: 'aa' });
    await createUser(db, 'u4', { nick: 'a' });
    expect(await search(db, 'a')).toEqual(['u4', 'u1', 'u2', 'u3']);
  });

  it('an account that matches by nick and by id is listed once', async () => {
    const { db } = backend;
    await createUser(db, 'sam', { nick: 'Samuel' });
    await createUser(db, 'samantha', { nick: 'Sam' });
    await createUser(db, 'other', { nick: 'Samwise' });
    const found = await search(db, 'sam');
    expect([...found].sort()).toEqual(['other', 'sam', 'samantha']);
    // Small pages too (the nick and the id entry can land on different pages).
    for (const limit of [1, 2, 3]) {
      const flat = (await searchAllPages(db, 'sam', limit)).flat();
      expect(flat, `limit ${limit}`).toEqual(found);
    }
  });

  it('pages through 45 matches with limit 10: every match once, in a stable order', async () => {
    const { db } = backend;
    const expected = new Set<string>();
    const creates: Promise<unknown>[] = [];
    for (let i = 0; i < 15; i++) {
      // nick matches only
      creates.push(createUser(db, `n${i}`, { nick: `Marta ${i}` }));
      expected.add(`n${i}`);
      // account id matches only
      creates.push(createUser(db, `mat${i}`, { nick: `Zed ${i}` }));
      expected.add(`mat${i}`);
      // both match
      creates.push(createUser(db, `maxi${i}`, { nick: `Max ${i}` }));
      expected.add(`maxi${i}`);
      // neither
      creates.push(createUser(db, `noise${i}`, { nick: `Noise ${i}` }));
    }
    await Promise.all(creates);

    const pages = await searchAllPages(db, 'ma', 10);
    const flat = pages.flat();
    expect(pages.slice(0, 4).map((p) => p.length)).toEqual([10, 10, 10, 10]);
    expect(flat.length).toBe(45);
    expect(new Set(flat)).toEqual(expected);
    // The same order every time.
    expect((await searchAllPages(db, 'ma', 10)).flat()).toEqual(flat);
    expect((await searchAllPages(db, 'MA', 7)).flat()).toEqual(flat);
    expect(await search(db, 'ma')).toEqual(flat);
  });

  it('pagination stays exact when matching users are added between pages', async () => {
    const { db } = backend;
    const original: string[] = [];
    for (let i = 0; i < 45; i++) {
      const account = `p${String(i).padStart(2, '0')}`;
      original.push(account);
      await createUser(db, account, { nick: `Pat ${String(i).padStart(2, '0')}` });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let page = 0;
    do {
      const result = await searchDirectory(db, 'pat', 10, cursor);
      seen.push(...accountsOf(result.profiles));
      cursor = result.nextCursor;
      page++;
      if (page === 1) {
        // One sorting before the cursor, one after it, one matching by account only.
        await createUser(db, 'early', { nick: 'Pat 00 early' });
        await createUser(db, 'late', { nick: 'Pat 99 late' });
        await createUser(db, 'patz', { nick: 'Zz' });
      }
      if (page === 3) await updateProfile(db, 'p44', { sign: 'edited mid-walk' });
    } while (cursor && page < 100);

    expect(new Set(seen).size).toBe(seen.length); // no duplicates
    for (const account of original)
      expect(
        seen.filter((a) => a === account),
        account,
      ).toHaveLength(1);
    expect(seen).toContain('late');
    expect(seen).toContain('patz');
    expect(seen).not.toContain('early'); // it sorts before the page already read
  });

  it('rejects invalid cursors with InvalidCursorError', async () => {
    const { db } = backend;
    for (let i = 0; i < 5; i++) await createUser(db, `ma${i}`, { nick: `Ma ${i}` });
    await createUser(db, 'jo', { nick: 'Jo' });
    const { nextCursor } = await searchDirectory(db, 'ma', 2);
    expect(nextCursor).toBeTruthy();
    await expect(searchDirectory(db, 'jo', 2, nextCursor)).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
    await expect(searchDirectory(db, 'ma', 2, 'not a cursor!!')).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
    await expect(
      searchDirectory(db, 'ma', 2, Buffer.from('6d61-garbage').toString('base64url')),
    ).rejects.toBeInstanceOf(InvalidCursorError);
    // A valid cursor still works.
    const next = await searchDirectory(db, 'ma', 2, nextCursor);
    expect(next.profiles).toHaveLength(2);
  });

  it('returns full profiles for matches and skips directory entries whose profile is gone', async () => {
    const { db } = backend;
    await createUser(db, 'alice', { nick: 'Alice', email: 'alice@example.com' });
    await createUser(db, 'alfred', { nick: 'Alfred' });
    await db.redis.del(keys.profile('alfred')); // stale entries must not break the search
    const page = await searchDirectory(db, 'al', 10);
    expect(accountsOf(page.profiles)).toEqual(['alice']);
    expect(page.profiles[0]).toMatchObject({ nick: 'Alice', gender: 'unknown' });
  });
});
