/**
 * The JSON call path (src/json-calls.ts) against tRPC's own standalone adapter: two servers on
 * one data set, one answering plain queries and mutations on the JSON path (the default), the
 * other sending everything through tRPC's adapter (`jsonCallsPath: false`), must give the same
 * answers (status, headers that matter, body) to the same requests: successes, batches, mixed
 * batches (207), every kind of error, and what the path leaves to tRPC. A server with the JSON
 * path alone shows the official clients' calls really take it.
 */
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { appRouter, createTRPCContext, type AppRouter } from '@namecard/api';
import { createRateLimits } from '@namecard/db';
import { createTRPCClient, httpBatchLink, httpLink, type TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonCallHandler } from '../src/json-calls';
import { expectTRPCError, startTestServer, type TestServer } from './helpers';

let viaPath: TestServer;
let viaAdapter: TestServer;

beforeAll(async () => {
  viaPath = await startTestServer({ settings: { maxBatch: 5 } });
  viaAdapter = await startTestServer({
    shareWith: viaPath,
    settings: { maxBatch: 5, jsonCallsPath: false },
  });
});
afterAll(async () => {
  await viaAdapter?.close();
  await viaPath?.close();
});

interface Probe {
  name: string;
  method?: 'GET' | 'POST';
  path: string;
  body?: string;
  headers?: Record<string, string>;
  as?: 'alice' | 'admin' | 'nobody' | 'wrong';
}

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));

const probes: Probe[] = [
  { name: 'a query', path: 'user.getMyInfo' },
  { name: 'a query with input', path: `user.getUser?input=${q({ account: 'bob' })}` },
  { name: 'NOT_FOUND from a procedure', path: `user.getUser?input=${q({ account: 'nobody' })}` },
  { name: 'a bad field', path: `user.getUser?input=${q({ account: 'bad id!' })}` },
  { name: 'input that is not JSON', path: 'user.getUser?input=%7Bnope' },
  { name: 'no input where one is needed', path: 'user.getUser' },
  { name: 'an empty input parameter', path: 'user.getUser?input=' },
  { name: 'no credentials', path: 'user.getMyInfo', as: 'nobody' },
  { name: 'a wrong token', path: 'user.getMyInfo', as: 'wrong' },
  { name: 'a public query', path: 'auth.demoAccounts', as: 'nobody' },
  {
    name: 'a batch of queries',
    path: `user.getMyInfo,user.getUser,friend.list?batch=1&input=${q({ 1: { account: 'bob' } })}`,
  },
  {
    name: 'a batch with a failing call (207)',
    path: `user.getUser,user.getUser?batch=1&input=${q({ 0: { account: 'bob' }, 1: { account: 'x!' } })}`,
  },
  {
    name: 'a batch whose calls all fail the same way',
    path: `user.getUser,user.getUser?batch=1&input=${q({ 0: { account: 'x!' }, 1: { account: 'y!' } })}`,
  },
  { name: 'a batch input that is not an object', path: `user.getUser?batch=1&input=${q([1])}` },
  { name: 'a batch without input', path: 'user.getMyInfo,friend.list?batch=1' },
  {
    name: 'a batch over the limit (left to tRPC)',
    path: `${Array(6).fill('user.getMyInfo').join(',')}?batch=1`,
  },
  { name: 'an unknown procedure (left to tRPC)', path: 'user.nope' },
  { name: 'a batch naming an unknown procedure', path: 'user.getMyInfo,user.nope?batch=1' },
  { name: 'a query by POST (left to tRPC)', method: 'POST', path: 'user.getMyInfo', body: '{}' },
  { name: 'a mutation by GET (left to tRPC)', path: 'user.updateMyInfo' },
  { name: 'a subscription path by POST', method: 'POST', path: 'user.onChange', body: '{}' },
  {
    name: 'a streamed batch (left to tRPC)',
    path: 'user.getMyInfo?batch=1',
    headers: { 'trpc-accept': 'application/jsonl' },
  },
  {
    name: 'connectionParams (left to tRPC)',
    path: `user.getMyInfo?connectionParams=1&input=${q({})}`,
  },
  {
    name: 'a GET with a form content type (left to tRPC)',
    path: 'user.getMyInfo',
    headers: { 'content-type': 'multipart/form-data; boundary=x' },
  },
  {
    name: 'a GET with a JSON content type',
    path: 'user.getMyInfo',
    headers: { 'content-type': 'application/json' },
  },
  { name: 'an empty patch', method: 'POST', path: 'user.updateMyInfo', body: '{}' },
  {
    name: 'an invalid patch',
    method: 'POST',
    path: 'user.updateMyInfo',
    body: JSON.stringify({ nick: 'x'.repeat(65), gender: 'robot', extra: 1 }),
  },
  { name: 'a body that is not JSON', method: 'POST', path: 'user.updateMyInfo', body: '{nope' },
  { name: 'an empty body', method: 'POST', path: 'user.updateMyInfo', body: '' },
  {
    name: 'JSON with a charset',
    method: 'POST',
    path: 'user.updateMyInfo',
    body: '{}',
    headers: { 'content-type': 'application/json; charset=utf-8' },
  },
  {
    name: 'a batch of mutations',
    method: 'POST',
    path: 'friend.remove,friend.add?batch=1',
    body: JSON.stringify({ 0: { account: 'nobody' }, 1: { account: 'bad id!' } }),
  },
  {
    name: 'a mutation batch body that is not an object',
    method: 'POST',
    path: 'friend.remove?batch=1',
    body: '"x"',
  },
  {
    name: 'a mutation without credentials',
    method: 'POST',
    path: 'user.updateMyInfo',
    body: '{}',
    as: 'nobody',
  },
  {
    name: 'an admin query',
    path: `admin.getUsers?input=${q({ accounts: ['alice', 'bob', 'nobody'] })}`,
    as: 'admin',
  },
  {
    name: 'an admin query with a user token',
    path: `admin.getUsers?input=${q({ accounts: ['alice'] })}`,
  },
  {
    name: 'a percent-encoded path',
    path: `user.get%55ser?input=${q({ account: 'bob' })}`,
  },
  { name: 'a malformed percent-encoding', path: 'user.getMyInfo%E0%A4%A' },
];

