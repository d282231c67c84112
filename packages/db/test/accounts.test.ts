import { describe, expect, it } from 'vitest';
import {
  AccountExistsError,
  SESSION_TTL_SECONDS,
  TOKEN_CLAIM_TTL_MS,
  TokenTakenError,
  accountForSession,
  accountForToken,
  createAccount,
  createSession,
  deleteSession,
  getProfile,
  hashSecret,
  keys,
  encodeCursor,
  lastEventId,
  startPositions,
  newSecret,
  secretsEqual,
  tokenSchema,
} from '../src';
import { describeEachBackend } from './backends';
import { createUser, dumpRedis, newestIdOf } from './util';

describe('secrets', () => {
  it('hashes with SHA-256 hex and compares by value', () => {
    expect(hashSecret('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(secretsEqual('same-secret', 'same-secret')).toBe(true);
    expect(secretsEqual('same-secret', 'same-secreT')).toBe(false);
  });

  it('makes distinct, URL-safe secrets that pass the token schema', () => {
    const secrets = new Set(Array.from({ length: 100 }, () => newSecret()));
    expect(secrets.size).toBe(100);
    for (const s of secrets) {
      expect(s).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(tokenSchema.safeParse(s).success).toBe(true);
    }
  });
});

describeEachBackend('accounts', (backend) => {
  it('creates an account with its profile, createTime = updateTime = now', async () => {
    const { db } = backend;
    const created = await createAccount(
      db,
      {
        account: 'alice',
        token: 'alice-secret-token-1234',
        profile: { nick: 'Alice', email: 'a@example.com' },
      },
      1_700_000_000_000,
    );
    expect(created.account).toBe('alice');
    expect(created.token).toBe('alice-secret-token-1234');
    expect(created.event).toMatchObject({ type: 'profile', account: 'alice' });
    expect(created.event.id).toBe(await newestIdOf(db, 'alice'));
    const expected = {
      account: 'alice',
      nick: 'Alice',
      avatar: '',
      sign: '',
      gender: 'unknown',
      email: 'a@example.com',
      birth: '',
      tel: '',
      custom: '',
      createTime: 1_700_000_000_000,
      updateTime: 1_700_000_000_000,
    };
    expect(created.event.profile).toEqual(expected);
    expect(await getProfile(db, 'alice')).toEqual(expected);
  });

  it('generates a random token when none is given, and it resolves', async () => {
    const { db } = backend;
    const a = await createAccount(db, { account: 'a1' });
    const b = await createAccount(db, { account: 'b1' });
    expect(a.token).not.toBe(b.token);
    expect(tokenSchema.safeParse(a.token).success).toBe(true);
    expect(await accountForToken(db, a.token)).toBe('a1');
    expect(await accountForToken(db, b.token)).toBe('b1');
  });

  it('the same create sent again (same write id) answers its event instead of a conflict', async () => {
    const { db } = backend;
    const first = await createAccount(
      db,
      { account: 'resent', token: 'resent-token-0123456789' },
      1000,
      'w-1',
    );
    const again = await createAccount(
      db,
      { account: 'resent', token: 'resent-token-0123456789' },
      2000,
      'w-1',
    );
    expect(again.event).toEqual(first.event);
    expect(await newestIdOf(db, 'resent')).toBe(first.event.id);
    await expect(
      createAccount(db, { account: 'resent', token: 'resent-token-0123456789' }, 3000, 'w-2'),
    ).rejects.toBeInstanceOf(AccountExistsError);
  });

  it('rejects a duplicate account with AccountExistsError and changes nothing', async () => {
    const { db } = backend;
    const created = await createUser(db, 'alice', { nick: 'Alice' }, 1000);
    const before = await dumpRedis(db.redis);
    const attempt = createAccount(db, {
      account: 'alice',
      token: 'another-token-abcdefgh',
      profile: { nick: 'Mallory' },
    });
    await expect(attempt).rejects.toBeInstanceOf(AccountExistsError);
    await expect(attempt).rejects.toMatchObject({ account: 'alice' });
    expect(await dumpRedis(db.redis)).toEqual(before);
    expect(await accountForToken(db, 'another-token-abcdefgh')).toBeNull();
    expect((await getProfile(db, 'alice'))?.nick).toBe('Alice');
    expect(await newestIdOf(db, 'alice')).toBe(created.event.id);
  });

  it('rejects a token another account uses with TokenTakenError and creates nothing', async () => {
    const { db } = backend;
    const created = await createAccount(db, { account: 'alice', token: 'shared-token-0123456789' });
    const before = await dumpRedis(db.redis);
    await expect(
      createAccount(db, {
        account: 'bob',
        token: 'shared-token-0123456789',
        profile: { nick: 'Bob' },
      }),
    ).rejects.toBeInstanceOf(TokenTakenError);
    expect(await dumpRedis(db.redis)).toEqual(before);
    expect(await getProfile(db, 'bob')).toBeNull();
    expect(await accountForToken(db, 'shared-token-0123456789')).toBe('alice');
    expect(await newestIdOf(db, 'alice')).toBe(created.event.id);
  });

  it('resolves the right token to its account and any other token to null', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    await createUser(db, 'bob');
    expect(await accountForToken(db, 'alice-token-0123456789')).toBe('alice');
    expect(await accountForToken(db, 'bob-token-0123456789')).toBe('bob');
    expect(await accountForToken(db, 'alice-token-012345678')).toBeNull();
    expect(await accountForToken(db, 'ALICE-token-0123456789')).toBeNull();
    expect(await accountForToken(db, '')).toBeNull();
    expect(await accountForToken(db, hashSecret('alice-token-0123456789'))).toBeNull();
  });

  it('does not resolve a token whose index entry points at an account with another token', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    await createUser(db, 'bob');
    // A forged index entry (token hash -> bob) must not beat bob's stored token hash.
    await db.redis.set(keys.token(hashSecret('forged-token-0123456789')), 'bob');
    expect(await accountForToken(db, 'forged-token-0123456789')).toBeNull();
  });

  it('never stores a token in plain text', async () => {
    const { db } = backend;
    const token = 'PlainTextCanary-7f3a9c2e5b';
    await createAccount(db, { account: 'alice', token, profile: { nick: 'Alice', sign: 'hi' } });
    const random = await createAccount(db, { account: 'bob' });
    const dump = await dumpRedis(db.redis);
    const everything = JSON.stringify([...dump.entries()]);
    expect(dump.size).toBeGreaterThan(0);
    // The scan does see what is stored: the hashes are there...
    expect(everything).toContain(hashSecret(token));
    expect(everything).toContain(hashSecret(random.token));
    // ...and the tokens themselves are not, in any key name or value.
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(random.token);
    for (const [key, value] of dump) {
      expect(key).not.toContain(token);
      expect(JSON.stringify(value)).not.toContain(token);
    }
  });

  it('creates, resolves and deletes web sessions', async () => {
    const { db } = backend;
    await createUser(db, 'alice');
    const s1 = await createSession(db, 'alice');
    const s2 = await createSession(db, 'alice');
    expect(s1).not.toBe(s2);
    expect(await accountForSession(db, s1)).toBe('alice');
    expect(await accountForSession(db, s2)).toBe('alice');
    expect(await accountForSession(db, `${s1}x`)).toBeNull();
    expect(await accountForSession(db, 'no-such-session')).toBeNull();

    const ttl = await db.redis.ttl(keys.session(hashSecret(s1)));
    expect(ttl).toBeGreaterThan(SESSION_TTL_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(SESSION_TTL_SECONDS);
    // The session id is not stored in plain text either.
    expect(JSON.stringify([...(await dumpRedis(db.redis)).entries()])).not.toContain(s1);

    await deleteSession(db, s1);
    expect(await accountForSession(db, s1)).toBeNull();
    expect(await accountForSession(db, s2)).toBe('alice');
    await deleteSession(db, s1); // deleting twice is harmless
    await deleteSession(db, s2);
    expect(await accountForSession(db, s2)).toBeNull();
  });

  it('refuses account ids that are not valid before they reach a key', async () => {
    const { db } = backend;
    await expect(createAccount(db, { account: 'bad}account' })).rejects.toThrow(
      /invalid account id/,
    );
    await expect(createAccount(db, { account: '' })).rejects.toThrow(/invalid account id/);
    await expect(createAccount(db, { account: 'x'.repeat(33) })).rejects.toThrow(
      /invalid account id/,
    );
    expect(await lastEventId(db)).toBe(encodeCursor(startPositions()));
    expect(await dumpRedis(db.redis)).toEqual(new Map());
  });
});

describeEachBackend('tokens and sessions on their own keys', (backend) => {
  it('a token or session entry naming a bad account id resolves to nobody (never an error)', async () => {
    const { db } = backend;
    await db.redis.set(keys.token(hashSecret('broken-token-0123456789')), 'bad}id 1');
    expect(await accountForToken(db, 'broken-token-0123456789')).toBeNull();
    const session = 'broken-session-0123456789';
    await db.redis.set(keys.session(hashSecret(session)), '{x} 0');
    expect(await accountForSession(db, session)).toBeNull();
  });

  it('a token claim whose create died is taken over once it is old, never while it may be in flight', async () => {
    const { db } = backend;
    const token = 'claimed-token-0123456789';
    // A create that claimed the token and died before writing its account.
    await db.redis.set(keys.token(hashSecret(token)), `ghost ${Date.now()}`);
    await expect(createAccount(db, { account: 'bob', token })).rejects.toBeInstanceOf(
      TokenTakenError,
    );
    expect(await accountForToken(db, token)).toBeNull();
    await db.redis.set(
      keys.token(hashSecret(token)),
      `ghost ${Date.now() - TOKEN_CLAIM_TTL_MS - 1000}`,
    );
    await createAccount(db, { account: 'bob', token });
    expect(await accountForToken(db, token)).toBe('bob');
    // A live account's token is never taken over, however old its entry.
    await db.redis.set(
      keys.token(hashSecret(token)),
      `bob ${Date.now() - 10 * TOKEN_CLAIM_TTL_MS}`,
    );
    await expect(createAccount(db, { account: 'carol', token })).rejects.toBeInstanceOf(
      TokenTakenError,
    );
    expect(await accountForToken(db, token)).toBe('bob');
  });

  it('racing creates: of two accounts with one token, or one account with two tokens, one wins', async () => {
    const { db } = backend;
    const other = backend.connect();
    const sameToken = await Promise.allSettled([
      createAccount(db, { account: 'r1', token: 'race-token-0123456789' }),
      createAccount(other, { account: 'r2', token: 'race-token-0123456789' }),
    ]);
    expect(sameToken.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const winner = sameToken[0].status === 'fulfilled' ? 'r1' : 'r2';
    expect(await accountForToken(db, 'race-token-0123456789')).toBe(winner);

    const sameAccount = await Promise.allSettled([
      createAccount(db, { account: 'r3', token: 'first-token-0123456789' }),
      createAccount(other, { account: 'r3', token: 'second-token-0123456789' }),
    ]);
    expect(sameAccount.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const tokens = ['first-token-0123456789', 'second-token-0123456789'];
    const resolved = await Promise.all(tokens.map((t) => accountForToken(db, t)));
    expect(resolved.filter((a) => a === 'r3')).toHaveLength(1);
    expect(resolved.filter((a) => a === null)).toHaveLength(1);
    // The loser's claim was let go: its token is free for another account.
    const free = tokens[resolved.indexOf(null)]!;
    await createAccount(db, { account: 'r4', token: free });
    expect(await accountForToken(db, free)).toBe('r4');
  });
});
