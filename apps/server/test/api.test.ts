/**
 * Every procedure of the API, called through a real typed tRPC client over real HTTP against a
 * real server on a free port (memory mode): the happy paths, the limits, and the failures with
 * their error codes, field errors and the guarantee that a failed write changes nothing.
 */
import { type RouterInputs } from '@namecard/api';
import { compareCursors, lastEventId, listFriends, type Profile } from '@namecard/db';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  adminClient,
  clientFor,
  demoClient,
  expectTRPCError,
  startTestServer,
  useTestServer,
  type Client,
} from './helpers';

const server = useTestServer({ seedUsers: 200 });
const S = () => server.current;

/** user0001 ... user0200, as the seed names them. */
const seeded = (n: number) => `user${String(n).padStart(4, '0')}`;
const SEEDED = Array.from({ length: 200 }, (_, i) => seeded(i + 1));

let admin: Client;
let alice: Client;
let bob: Client;

beforeAll(() => {
  admin = adminClient(S());
  alice = demoClient(S(), 'alice');
  bob = demoClient(S(), 'bob');
});

let unique = 0;
/** A fresh account (not anyone's friend) and a client signed in as it. */
async function newUser(profile: RouterInputs['admin']['createAccount']['profile'] = {}) {
  const account = `t${Date.now().toString(36)}-${++unique}`;
  const created = await admin.admin.createAccount.mutate({
    account,
    profile: {
      nick: `Test ${account}`,
      email: `${account}@example.com`,
      tel: '+1-555-0100',
      ...profile,
    },
  });
  return { account, token: created.token, client: clientFor(S().url, { token: created.token }) };
}

async function stored(account: string): Promise<Profile> {
  const [profile] = await admin.admin.getUsers.query({ accounts: [account] });
  if (!profile) throw new Error(`no stored profile for ${account}`);
  return profile;
}

/** Runs a write that must fail, and checks the profile and the change log are untouched. */
async function expectNoChange(account: string, write: () => Promise<unknown>): Promise<void> {
  const before = await stored(account);
  const eventsBefore = await lastEventId(S().db);
  await write();
  expect(await stored(account)).toEqual(before);
  expect(await lastEventId(S().db)).toBe(eventsBefore);
}

const PROFILE_KEYS = [
  'account',
  'avatar',
  'birth',
  'createTime',
  'custom',
  'email',
  'gender',
  'nick',
  'sign',
  'tel',
  'updateTime',
];
const PUBLIC_KEYS = PROFILE_KEYS.filter((k) => k !== 'email' && k !== 'tel');

describe('user.getMyInfo', () => {
  it('returns my whole profile, private fields included', async () => {
    const me = await alice.user.getMyInfo.query();
    expect(Object.keys(me).sort()).toEqual(PROFILE_KEYS);
    expect(me).toMatchObject({
      account: 'alice',
      nick: 'Alice Liddell',
      email: 'alice@example.com',
      tel: '+44-20-5550-0101',
      gender: 'female',
      birth: '1990-05-04',
    });
    expect(typeof me.createTime).toBe('number');
    expect(me.createTime).toBeGreaterThan(Date.now() - 120_000);
    expect(me.updateTime).toBeGreaterThanOrEqual(me.createTime);
  });
});

describe('authentication', () => {
  it('no token is UNAUTHORIZED', async () => {
    await expectTRPCError(clientFor(S().url).user.getMyInfo.query(), 'UNAUTHORIZED');
  });

  it('an unknown token is UNAUTHORIZED', async () => {
    await expectTRPCError(
      clientFor(S().url, { token: 'not-a-real-token-0123456789' }).user.getMyInfo.query(),
      'UNAUTHORIZED',
    );
  });

  it.each([
    ['a token without the Bearer scheme', () => S().tokens.alice],
    ['Token scheme', () => `Token ${S().tokens.alice}`],
    ['Basic scheme', () => `Basic ${Buffer.from(`alice:${S().tokens.alice}`).toString('base64')}`],
    ['Bearer without a token', () => 'Bearer'],
    ['Bearer with two words', () => `Bearer ${S().tokens.alice} extra`],
  ])('a malformed Authorization header (%s) is UNAUTHORIZED', async (_label, header) => {
    await expectTRPCError(
      clientFor(S().url, { authorization: header() }).user.getMyInfo.query(),
      'UNAUTHORIZED',
    );
  });

  it('a valid Bearer token works whatever the scheme case', async () => {
    const me = await clientFor(S().url, {
      authorization: `bearer ${S().tokens.bob}`,
    }).user.getMyInfo.query();
    expect(me.account).toBe('bob');
  });

  it('a mutation without a token is UNAUTHORIZED and changes nothing', async () => {
    await expectNoChange('alice', () =>
      expectTRPCError(
        clientFor(S().url).user.updateMyInfo.mutate({ nick: 'anonymous' }),
        'UNAUTHORIZED',
      ),
    );
  });
});