async function send(server: TestServer, probe: Probe) {
  const headers: Record<string, string> = { ...probe.headers };
  const as = probe.as ?? 'alice';
  if (as === 'alice') headers.authorization = `Bearer ${server.tokens.alice}`;
  if (as === 'wrong') headers.authorization = 'Bearer not-a-token';
  if (as === 'admin') headers['x-namecard-admin'] = server.adminSecret;
  if (probe.method === 'POST') headers['content-type'] ??= 'application/json';
  const response = await fetch(`${server.url}/trpc/${probe.path}`, {
    method: probe.method ?? 'GET',
    headers,
    ...(probe.body !== undefined ? { body: probe.body } : {}),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a streamed answer): compared as text.
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    vary: response.headers.get('vary'),
    retryAfter: response.headers.get('retry-after'),
    body,
  };
}

describe('the JSON call path answers exactly as tRPC’s adapter', () => {
  for (const probe of probes) {
    it(probe.name, async () => {
      const fast = await send(viaPath, probe);
      const adapter = await send(viaAdapter, probe);
      expect(fast).toEqual(adapter);
    });
  }

  it('a write through either is the same write', async () => {
    const a = await send(viaPath, {
      name: 'write',
      method: 'POST',
      path: 'user.updateMyInfo',
      body: JSON.stringify({ sign: 'via the path' }),
    });
    const b = await send(viaAdapter, {
      name: 'write',
      method: 'POST',
      path: 'user.updateMyInfo',
      body: JSON.stringify({ sign: 'via the adapter' }),
    });
    expect(a.status).toBe(200);
    const shape = (r: typeof a) => {
      const { sign, updateTime, ...rest } = (
        r.body as { result: { data: Record<string, unknown> } }
      ).result.data;
      return { rest, sign: typeof sign, updateTime: typeof updateTime };
    };
    expect(shape(a)).toEqual(shape(b));
    expect(
      (b.body as { result: { data: { updateTime: number } } }).result.data.updateTime,
    ).toBeGreaterThan(
      (a.body as { result: { data: { updateTime: number } } }).result.data.updateTime,
    );
  });

  it('sets the session cookie as the adapter does', async () => {
    const signIn = async (server: TestServer) => {
      const response = await fetch(`${server.url}/trpc/auth.signIn`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ account: 'bob', token: server.tokens.bob }),
      });
      const cookie = response.headers.get('set-cookie') ?? '';
      return {
        status: response.status,
        body: await response.json(),
        attrs: cookie.split(';').slice(1),
      };
    };
    expect(await signIn(viaPath)).toEqual(await signIn(viaAdapter));
  });
});

