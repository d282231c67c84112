/**
 * Guess limits and session control over real HTTP: sign-in guesses per account, bad credentials
 * per client IP (socket address, or X-Forwarded-For from a trusted proxy only), friend.add per
 * account, all answered TOO_MANY_REQUESTS with Retry-After and kept in Redis so they hold across
 * instances; ending every session of an account and rotating its token; CORS and cookie
 * settings that cannot be set unsafely.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config';
import {
  adminClient,
  clientFor,
  demoClient,
  describeRealRedis,
  expectTRPCError,
  realRedisUrl,
  startTestServer,
  type TestServer,
} from './helpers';

const redis = await realRedisUrl();

/** A raw tRPC GET of user.getMyInfo with the given headers: status, Retry-After and code. */
async function getMyInfo(server: TestServer, headers: Record<string, string>) {
  const res = await fetch(`${server.url}/trpc/user.getMyInfo`, { headers });
  const body = (await res.json()) as { error?: { data: { code: string } } };
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    code: body.error?.data.code,
  };
}

async function signIn(
  server: TestServer,
  account: string,
  token: string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${server.url}/trpc/auth.signIn`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ account, token }),
  });
  const body = (await res.json()) as {
    error?: { message: string; data: { code: string; retryAfterSeconds?: number } };
  };
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    code: body.error?.data.code ?? 'OK',
    error: body.error,
    cookie: res.headers.getSetCookie()[0] ?? '',
  };
}

const WRONG = 'wrong-token-0123456789';

function rateTests(redisUrl: string | undefined) {
  it('sign-in guesses are limited per account: TOO_MANY_REQUESTS with Retry-After, even for the right token', async () => {
    const server = await startTestServer({
      ...(redisUrl ? { redisUrl } : {}),
      settings: {
        rateRules: {
          signIn: { points: 3, seconds: 60 },
          authFailures: { points: 100, seconds: 60 },
        },
      },
    });
    try {
      for (let i = 0; i < 3; i++)
        expect((await signIn(server, 'alice', WRONG)).code).toBe('UNAUTHORIZED');
      const refused = await signIn(server, 'alice', WRONG);
      expect(refused.status).toBe(429);
      expect(refused.code).toBe('TOO_MANY_REQUESTS');
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);
      expect(refused.error?.data.retryAfterSeconds).toBe(Number(refused.retryAfter));
      // The right token does not get through while the account is blocked (no oracle) ...
      const right = await signIn(server, 'alice', server.tokens.alice);
      expect(right.code).toBe('TOO_MANY_REQUESTS');
      expect(right.cookie).toBe('');
      // ... other accounts are not affected, and a success gives its attempt back.
      for (let i = 0; i < 5; i++)
        expect((await signIn(server, 'bob', server.tokens.bob)).code).toBe('OK');
      // Bearer tokens (service callers) do not depend on web sign-in.
      expect((await demoClient(server, 'alice').user.getMyInfo.query()).account).toBe('alice');
    } finally {
      await server.close();
    }
  });

  it('bad credentials are limited per client IP and the limit holds on another instance', async () => {
    const server = await startTestServer({
      ...(redisUrl ? { redisUrl } : {}),
      settings: { rateRules: { authFailures: { points: 3, seconds: 60 } } },
    });
    const second = await startTestServer({
      shareWith: server,
      settings: { rateRules: { authFailures: { points: 3, seconds: 60 } } },
    });
    try {
      expect((await getMyInfo(server, { authorization: `Bearer ${WRONG}` })).code).toBe(
        'UNAUTHORIZED',
      );
      // An expired or unknown session cookie is not counted (browsers retry with it).
      for (let i = 0; i < 5; i++) {
        expect((await getMyInfo(server, { cookie: 'nc_session=expired-session-id' })).code).toBe(
          'UNAUTHORIZED',
        );
      }
      expect((await signIn(server, 'carol', WRONG)).code).toBe('UNAUTHORIZED');
      const admin = await fetch(
        `${server.url}/trpc/admin.getUsers?input=${encodeURIComponent('{"accounts":["bob"]}')}`,
        {
          headers: { 'x-namecard-admin': 'wrong-admin-secret-0123' },
        },
      );
      expect(admin.status).toBe(403);
      // The fourth failure from this IP, on the other instance: refused.
      const refused = await getMyInfo(second, { authorization: `Bearer ${WRONG}` });
      expect(refused.status).toBe(429);
      expect(refused.code).toBe('TOO_MANY_REQUESTS');
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
      // From then on even a good token from this IP waits (a blocked guesser learns nothing).
      const good = await getMyInfo(second, { authorization: `Bearer ${server.tokens.alice}` });
      expect(good.code).toBe('TOO_MANY_REQUESTS');
      const signin = await signIn(second, 'bob', server.tokens.bob);
      expect(signin.code).toBe('TOO_MANY_REQUESTS');
    } finally {
      await second.close();
      await server.close();
    }
  });

  it('friend.add is limited per account', async () => {
    const server = await startTestServer({
      ...(redisUrl ? { redisUrl } : {}),
      settings: { rateRules: { friendAdd: { points: 2, seconds: 60 } } },
    });
    try {
      const admin = adminClient(server);
      for (const account of ['f1', 'f2', 'f3']) await admin.admin.createAccount.mutate({ account });
      const alice = demoClient(server, 'alice');
      await alice.friend.add.mutate({ account: 'f1' });
      await alice.friend.add.mutate({ account: 'f2' });
      const error = await expectTRPCError(
        alice.friend.add.mutate({ account: 'f3' }),
        'TOO_MANY_REQUESTS',
      );
      expect(error.data?.httpStatus).toBe(429);
      expect(await alice.friend.list.query()).not.toContain('f3');
      // Another account has its own allowance.
      expect((await demoClient(server, 'bob').friend.add.mutate({ account: 'f3' })).added).toBe(
        true,
      );
    } finally {
      await server.close();
    }
  });
}

describe('rate limits [memory mode]', () => rateTests(undefined));
describeRealRedis('rate limits', redis, (url) => rateTests(url));

describe('client IP', () => {
  const rules = { rateRules: { authFailures: { points: 2, seconds: 60 } } };

  it('without a trusted proxy X-Forwarded-For is ignored: it cannot buy a fresh bucket', async () => {
    const server = await startTestServer({ settings: rules });
    try {
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await getMyInfo(server, {
          authorization: `Bearer ${WRONG}`,
          'x-forwarded-for': `203.0.113.${i}`,
        });
        codes.push(r.code ?? 'OK');
      }
      expect(codes).toEqual([
        'UNAUTHORIZED',
        'UNAUTHORIZED',
        'TOO_MANY_REQUESTS',
        'TOO_MANY_REQUESTS',
      ]);
    } finally {
      await server.close();
    }
  });

  it('behind a trusted proxy each forwarded client has its own bucket, and spoofed hops are skipped', async () => {
    const server = await startTestServer({ settings: { ...rules, trustProxy: ['loopback'] } });
    try {
      const guess = (xff: string) =>
        getMyInfo(server, { authorization: `Bearer ${WRONG}`, 'x-forwarded-for': xff });
      // Client 203.0.113.7 uses up its allowance ...
      expect((await guess('203.0.113.7')).code).toBe('UNAUTHORIZED');
      expect((await guess('203.0.113.7')).code).toBe('UNAUTHORIZED');
      expect((await guess('203.0.113.7')).code).toBe('TOO_MANY_REQUESTS');
      // ... and cannot escape by prepending a made-up address (the proxy appends the real one).
      expect((await guess('198.51.100.1, 203.0.113.7')).code).toBe('TOO_MANY_REQUESTS');
      // Another web user behind the same proxy is not lumped in with it.
      expect((await guess('203.0.113.8')).code).toBe('UNAUTHORIZED');
      const good = await getMyInfo(server, {
        authorization: `Bearer ${server.tokens.alice}`,
        'x-forwarded-for': '203.0.113.9',
      });
      expect(good.status).toBe(200);
      // IPv6 clients are keyed by their /64.
      expect((await guess('2001:db8:1:2::1')).code).toBe('UNAUTHORIZED');
      expect((await guess('2001:db8:1:2::ffff')).code).toBe('UNAUTHORIZED');
      expect((await guess('2001:db8:1:2:aaaa::1')).code).toBe('TOO_MANY_REQUESTS');
    } finally {
      await server.close();
    }
  });
});

describe('ending sessions and rotating tokens', () => {
  async function sessionOf(server: TestServer, account: 'alice' | 'bob') {
    const r = await signIn(server, account, server.tokens[account]);
    expect(r.code).toBe('OK');
    return r.cookie.split(';')[0]!;
  }

  it('auth.signOutEverywhere ends every session of my account, not others', async () => {
    const server = await startTestServer();
    try {
      const [a1, a2, b1] = [
        await sessionOf(server, 'alice'),
        await sessionOf(server, 'alice'),
        await sessionOf(server, 'bob'),
      ];
      expect(await clientFor(server.url, { cookie: a1 }).auth.signOutEverywhere.mutate()).toEqual({
        signedOut: true,
      });
      for (const cookie of [a1, a2])
        await expectTRPCError(
          clientFor(server.url, { cookie }).user.getMyInfo.query(),
          'UNAUTHORIZED',
        );
      expect((await clientFor(server.url, { cookie: b1 }).user.getMyInfo.query()).account).toBe(
        'bob',
      );
      // A new sign-in works again.
      const a3 = await sessionOf(server, 'alice');
      expect((await clientFor(server.url, { cookie: a3 }).user.getMyInfo.query()).account).toBe(
        'alice',
      );
    } finally {
      await server.close();
    }
  });

  it('admin.revokeSessions ends an account’s sessions; its token keeps working', async () => {
    const server = await startTestServer();
    try {
      const a1 = await sessionOf(server, 'alice');
      const admin = adminClient(server);
      expect(await admin.admin.revokeSessions.mutate({ account: 'alice' })).toEqual({
        account: 'alice',
        revoked: true,
      });
      await expectTRPCError(
        clientFor(server.url, { cookie: a1 }).user.getMyInfo.query(),
        'UNAUTHORIZED',
      );
      expect((await demoClient(server, 'alice').user.getMyInfo.query()).account).toBe('alice');
      await expectTRPCError(admin.admin.revokeSessions.mutate({ account: 'nobody' }), 'NOT_FOUND');
      await expectTRPCError(
        demoClient(server, 'alice').admin.revokeSessions.mutate({ account: 'alice' }),
        'UNAUTHORIZED',
      );
    } finally {
      await server.close();
    }
  });

  it('admin.rotateToken: the old token and sessions stop working, the new token works', async () => {
    const server = await startTestServer();
    try {
      const a1 = await sessionOf(server, 'alice');
      const admin = adminClient(server);
      const { token } = await admin.admin.rotateToken.mutate({ account: 'alice' });
      expect(token).not.toBe(server.tokens.alice);
      await expectTRPCError(demoClient(server, 'alice').user.getMyInfo.query(), 'UNAUTHORIZED');
      await expectTRPCError(
        clientFor(server.url, { cookie: a1 }).user.getMyInfo.query(),
        'UNAUTHORIZED',
      );
      expect((await clientFor(server.url, { token }).user.getMyInfo.query()).account).toBe('alice');
      // A chosen token; another account's token is CONFLICT; an unknown account NOT_FOUND.
      const chosen = 'alice-chosen-token-0123456789';
      expect(
        (await admin.admin.rotateToken.mutate({ account: 'alice', token: chosen })).token,
      ).toBe(chosen);
      expect((await clientFor(server.url, { token: chosen }).user.getMyInfo.query()).account).toBe(
        'alice',
      );
      await expectTRPCError(
        clientFor(server.url, { token }).user.getMyInfo.query(),
        'UNAUTHORIZED',
      );
      await expectTRPCError(
        admin.admin.rotateToken.mutate({ account: 'alice', token: server.tokens.bob }),
        'CONFLICT',
      );
      expect((await demoClient(server, 'bob').user.getMyInfo.query()).account).toBe('bob');
      await expectTRPCError(admin.admin.rotateToken.mutate({ account: 'nobody' }), 'NOT_FOUND');
    } finally {
      await server.close();
    }
  });
});

describe('settings that cannot be made unsafe', () => {
  const secret = { NAMECARD_ADMIN_SECRET: 'a-long-enough-admin-secret' };

  it("NAMECARD_WEB_ORIGIN='*' (or anything that is not an origin) refuses to start", () => {
    expect(() => loadConfig({ NAMECARD_WEB_ORIGIN: '*' })).toThrow(ConfigError);
    expect(() => loadConfig({ NAMECARD_WEB_ORIGIN: 'https://a.example, *' })).toThrow(
      /'\*' is not allowed/,
    );
    expect(() => loadConfig({ NAMECARD_WEB_ORIGIN: 'https://a.example/path' })).toThrow(
      ConfigError,
    );
    expect(
      loadConfig({ NAMECARD_WEB_ORIGIN: 'https://a.example, http://localhost:3000' }).webOrigins,
    ).toEqual(['https://a.example', 'http://localhost:3000']);
  });

  it('a server given * anyway never reflects an origin with credentials', async () => {
    const server = await startTestServer({ webOrigins: ['*'] });
    try {
      const res = await fetch(`${server.url}/trpc/user.getMyInfo`, {
        headers: { origin: 'https://evil.example', authorization: `Bearer ${server.tokens.alice}` },
      });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    } finally {
      await server.close();
    }
  });

  it('the session cookie is Secure by default in Redis mode; NAMECARD_SECURE_COOKIES=0 turns it off', () => {
    const redisMode = { REDIS_URL: 'redis://127.0.0.1:1/8', ...secret };
    expect(loadConfig(redisMode).secureCookies).toBe(true);
    expect(loadConfig({ ...redisMode, NAMECARD_SECURE_COOKIES: '0' }).secureCookies).toBe(false);
    expect(loadConfig({}).secureCookies).toBe(false);
    expect(loadConfig({ NAMECARD_SECURE_COOKIES: '1' }).secureCookies).toBe(true);
  });

  it('limits are settings with defaults; bad values refuse to start', () => {
    const c = loadConfig({});
    expect(c.maxBodyBytes).toBe(1024 * 1024);
    expect(c.maxBatch).toBe(50);
    expect(c.rateRules.signIn).toEqual({ points: 10, seconds: 900 });
    expect(loadConfig({ NAMECARD_RATE_FRIEND_ADD: '5/10' }).rateRules.friendAdd).toEqual({
      points: 5,
      seconds: 10,
    });
    expect(() => loadConfig({ NAMECARD_RATE_SIGNIN: 'lots' })).toThrow(/NAMECARD_RATE_SIGNIN/);
    expect(() => loadConfig({ NAMECARD_TRUST_PROXY: 'not-an-address' })).toThrow(
      /NAMECARD_TRUST_PROXY/,
    );
    expect(loadConfig({ NAMECARD_TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
    ]);
  });
});

describeRealRedis('Redis-mode session cookie', redis, (url) => {
  it('is Secure by default', async () => {
    const server = await startTestServer({ redisUrl: url });
    try {
      const r = await signIn(server, 'alice', server.tokens.alice);
      expect(r.cookie.toLowerCase()).toMatch(/;\s*secure/);
    } finally {
      await server.close();
    }
  });
});