describe('user.updateMyInfo', () => {
  it('changes only the fields in the patch and returns the new profile', async () => {
    const before = await alice.user.getMyInfo.query();
    const after = await alice.user.updateMyInfo.mutate({
      nick: 'Alice in Wonderland',
      sign: 'Down the rabbit hole',
    });
    expect(after).toEqual({
      ...before,
      nick: 'Alice in Wonderland',
      sign: 'Down the rabbit hole',
      updateTime: after.updateTime,
    });
    expect(after.updateTime).toBeGreaterThan(before.updateTime);
    expect(after.createTime).toBe(before.createTime);
    expect(await alice.user.getMyInfo.query()).toEqual(after);
    expect(await stored('alice')).toEqual(after);
  });

  it("'' clears a field", async () => {
    await alice.user.updateMyInfo.mutate({ sign: 'to be cleared', tel: '+1-555-0199' });
    const cleared = await alice.user.updateMyInfo.mutate({ sign: '', tel: '' });
    expect(cleared.sign).toBe('');
    expect(cleared.tel).toBe('');
    const back = await stored('alice');
    expect(back.sign).toBe('');
    expect(back.tel).toBe('');
  });

  it('updateTime strictly increases with every change, even within one millisecond', async () => {
    let last = (await alice.user.getMyInfo.query()).updateTime;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => alice.user.updateMyInfo.mutate({ sign: `burst ${i}` })),
    );
    const times = results.map((r) => r.updateTime).sort((a, b) => a - b);
    expect(new Set(times).size).toBe(times.length);
    for (const t of times) {
      expect(t).toBeGreaterThan(last);
      last = t;
    }
    for (let i = 0; i < 5; i++) {
      const next = (await alice.user.updateMyInfo.mutate({ sign: `step ${i}` })).updateTime;
      expect(next).toBeGreaterThan(last);
      last = next;
    }
  });

  it('an empty patch changes nothing', async () => {
    await expectNoChange('alice', async () => {
      const same = await alice.user.updateMyInfo.mutate({});
      expect(same).toEqual(await stored('alice'));
    });
  });

  // Values exactly at each limit are accepted (and counted in characters, not UTF-16 units).
  const atLimit: [string, RouterInputs['user']['updateMyInfo']][] = [
    ['nick 64 chars', { nick: 'n'.repeat(64) }],
    ['nick 64 emoji', { nick: '😀'.repeat(64) }],
    ['sign 256 chars', { sign: 's'.repeat(256) }],
    ['avatar 1024 chars', { avatar: `https://example.com/${'a'.repeat(1004)}` }],
    ['avatar http:', { avatar: 'http://avatars.example.com/a.png' }],
    ['email 64 chars', { email: `${'e'.repeat(52)}@example.com` }],
    ['birth on a leap day', { birth: '2024-02-29' }],
    ['tel 32 chars', { tel: `+(${'1'.repeat(27)})-9` }],
    ['custom 1024 chars of JSON', { custom: JSON.stringify('c'.repeat(1022)) }],
    ['custom object', { custom: '{"theme":"light","n":[1,2]}' }],
    ['gender male', { gender: 'male' }],
  ];
  it.each(atLimit)('accepts %s', async (_label, patch) => {
    const [[field, value]] = Object.entries(patch) as [[keyof Profile, string]];
    const after = await alice.user.updateMyInfo.mutate(patch);
    expect(after[field]).toBe(value);
    expect((await stored('alice'))[field]).toBe(value);
  });

  // Each limit broken by one: BAD_REQUEST naming the field, and nothing stored or logged.
  const invalid: [string, Record<string, unknown>, string[]][] = [
    ['nick 65 chars', { nick: 'n'.repeat(65) }, ['nick']],
    ['nick 65 emoji', { nick: '😀'.repeat(65) }, ['nick']],
    ['nick with a newline', { nick: 'two\nlines' }, ['nick']],
    ['sign 257 chars', { sign: 's'.repeat(257) }, ['sign']],
    ['avatar 1025 chars', { avatar: `https://example.com/${'a'.repeat(1005)}` }, ['avatar']],
    ['avatar javascript:', { avatar: 'javascript:alert(1)' }, ['avatar']],
    ['avatar data:', { avatar: 'data:image/png;base64,iVBORw0KGgo=' }, ['avatar']],
    ['avatar ftp:', { avatar: 'ftp://example.com/a.png' }, ['avatar']],
    ['avatar not a URL', { avatar: 'just text' }, ['avatar']],
    ['email 65 chars', { email: `${'e'.repeat(53)}@example.com` }, ['email']],
    ['email without @', { email: 'alice.example.com' }, ['email']],
    ['birth 2023-02-29', { birth: '2023-02-29' }, ['birth']],
    ['birth month 13', { birth: '2023-13-01' }, ['birth']],
    ['birth not padded', { birth: '1990-5-4' }, ['birth']],
    ['tel with letters', { tel: '+1-555-CALL-NOW' }, ['tel']],
    ['tel 33 chars', { tel: `+(${'1'.repeat(28)})-9` }, ['tel']],
    ['custom invalid JSON', { custom: '{"theme":' }, ['custom']],
    ['custom 1025 chars', { custom: JSON.stringify('c'.repeat(1023)) }, ['custom']],
    ['gender robot', { gender: 'robot' }, ['gender']],
    ['a number for a string', { nick: 42 }, ['nick']],
    ['unknown key createTime (mass assignment)', { createTime: 1 }, ['createTime']],
    ['unknown key updateTime', { updateTime: 9_999_999_999_999 }, ['updateTime']],
    ['unknown key account', { account: 'bob' }, ['account']],
    ['unknown internal key _seq', { _seq: '1' }, ['_seq']],
    ['a good field with an unknown key', { nick: 'Sneaky', account: 'bob' }, ['account']],
    ['a good field with a bad one', { nick: 'Half good', email: 'nope' }, ['email']],
    ['two bad fields', { sign: 's'.repeat(257), tel: 'abc' }, ['sign', 'tel']],
  ];
  it.each(invalid)(
    'rejects %s with BAD_REQUEST and changes nothing',
    async (_label, patch, fields) => {
      await expectNoChange('alice', () =>
        expectTRPCError(alice.user.updateMyInfo.mutate(patch), 'BAD_REQUEST', fields),
      );
    },
  );
});