describe('the official clients on the JSON path alone', () => {
  let server: Server;
  let url: string;
  let fellThrough: string[];

  beforeAll(async () => {
    fellThrough = [];
    const deps = {
      db: viaPath.db,
      feed: viaPath.feed,
      adminSecret: viaPath.adminSecret,
      rateLimits: createRateLimits(viaPath.db),
    };
    const handle = createJsonCallHandler({
      router: appRouter,
      basePath: '/trpc/',
      maxBatchSize: 50,
      createContext: (req, res) =>
        createTRPCContext({
          deps,
          credentials: { authorization: req.headers.authorization },
          setCookie: (cookie) => res.appendHeader('Set-Cookie', cookie),
        }),
      onError: () => undefined,
    });
    // Anything the path leaves alone is answered 418, which no tRPC client takes for an answer.
    server = createServer((req, res) => {
      if (handle(req, res)) return;
      fellThrough.push(req.url ?? '');
      res.writeHead(418).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/trpc`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const headers = () => ({ authorization: `Bearer ${viaPath.tokens.alice}` });

  it('httpLink: queries, mutations and their errors', async () => {
    const client = createTRPCClient<AppRouter>({ links: [httpLink({ url, headers })] });
    expect((await client.user.getMyInfo.query()).account).toBe('alice');
    const saved = await client.user.updateMyInfo.mutate({ sign: 'on the JSON path' });
    expect(saved.sign).toBe('on the JSON path');
    await expectTRPCError(client.user.getUser.query({ account: 'nobody' }), 'NOT_FOUND');
    await expectTRPCError(
      client.user.updateMyInfo.mutate({ nick: 'x'.repeat(65) }),
      'BAD_REQUEST',
      ['nick'],
    );
    expect(fellThrough).toEqual([]);
  });

  it('httpBatchLink: a batch of queries, one failing, and a batch of mutations', async () => {
    const client = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url, headers })] });
    const [me, bob, missing] = await Promise.allSettled([
      client.user.getMyInfo.query(),
      client.user.getUser.query({ account: 'bob' }),
      client.user.getUser.query({ account: 'nobody' }),
    ]);
    expect(me.status === 'fulfilled' && me.value.account).toBe('alice');
    expect(bob.status === 'fulfilled' && bob.value.account).toBe('bob');
    expect(
      missing.status === 'rejected' && (missing.reason as TRPCClientError<AppRouter>).data?.code,
    ).toBe('NOT_FOUND');
    const [added, removed] = await Promise.all([
      client.friend.add.mutate({ account: 'carol' }),
      client.friend.remove.mutate({ account: 'nobody' }),
    ]);
    expect(added.account).toBe('carol');
    expect(removed.account).toBe('nobody');
    expect(fellThrough).toEqual([]);
  });
});
