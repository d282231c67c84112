/**
 * Each server process remembers which account a token belongs to (packages/db accounts.ts), but
 * still reads the account's auth hash on every call: a rotated token must fail at once on every
 * instance sharing the data, a token handed to another account must name that account at once,
 * and ended web sessions (not remembered at all) must fail at once everywhere. Two instances,
 * on a real Redis and in memory mode.
 */
import { describe, expect, it } from 'vitest';
import {
  adminClient,
  clientFor,
  describeRealRedis,
  expectTRPCError,
  realRedisUrl,
  startTestServer,
  type TestServerOptions,
} from './helpers';

const redis = await realRedisUrl();

async function signIn(url: string, account: string, token: string): Promise<string> {
  const response = await fetch(`${url}/trpc/auth.signIn`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ account, token }),
  });
  expect(response.status).toBe(200);
  return (response.headers.get('set-cookie') ?? '').split(';')[0]!;
}

function suite(options: () => TestServerOptions) {
  it('a token rotated on one instance stops working on both at once', async () => {
    const a = await startTestServer(options());
    const b = await startTestServer({ shareWith: a });
    try {
      const old = a.tokens.alice;
      // Both instances have seen (and remember) the token.
      for (const s of [a, b])
        expect((await clientFor(s.url, { token: old }).user.getMyInfo.query()).account).toBe(
          'alice',
        );
      const { token } = await adminClient(a).admin.rotateToken.mutate({ account: 'alice' });
      for (const s of [b, a]) {
        await expectTRPCError(
          clientFor(s.url, { token: old }).user.getMyInfo.query(),
          'UNAUTHORIZED',
        );
        expect((await clientFor(s.url, { token }).user.getMyInfo.query()).account).toBe('alice');
      }
      // The old token given to bob now names bob on both, though both remembered it as alice's.
      await adminClient(b).admin.rotateToken.mutate({ account: 'bob', token: old });
      for (const s of [a, b]) {
        expect((await clientFor(s.url, { token: old }).user.getMyInfo.query()).account).toBe('bob');
        await expectTRPCError(
          clientFor(s.url, { token: b.tokens.bob }).user.getMyInfo.query(),
          'UNAUTHORIZED',
        );
      }
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('a query by a remembered token starts at once but answers only as its current holder', async () => {
    // A query by a token the instance remembers runs as the remembered account while the token
    // is checked (packages/api trpc.ts): here the token changes hands in between, with no call
    // in between to make the instances forget it.
    const a = await startTestServer(options());
    const b = await startTestServer({ shareWith: a });
    try {
      const old = a.tokens.alice;
      for (const s of [a, b]) {
        expect((await clientFor(s.url, { token: old }).user.getMyInfo.query()).account).toBe(
          'alice',
        );
      }
      await adminClient(a).admin.rotateToken.mutate({ account: 'alice' });
      await adminClient(a).admin.rotateToken.mutate({ account: 'bob', token: old });
      for (const s of [a, b]) {
        const me = await clientFor(s.url, { token: old }).user.getMyInfo.query();
        expect(me.account).toBe('bob');
        const [seen] = await clientFor(s.url, { token: old }).user.getUsers.query({
          accounts: ['bob'],
        });
        expect(seen).toEqual(me);
      }
      // Taken from bob too: both remember it as bob's, and neither answers with bob's profile.
      await adminClient(b).admin.rotateToken.mutate({ account: 'bob' });
      for (const s of [a, b]) {
        await expectTRPCError(
          clientFor(s.url, { token: old }).user.getMyInfo.query(),
          'UNAUTHORIZED',
        );
      }
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('a write by a remembered token checks the token in its own step: applied only to its current holder', async () => {
    // updateMyInfo by a token the instance remembers runs as the remembered account and leaves
    // the token's check to its write (packages/api trpc.ts, checksToken): here the token changes
    // hands, then is taken away, with no call in between to make the instances forget it. Each
    // instance's first call after a change is the one that meets its stale memory (a failed
    // check makes it forget), so three instances make three different first calls.
    const a = await startTestServer(options());
    const b = await startTestServer({ shareWith: a });
    const c = await startTestServer({ shareWith: a });
    try {
      const old = a.tokens.alice;
      const as = (s: { url: string }) => clientFor(s.url, { token: old }).user.updateMyInfo;
      for (const s of [a, b, c]) {
        expect(await as(s).mutate({ sign: 'A' })).toMatchObject({ account: 'alice', sign: 'A' });
      }
      const admin = adminClient(a);
      const signs = async () =>
        Object.fromEntries(
          (await admin.admin.getUsers.query({ accounts: ['alice', 'bob'] })).map((p) => [
            p.account,
            p.sign,
          ]),
        );
      await admin.admin.rotateToken.mutate({ account: 'alice' });
      await admin.admin.rotateToken.mutate({ account: 'bob', token: old });
      expect((await as(a).mutate({})).account).toBe('bob');
      expect(await as(b).mutate({ sign: 'B' })).toMatchObject({ account: 'bob', sign: 'B' });
      expect(await signs()).toEqual({ alice: 'A', bob: 'B' });

      // Taken from bob too (c still remembers it as alice's, a and b as bob's): refused, and
      // neither profile changes; a bad input by it is refused as unauthorized, not as bad input.
      await admin.admin.rotateToken.mutate({ account: 'bob' });
      await expectTRPCError(as(c).mutate({}), 'UNAUTHORIZED');
      await expectTRPCError(as(a).mutate({ sign: 'lost' }), 'UNAUTHORIZED');
      await expectTRPCError(as(b).mutate({ nick: 'x'.repeat(1000) }), 'UNAUTHORIZED');
      expect(await signs()).toEqual({ alice: 'A', bob: 'B' });
    } finally {
      await c.close();
      await b.close();
      await a.close();
    }
  });

  it('sessions ended on one instance (sign out everywhere, revoke) fail on the other at once', async () => {
    const a = await startTestServer(options());
    const b = await startTestServer({ shareWith: a });
    try {
      const first = await signIn(a.url, 'alice', a.tokens.alice);
      expect((await clientFor(b.url, { cookie: first }).user.getMyInfo.query()).account).toBe(
        'alice',
      );
      await clientFor(a.url, { cookie: first }).auth.signOutEverywhere.mutate();
      await expectTRPCError(
        clientFor(b.url, { cookie: first }).user.getMyInfo.query(),
        'UNAUTHORIZED',
      );

      const second = await signIn(b.url, 'alice', a.tokens.alice);
      expect((await clientFor(a.url, { cookie: second }).user.getMyInfo.query()).account).toBe(
        'alice',
      );
      await adminClient(b).admin.revokeSessions.mutate({ account: 'alice' });
      await expectTRPCError(
        clientFor(a.url, { cookie: second }).user.getMyInfo.query(),
        'UNAUTHORIZED',
      );
      // The token itself keeps working on both.
      for (const s of [a, b])
        expect(
          (await clientFor(s.url, { token: a.tokens.alice }).user.getMyInfo.query()).account,
        ).toBe('alice');
    } finally {
      await b.close();
      await a.close();
    }
  });
}

describe('two instances in memory mode (one data set)', () => suite(() => ({})));

describeRealRedis('two instances on one Redis', redis, (url) => suite(() => ({ redisUrl: url })));