describe('user.getUser, user.getUsers, user.search: private fields', () => {
  it('hides email and tel unless the owner added me as a friend', async () => {
    const dave = await newUser({ nick: 'Davina Privacy' });
    const view = async () => {
      const one = await alice.user.getUser.query({ account: dave.account });
      const [many] = await alice.user.getUsers.query({ accounts: [dave.account] });
      const found = (await alice.user.search.query({ query: 'Davina Privacy' })).users.find(
        (u) => u.account === dave.account,
      );
      return [one, many, found];
    };

    for (const p of await view()) {
      expect(p).toBeDefined();
      expect(Object.keys(p!).sort()).toEqual(PUBLIC_KEYS);
      expect(p!.nick).toBe('Davina Privacy');
    }

    // Alice adding Dave does not show Alice Dave's private fields (friendship is one-way).
    await alice.friend.add.mutate({ account: dave.account });
    for (const p of await view()) expect(p).not.toHaveProperty('email');
    await alice.friend.remove.mutate({ account: dave.account });

    // Dave adding Alice does.
    await dave.client.friend.add.mutate({ account: 'alice' });
    for (const p of await view()) {
      expect(p).toMatchObject({ email: `${dave.account}@example.com`, tel: '+1-555-0100' });
    }
    // Only to Alice: Bob still gets the public profile.
    expect(await bob.user.getUser.query({ account: dave.account })).not.toHaveProperty('email');

    // And no longer once Dave removes her.
    await dave.client.friend.remove.mutate({ account: 'alice' });
    for (const p of await view()) expect(p).not.toHaveProperty('tel');
  });

  it('getUsers filters per owner within one batch', async () => {
    const dave = await newUser();
    const users = await alice.user.getUsers.query({ accounts: ['bob', dave.account, 'alice'] });
    expect(users.map((u) => u.account)).toEqual(['bob', dave.account, 'alice']);
    expect(users[0]).toHaveProperty('email', 'bob@example.com'); // bob added alice (demo seed)
    expect(users[1]).not.toHaveProperty('email');
    expect(users[2]).toHaveProperty('email'); // myself
  });
});

describe('user.getUser', () => {
  it('returns a profile', async () => {
    const carol = await alice.user.getUser.query({ account: 'carol' });
    expect(carol).toMatchObject({ account: 'carol', nick: 'キャロル', email: 'carol@example.jp' });
  });

  it('an unknown account is NOT_FOUND', async () => {
    await expectTRPCError(alice.user.getUser.query({ account: 'nobody-here' }), 'NOT_FOUND');
  });

  it('an invalid account id is BAD_REQUEST naming account', async () => {
    await expectTRPCError(
      alice.user.getUser.query({ account: 'no spaces/allowed' }),
      'BAD_REQUEST',
      ['account'],
    );
    await expectTRPCError(alice.user.getUser.query({ account: 'a'.repeat(33) }), 'BAD_REQUEST', [
      'account',
    ]);
  });
});

