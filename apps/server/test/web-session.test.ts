/**
 * What the web app relies on from the API: one-click demo sign-in in memory mode only, and the
 * session cookie refused on any request that a page of another site could make (a form, a
 * text/plain fetch, a multipart POST, a JSON call from a foreign origin). Raw HTTP, as a browser
 * or an attacker's page would send it, against real servers on free ports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClient,
  clientFor,
  describeRealRedis,
  expectTRPCError,
  realRedisUrl,
  startTestServer,
  useTestServer,
  type TestServer,
} from './helpers';

const WEB = 'http://web.example:3000';
const server = useTestServer({ webOrigins: [WEB] });
const S = () => server.current;

/** Signs alice in through the demo procedure; returns the `nc_session=...` pair. */
async function demoSession(url: string, account = 'alice'): Promise<string> {
  const res = await fetch(`${url}/trpc/auth.signInDemo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ account }),
  });
  expect(res.status).toBe(200);
  const cookie = res.headers.getSetCookie()[0] ?? '';
  expect(cookie.toLowerCase()).toContain('httponly');
  return cookie.split(';')[0]!;
}

async function whoAmI(url: string, cookie: string): Promise<number> {
  return (await fetch(`${url}/trpc/user.getMyInfo`, { headers: { cookie } })).status;
}

async function nickOf(account: string): Promise<string | undefined> {
  const [p] = await adminClient(S()).admin.getUsers.query({ accounts: [account] });
  return p?.nick;
}

describe('demo sign-in (memory mode)', () => {
  it('lists the demo accounts without tokens and signs one in with an HttpOnly session', async () => {
    const anonymous = clientFor(S().url);
    const demo = await anonymous.auth.demoAccounts.query();
    expect(demo.map((d) => d.account)).toEqual(['alice', 'bob', 'carol']);
    expect(JSON.stringify(demo)).not.toContain(S().tokens.alice);
    const cookie = await demoSession(S().url, 'bob');
    const me = await fetch(`${S().url}/trpc/user.getMyInfo`, { headers: { cookie } });
    expect(
      ((await me.json()) as { result: { data: { account: string } } }).result.data.account,
    ).toBe('bob');
  });

  it('refuses accounts that are not demo accounts', async () => {
    await adminClient(S()).admin.createAccount.mutate({ account: 'mallory' });
    await expectTRPCError(
      clientFor(S().url).auth.signInDemo.mutate({ account: 'mallory' }),
      'FORBIDDEN',
    );
    await expectTRPCError(
      clientFor(S().url).auth.signInDemo.mutate({ account: 'bad account!' }),
      'BAD_REQUEST',
      ['account'],
    );
  });
});

describe('the session cookie and cross-site requests', () => {
  let cookie: string;
  beforeAll(async () => {
    cookie = await demoSession(S().url);
  });

  const post = (path: string, headers: Record<string, string>, body: string | FormData) =>
    fetch(`${S().url}/trpc/${path}`, { method: 'POST', headers: { cookie, ...headers }, body });

  it('a cross-site form POST to auth.signOut does not sign the user out', async () => {
    const form = new FormData();
    form.set('x', '1');
    for (const [headers, body] of [
      [{ origin: 'https://evil.example' }, form],
      [
        { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
        'x=1',
      ],
      [{ origin: 'https://evil.example', 'content-type': 'text/plain' }, '{}'],
    ] as const) {
      const res = await post('auth.signOut', headers, body);
      expect(res.status).toBe(403);
      const error = ((await res.json()) as { error: { data: { code: string } } }).error;
      expect(error.data.code).toBe('FORBIDDEN');
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    expect(await whoAmI(S().url, cookie)).toBe(200);
  });

  it('a cross-site text/plain or JSON write with the cookie changes nothing', async () => {
    const before = await nickOf('alice');
    const patch = JSON.stringify({ nick: 'pwned' });
    const attempts: Record<string, string>[] = [
      { 'content-type': 'text/plain' },
      { 'content-type': 'text/plain', origin: WEB },
      { 'content-type': 'application/json', origin: 'https://evil.example' },
      { 'content-type': 'application/json', origin: 'null' },
      {
        'content-type': 'application/json',
        origin: 'http://localhost:3000',
        'sec-fetch-site': 'cross-site',
      },
    ];
    for (const headers of attempts) {
      const res = await post('user.updateMyInfo', headers, patch);
      expect(res.status, JSON.stringify(headers)).toBe(403);
    }
    expect(await nickOf('alice')).toBe(before);
  });

  it('the web app itself may write: a configured origin, or the host its proxy was addressed as', async () => {
    const ok: Record<string, string>[] = [
      { 'content-type': 'application/json', origin: WEB },
      {
        'content-type': 'application/json; charset=utf-8',
        origin: 'http://127.0.0.1:3999',
        'x-forwarded-host': '127.0.0.1:3999',
        'sec-fetch-site': 'same-origin',
      },
      // No Origin: not a browser (browsers send Origin on every POST).
      { 'content-type': 'application/json' },
    ];
    for (const [i, headers] of ok.entries()) {
      const res = await post('user.updateMyInfo', headers, JSON.stringify({ sign: `ok ${i}` }));
      expect(res.status, JSON.stringify(headers)).toBe(200);
    }
  });

  it('token callers are not affected, whatever their origin', async () => {
    const res = await fetch(`${S().url}/trpc/user.updateMyInfo`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${S().tokens.carol}`,
        'content-type': 'application/json',
        origin: 'https://other-service.example',
      },
      body: JSON.stringify({ sign: 'from a service' }),
    });
    expect(res.status).toBe(200);
  });
});

const redis = await realRedisUrl();
describeRealRedis('demo sign-in in Redis mode', redis, (url) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ redisUrl: url });
  });
  afterAll(async () => {
    await s.close();
  });

  it('offers no demo accounts and refuses demo sign-in', async () => {
    expect(await clientFor(s.url).auth.demoAccounts.query()).toEqual([]);
    await expectTRPCError(
      clientFor(s.url).auth.signInDemo.mutate({ account: 'alice' }),
      'FORBIDDEN',
    );
  });
});