describe('user.getUsers', () => {
  it('returns 150 profiles in input order', async () => {
    const accounts = SEEDED.slice(0, 150).reverse();
    const users = await alice.user.getUsers.query({ accounts });
    expect(users.map((u) => u.account)).toEqual(accounts);
  });

  it('deduplicates, keeps input order and leaves unknown accounts out', async () => {
    const users = await alice.user.getUsers.query({
      accounts: ['carol', 'ghost-1', 'bob', 'carol', seeded(7), 'bob', 'ghost-2'],
    });
    expect(users.map((u) => u.account)).toEqual(['carol', 'bob', seeded(7)]);
  });

  it('only unknown accounts gives an empty list', async () => {
    expect(await alice.user.getUsers.query({ accounts: ['ghost-3'] })).toEqual([]);
  });

  it('151 accounts is BAD_REQUEST naming accounts', async () => {
    await expectTRPCError(
      alice.user.getUsers.query({ accounts: SEEDED.slice(0, 151) }),
      'BAD_REQUEST',
      ['accounts'],
    );
  });

  it('151 entries are too many even when duplicates would leave fewer', async () => {
    await expectTRPCError(
      alice.user.getUsers.query({ accounts: [...SEEDED.slice(0, 150), seeded(1)] }),
      'BAD_REQUEST',
      ['accounts'],
    );
  });

  it('no accounts is BAD_REQUEST; an invalid id names its index', async () => {
    await expectTRPCError(alice.user.getUsers.query({ accounts: [] }), 'BAD_REQUEST', ['accounts']);
    await expectTRPCError(
      alice.user.getUsers.query({ accounts: ['bob', 'bad id'] }),
      'BAD_REQUEST',
      ['accounts.1'],
    );
  });
});

describe('user.search', () => {
  it('finds by nick or account prefix, case-insensitively', async () => {
    await bob.user.updateMyInfo.mutate({ nick: 'Bob 鲍勃' });
    const byNick = await alice.user.search.query({ query: 'BOB 鲍' });
    expect(byNick.users.map((u) => u.account)).toContain('bob');
    const byAccount = await alice.user.search.query({ query: 'car' });
    expect(byAccount.users.map((u) => u.account)).toContain('carol');
    const kana = await alice.user.search.query({ query: 'キャロ' });
    expect(kana.users.map((u) => u.account)).toEqual(['carol']);
  });

  it('pages through every match exactly once with the cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { users: Profile[]; nextCursor: string | null } = await alice.user.search.query({
        query: 'user0',
        limit: 30,
        cursor,
      });
      expect(page.users.length).toBeLessThanOrEqual(30);
      seen.push(...page.users.map((u) => u.account));
      cursor = page.nextCursor;
      pages++;
      expect(pages).toBeLessThan(20);
    } while (cursor);
    expect(pages).toBe(7);
    expect([...seen].sort()).toEqual(SEEDED);
  });

  it('a foreign or garbage cursor is BAD_REQUEST', async () => {
    const page = await alice.user.search.query({ query: 'user0', limit: 5 });
    expect(page.nextCursor).toBeTruthy();
    const e1 = await expectTRPCError(
      alice.user.search.query({ query: 'alice', cursor: page.nextCursor }),
      'BAD_REQUEST',
      ['cursor'],
    );
    expect(e1.message).toMatch(/^cursor/);
    const e2 = await expectTRPCError(
      alice.user.search.query({ query: 'user0', cursor: '!!not-base64!!' }),
      'BAD_REQUEST',
      ['cursor'],
    );
    expect(e2.message).toMatch(/^cursor/);
  });

  it('bad input is BAD_REQUEST naming the field', async () => {
    await expectTRPCError(alice.user.search.query({ query: '   ' }), 'BAD_REQUEST', ['query']);
    await expectTRPCError(alice.user.search.query({ query: 'q'.repeat(65) }), 'BAD_REQUEST', [
      'query',
    ]);
    await expectTRPCError(alice.user.search.query({ query: 'user', limit: 101 }), 'BAD_REQUEST', [
      'limit',
    ]);
    await expectTRPCError(alice.user.search.query({ query: 'user', limit: 0 }), 'BAD_REQUEST', [
      'limit',
    ]);
  });
});

describe('user.sync', () => {
  it('returns my info and all my friends, then only friends changed after the cursor', async () => {
    const friends = await listFriends(S().db, 'alice');
    expect(friends).toEqual(expect.arrayContaining(['bob', 'carol']));
    const outsider = await newUser();

    const first = await alice.user.sync.query();
    expect(first.myInfo).toEqual(await stored('alice'));
    expect(first.users.map((u) => u.account).sort()).toEqual([...friends].sort());
    expect(first.cursor).toMatch(/^n24_[0-9a-z]+_[0-9a-z.]+$/);
    expect(first.users.find((u) => u.account === 'bob')).toHaveProperty('email', 'bob@example.com');

    const idle = await alice.user.sync.query({ since: first.cursor });
    expect(idle.users).toEqual([]);
    expect(idle.cursor).toBe(first.cursor);

    const bobNow = await bob.user.updateMyInfo.mutate({ sign: `synced ${Date.now()}` });
    await outsider.client.user.updateMyInfo.mutate({ sign: 'not a friend of alice' });

    const second = await alice.user.sync.query({ since: first.cursor });
    expect(second.users).toEqual([bobNow]);
    expect(compareCursors(second.cursor, first.cursor)).toBe(1);

    const third = await alice.user.sync.query({ since: second.cursor });
    expect(third.users).toEqual([]);
  });

  it('a bad cursor is BAD_REQUEST naming since', async () => {
    await expectTRPCError(alice.user.sync.query({ since: 'yesterday' }), 'BAD_REQUEST', ['since']);
  });
});

describe('friend.add / friend.remove / friend.list', () => {
  it('adds, lists sorted, tells repeats, removes', async () => {
    const me = await newUser();
    expect(await me.client.friend.list.query()).toEqual([]);
    expect(await me.client.friend.add.mutate({ account: 'carol' })).toEqual({
      account: 'carol',
      added: true,
    });
    expect(await me.client.friend.add.mutate({ account: 'bob' })).toEqual({
      account: 'bob',
      added: true,
    });
    expect(await me.client.friend.add.mutate({ account: 'bob' })).toEqual({
      account: 'bob',
      added: false,
    });
    expect(await me.client.friend.list.query()).toEqual(['bob', 'carol']);
    expect(await me.client.friend.remove.mutate({ account: 'bob' })).toEqual({
      account: 'bob',
      removed: true,
    });
    expect(await me.client.friend.remove.mutate({ account: 'bob' })).toEqual({
      account: 'bob',
      removed: false,
    });
    expect(await me.client.friend.list.query()).toEqual(['carol']);
  });

  it('adding myself is BAD_REQUEST, an unknown account NOT_FOUND, a bad id names account', async () => {
    const me = await newUser();
    await expectTRPCError(me.client.friend.add.mutate({ account: me.account }), 'BAD_REQUEST', [
      'account',
    ]);
    await expectTRPCError(me.client.friend.add.mutate({ account: 'nobody-at-all' }), 'NOT_FOUND');
    await expectTRPCError(me.client.friend.add.mutate({ account: 'bad id' }), 'BAD_REQUEST', [
      'account',
    ]);
    expect(await me.client.friend.list.query()).toEqual([]);
  });

  it('needs a signed-in user', async () => {
    await expectTRPCError(clientFor(S().url).friend.list.query(), 'UNAUTHORIZED');
    await expectTRPCError(clientFor(S().url).friend.add.mutate({ account: 'bob' }), 'UNAUTHORIZED');
  });
});

describe('auth.signIn / auth.signOut', () => {
  it('sets an HttpOnly SameSite=Lax session cookie that authenticates, and signOut revokes it', async () => {
    const setCookies: string[] = [];
    const anonymous = clientFor(S().url, {
      onResponse: (r) => setCookies.push(...r.headers.getSetCookie()),
    });
    expect(
      await anonymous.auth.signIn.mutate({ account: 'alice', token: S().tokens.alice }),
    ).toEqual({ account: 'alice' });

    expect(setCookies).toHaveLength(1);
    const cookie = setCookies[0]!;
    const attributes = cookie.split(';').map((a) => a.trim().toLowerCase());
    expect(attributes).toContain('httponly');
    expect(attributes).toContain('samesite=lax');
    expect(attributes).toContain('path=/');
    expect(attributes.find((a) => a.startsWith('max-age='))).toMatch(/^max-age=[1-9]\d*$/);
    expect(cookie).not.toContain(S().tokens.alice);
    expect(cookie).not.toContain(encodeURIComponent(S().tokens.alice));
    const pair = cookie.split(';')[0]!;
    expect(pair).toMatch(/^nc_session=[^;\s]{16,}$/);

    // A raw fetch with the cookie, as the browser sends it.
    const raw = await fetch(`${S().url}/trpc/user.getMyInfo`, { headers: { cookie: pair } });
    expect(raw.status).toBe(200);
    const body = (await raw.json()) as { result: { data: Profile } };
    expect(body.result.data.account).toBe('alice');
    expect(body.result.data).toEqual(await stored('alice')); // private fields included

    // The typed client with the cookie works too; Bearer takes precedence over the cookie.
    expect((await clientFor(S().url, { cookie: pair }).user.getMyInfo.query()).account).toBe(
      'alice',
    );
    expect(
      (await clientFor(S().url, { cookie: pair, token: S().tokens.bob }).user.getMyInfo.query())
        .account,
    ).toBe('bob');

    const cleared: string[] = [];
    const session = clientFor(S().url, {
      cookie: pair,
      onResponse: (r) => cleared.push(...r.headers.getSetCookie()),
    });
    expect(await session.auth.signOut.mutate()).toEqual({ signedOut: true });
    expect(cleared).toHaveLength(1);
    expect(cleared[0]).toMatch(/^nc_session=;/);
    expect(cleared[0]!.toLowerCase()).toContain('max-age=0');

    const after = await fetch(`${S().url}/trpc/user.getMyInfo`, { headers: { cookie: pair } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'UNAUTHORIZED',
    );
    await expectTRPCError(
      clientFor(S().url, { cookie: pair }).user.getMyInfo.query(),
      'UNAUTHORIZED',
    );
  });

  it('a wrong token or another account is UNAUTHORIZED and sets no cookie', async () => {
    const setCookies: string[] = [];
    const anonymous = clientFor(S().url, {
      onResponse: (r) => setCookies.push(...r.headers.getSetCookie()),
    });
    await expectTRPCError(
      anonymous.auth.signIn.mutate({ account: 'alice', token: 'wrong-token-0123456789' }),
      'UNAUTHORIZED',
    );
    await expectTRPCError(
      anonymous.auth.signIn.mutate({ account: 'bob', token: S().tokens.alice }),
      'UNAUTHORIZED',
    );
    await expectTRPCError(
      anonymous.auth.signIn.mutate({ account: 'nobody', token: S().tokens.alice }),
      'UNAUTHORIZED',
    );
    expect(setCookies).toEqual([]);
  });

  it('bad input is BAD_REQUEST naming the field', async () => {
    const anonymous = clientFor(S().url);
    await expectTRPCError(
      anonymous.auth.signIn.mutate({ account: 'alice', token: '' }),
      'BAD_REQUEST',
      ['token'],
    );
    await expectTRPCError(
      anonymous.auth.signIn.mutate({ account: 'not valid!', token: 'x'.repeat(20) }),
      'BAD_REQUEST',
      ['account'],
    );
  });

  it('signOut without a session still clears the cookie', async () => {
    const setCookies: string[] = [];
    const anonymous = clientFor(S().url, {
      onResponse: (r) => setCookies.push(...r.headers.getSetCookie()),
    });
    expect(await anonymous.auth.signOut.mutate()).toEqual({ signedOut: true });
    expect(setCookies[0]).toMatch(/^nc_session=;/);
  });
});

describe('admin', () => {
  it('needs the secret: none is UNAUTHORIZED, a wrong one FORBIDDEN, a user token is not enough', async () => {
    const calls = (c: Client) => [
      () => c.admin.getUsers.query({ accounts: ['alice'] }),
      () => c.admin.createAccount.mutate({ account: 'intruder' }),
      () => c.admin.updateUser.mutate({ account: 'alice', patch: { nick: 'pwned' } }),
    ];
    for (const call of calls(clientFor(S().url))) await expectTRPCError(call(), 'UNAUTHORIZED');
    for (const call of calls(alice)) await expectTRPCError(call(), 'UNAUTHORIZED');
    for (const call of calls(clientFor(S().url, { adminSecret: `${S().adminSecret}x` })))
      await expectTRPCError(call(), 'FORBIDDEN');
    for (const call of calls(clientFor(S().url, { adminSecret: 'short' })))
      await expectTRPCError(call(), 'FORBIDDEN');
    expect(await admin.admin.getUsers.query({ accounts: ['intruder'] })).toEqual([]);
    expect((await stored('alice')).nick).not.toBe('pwned');
  });

  it('createAccount makes an account whose token works', async () => {
    const before = Date.now();
    const created = await admin.admin.createAccount.mutate({
      account: 'new.user-1@x',
      profile: { nick: 'Newcomer', email: 'new@example.com', gender: 'female' },
    });
    expect(created.account).toBe('new.user-1@x');
    expect(created.token.length).toBeGreaterThanOrEqual(16);
    const me = await clientFor(S().url, { token: created.token }).user.getMyInfo.query();
    expect(me).toMatchObject({
      account: 'new.user-1@x',
      nick: 'Newcomer',
      email: 'new@example.com',
      gender: 'female',
      sign: '',
    });
    expect(me.createTime).toBeGreaterThanOrEqual(before - 1000);
    expect(me.updateTime).toBe(me.createTime);

    const chosen = await admin.admin.createAccount.mutate({
      account: 'chosen-token',
      token: 'my-chosen-token-0123456789',
    });
    expect(chosen).toEqual({ account: 'chosen-token', token: 'my-chosen-token-0123456789' });
    expect((await clientFor(S().url, { token: chosen.token }).user.getMyInfo.query()).account).toBe(
      'chosen-token',
    );
  });

  it('a duplicate account or token is CONFLICT and changes nothing', async () => {
    await expectNoChange('bob', () =>
      expectTRPCError(
        admin.admin.createAccount.mutate({ account: 'bob', profile: { nick: 'Other Bob' } }),
        'CONFLICT',
      ),
    );
    expect(
      (await clientFor(S().url, { token: S().tokens.bob }).user.getMyInfo.query()).account,
    ).toBe('bob');
    await expectTRPCError(
      admin.admin.createAccount.mutate({ account: 'token-thief', token: S().tokens.alice }),
      'CONFLICT',
    );
    expect(await admin.admin.getUsers.query({ accounts: ['token-thief'] })).toEqual([]);
    expect(
      (await clientFor(S().url, { token: S().tokens.alice }).user.getMyInfo.query()).account,
    ).toBe('alice');
  });

  it('createAccount validates account, token and profile', async () => {
    const events = await lastEventId(S().db);
    await expectTRPCError(
      admin.admin.createAccount.mutate({ account: 'has space' }),
      'BAD_REQUEST',
      ['account'],
    );
    await expectTRPCError(
      admin.admin.createAccount.mutate({ account: 'short-token', token: 'short' }),
      'BAD_REQUEST',
      ['token'],
    );
    await expectTRPCError(
      admin.admin.createAccount.mutate({
        account: 'bad-profile',
        profile: { nick: 'n'.repeat(65) },
      }),
      'BAD_REQUEST',
      ['profile.nick'],
    );
    await expectTRPCError(
      admin.admin.createAccount.mutate({
        account: 'bad-profile',
        profile: { createTime: 1 } as RouterInputs['admin']['createAccount']['profile'],
      }),
      'BAD_REQUEST',
      ['profile.createTime'],
    );
    expect(
      await admin.admin.getUsers.query({ accounts: ['has-space', 'short-token', 'bad-profile'] }),
    ).toEqual([]);
    expect(await lastEventId(S().db)).toBe(events);
  });

  it('updateUser patches any profile and returns every field', async () => {
    const dave = await newUser();
    const updated = await admin.admin.updateUser.mutate({
      account: dave.account,
      patch: { tel: '+49-30-1234', sign: 'set by admin' },
    });
    expect(updated).toMatchObject({
      account: dave.account,
      tel: '+49-30-1234',
      sign: 'set by admin',
      email: `${dave.account}@example.com`,
    });
    expect(await dave.client.user.getMyInfo.query()).toEqual(updated);
  });

  it('updateUser: unknown account NOT_FOUND, bad patch BAD_REQUEST naming patch fields, nothing changes', async () => {
    await expectTRPCError(
      admin.admin.updateUser.mutate({ account: 'ghost-admin', patch: { nick: 'x' } }),
      'NOT_FOUND',
    );
    expect(await admin.admin.getUsers.query({ accounts: ['ghost-admin'] })).toEqual([]);
    await expectNoChange('carol', () =>
      expectTRPCError(
        admin.admin.updateUser.mutate({ account: 'carol', patch: { nick: 'ok', email: 'bad' } }),
        'BAD_REQUEST',
        ['patch.email'],
      ),
    );
    await expectNoChange('carol', () =>
      expectTRPCError(
        admin.admin.updateUser.mutate({
          account: 'carol',
          patch: { createTime: 0 } as RouterInputs['admin']['updateUser']['patch'],
        }),
        'BAD_REQUEST',
        ['patch.createTime'],
      ),
    );
  });

  it('getUsers returns up to 200 profiles with private fields; 201 is BAD_REQUEST', async () => {
    const users = await admin.admin.getUsers.query({ accounts: SEEDED });
    expect(users).toHaveLength(200);
    expect(users.map((u) => u.account)).toEqual(SEEDED);
    for (const u of users) expect(Object.keys(u).sort()).toEqual(PROFILE_KEYS);
    await expectTRPCError(
      admin.admin.getUsers.query({ accounts: [...SEEDED, 'alice'] }),
      'BAD_REQUEST',
      ['accounts'],
    );
    await expectTRPCError(admin.admin.getUsers.query({ accounts: [] }), 'BAD_REQUEST', [
      'accounts',
    ]);
  });
});

describe('wire format and HTTP', () => {
  it('a query is a plain-JSON GET with numeric times', async () => {
    const res = await fetch(`${S().url}/trpc/user.getMyInfo`, {
      headers: { authorization: `Bearer ${S().tokens.carol}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { result: { data: Record<string, unknown> } };
    expect(Object.keys(body)).toEqual(['result']);
    expect(Object.keys(body.result)).toEqual(['data']);
    expect(body.result.data).toMatchObject({ account: 'carol', nick: 'キャロル' });
    expect(typeof body.result.data.createTime).toBe('number');
    expect(typeof body.result.data.updateTime).toBe('number');
    expect(body.result.data).not.toHaveProperty('json'); // no superjson envelope
  });

  it('a query input is plain JSON in ?input=', async () => {
    const input = encodeURIComponent(JSON.stringify({ accounts: ['bob', 'carol'] }));
    const res = await fetch(`${S().url}/trpc/user.getUsers?input=${input}`, {
      headers: { authorization: `Bearer ${S().tokens.alice}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { result: { data: Profile[] } };
    expect(body.result.data.map((u) => u.account)).toEqual(['bob', 'carol']);
  });

  it('a mutation is a plain-JSON POST; its validation error is JSON with fieldErrors and no stack', async () => {
    const post = (body: unknown) =>
      fetch(`${S().url}/trpc/user.updateMyInfo`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${S().tokens.carol}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
    const ok = await post({ sign: 'via curl' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { result: { data: Profile } }).result.data.sign).toBe('via curl');

    const bad = await post({ sign: 'ok', createTime: 0 });
    expect(bad.status).toBe(400);
    const error = (
      (await bad.json()) as { error: { message: string; data: Record<string, unknown> } }
    ).error;
    expect(error.data).toMatchObject({
      code: 'BAD_REQUEST',
      httpStatus: 400,
      fieldErrors: { createTime: ['unknown field'] },
    });
    expect(error.data).not.toHaveProperty('stack');
    expect(error.message).toContain('createTime');
    expect((await stored('carol')).sign).toBe('via curl');
  });

  it('errors carry HTTP statuses', async () => {
    const noAuth = await fetch(`${S().url}/trpc/user.getMyInfo`);
    expect(noAuth.status).toBe(401);
    const forbidden = await fetch(
      `${S().url}/trpc/admin.getUsers?input=${encodeURIComponent('{"accounts":["bob"]}')}`,
      {
        headers: { 'x-namecard-admin': 'wrong-secret-0123456789' },
      },
    );
    expect(forbidden.status).toBe(403);
    const unknownProcedure = await fetch(`${S().url}/trpc/user.doesNotExist`);
    expect(unknownProcedure.status).toBe(404);
    expect(
      ((await unknownProcedure.json()) as { error: { data: { code: string } } }).error.data.code,
    ).toBe('NOT_FOUND');
  });

  it('/healthz reports ok in memory mode', async () => {
    const res = await fetch(`${S().url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', mode: 'memory', redis: true });
  });

  it('an unknown path is 404', async () => {
    for (const path of ['/', '/nope', '/trpcx', '/healthz/extra']) {
      const res = await fetch(`${S().url}${path}`);
      expect(res.status, path).toBe(404);
      await res.body?.cancel();
    }
  });
});

describe('CORS', () => {
  it('answers preflights for the configured web origin only', async () => {
    const web = await startTestServer({ webOrigins: ['http://localhost:3000'] });
    try {
      const preflight = (origin: string) =>
        fetch(`${web.url}/trpc/user.getMyInfo`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'GET',
            'access-control-request-headers': 'authorization',
          },
        });
      const allowed = await preflight('http://localhost:3000');
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
      expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
      expect(allowed.headers.get('access-control-allow-headers')?.toLowerCase()).toContain(
        'authorization',
      );
      const other = await preflight('https://evil.example');
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const get = await fetch(`${web.url}/trpc/user.getMyInfo`, {
        headers: { origin: 'http://localhost:3000', authorization: `Bearer ${web.tokens.alice}` },
      });
      expect(get.status).toBe(200);
      expect(get.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    } finally {
      await web.close();
    }
  });
});
