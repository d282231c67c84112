/**
 * The lean SSE path of `user.onChange` (src/live-sse.ts) against tRPC's own handler.
 *
 * tRPC's handler still serves the same procedure when the path is percent-encoded
 * (`/trpc/user%2EonChange`: tRPC decodes it, the lean path's exact match does not take it), so
 * every scenario here runs through both on one real server and compares what a client receives:
 * status, headers and the bytes of the event stream (without `ping` frames, which depend on
 * timing). The official client (`httpSubscriptionLink`) must see the same errors through both;
 * a client that leaves gives its subscription lease back; 500 subscribers all get one change
 * exactly once.
 */
import { request, type IncomingMessage } from 'node:http';
import { countSubscriptions } from '@namecard/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClient,
  demoClient,
  describeRealRedis,
  startTestServer,
  type TestServer,
} from './helpers';
import { liveClientFor, liveRedis, subscribeLive, waitFor } from './live-helpers';

/** The real-Redis database of this file (the other live files use 7 and 10 to 14). */
const LEAN_SSE_DB = 15;
const LEAN = '/trpc/user.onChange';
const TRPC = '/trpc/user%2EonChange';

interface RawStream {
  status(): number;
  /** Response headers as received, lower-cased names, without `date`. */
  headers(): string[][];
  body(): string;
  /** The body without keep-alive `ping` frames. */
  frames(): string;
  until(predicate: (body: string) => boolean, what: string, timeoutMs?: number): Promise<void>;
  ended: Promise<void>;
  close(): void;
}

const PING = 'event: ping\ndata: \n\n\n';

/** A GET as an EventSource sends it, on a connection of its own; collects the whole response. */
function rawGet(
  server: TestServer,
  path: string,
  options: { token?: string; input?: unknown; query?: string; headers?: Record<string, string> },
): Promise<RawStream> {
  const params = new URLSearchParams();
  if (options.input !== undefined) params.set('input', JSON.stringify(options.input));
  const query = [params.toString(), options.query ?? ''].filter(Boolean).join('&');
  const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}${query ? `?${query}` : ''}`, {
      headers,
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('error', () => undefined);
      req.on('error', () => undefined);
      const ended = new Promise<void>((done) => res.once('close', done));
      const headerPairs: string[][] = [];
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const name = res.rawHeaders[i]!.toLowerCase();
        if (name !== 'date') headerPairs.push([name, res.rawHeaders[i + 1]!]);
      }
      resolve({
        status: () => res.statusCode ?? 0,
        headers: () => headerPairs,
        body: () => body,
        frames: () => body.split(PING).join(''),
        until: (predicate, what, timeoutMs = 10_000) =>
          waitFor(
            () => predicate(body),
            timeoutMs,
            () => `${what}; got ${JSON.stringify(body)}`,
          ),
        ended,
        close: () => req.destroy(),
      });
    });
    req.end();
  });
}

/** Opens the same request through tRPC's handler and through the lean path. */
async function both(
  server: TestServer,
  options: Parameters<typeof rawGet>[2],
): Promise<[RawStream, RawStream]> {
  return Promise.all([rawGet(server, TRPC, options), rawGet(server, LEAN, options)]);
}

/** Both responses end by themselves; then status, headers and frames must be the same. */
async function expectSameAnswer(trpc: RawStream, lean: RawStream) {
  await Promise.all([trpc.ended, lean.ended]);
  expect(lean.status()).toBe(trpc.status());
  expect(lean.headers()).toEqual(trpc.headers());
  expect(lean.frames()).toBe(trpc.frames());
}

/**
 * Clients that leave as soon as the stream opens (`connected`), while the procedure is still
 * taking its lease and reading the store: their first item meets a closed socket, and nothing
 * may be left behind (no lease, no feed listener).
 */
async function leaveWhileStarting(server: TestServer) {
  const token = server.tokens.bob;
  for (let i = 0; i < 10; i++) {
    const s = await rawGet(server, LEAN, { token, input: {} });
    await s.until((body) => body.includes('event: connected'), 'connected');
    s.close();
  }
  await waitFor(
    async () => (await countSubscriptions(server.db, 'bob')) === 0,
    10_000,
    'no lease left behind',
  );
  await waitFor(() => server.feed.stats.listeners === 0, 10_000, 'no listener left behind');
}

const hasReady = (body: string) => body.includes('"type":"ready"');

describe('user.onChange over the lean SSE path, next to tRPC’s own handler', () => {
  let server: TestServer;
  let daveToken: string;
  beforeAll(async () => {
    server = await startTestServer({ subscriptionsPerAccount: 3, shutdownGraceMs: 2000 });
    // dave is nobody's friend: alice sees his changes without email and tel.
    daveToken = (
      await adminClient(server).admin.createAccount.mutate({
        account: 'dave',
        profile: { nick: 'Dave', email: 'dave@example.com', tel: '+1-555' },
      })
    ).token;
  });
  afterAll(() => server.close());

  it('answers a missing credential as tRPC does: connected, then UNAUTHORIZED', async () => {
    const [trpc, lean] = await both(server, { input: {} });
    await expectSameAnswer(trpc, lean);
    expect(lean.status()).toBe(200);
    expect(lean.headers()).toEqual(
      expect.arrayContaining([
        ['content-type', 'text/event-stream'],
        ['cache-control', 'no-cache, no-transform'],
      ]),
    );
    expect(lean.body()).toMatch(/^event: connected\ndata: \{.*\}\n\n\nevent: serialized-error\n/);
    expect(lean.body()).toContain('"code":"UNAUTHORIZED"');
  });

  it('answers bad input (fields, JSON, not an object) as tRPC does', async () => {
    const token = server.tokens.alice;
    for (const options of [
      { token, input: { accounts: ['no spaces allowed'], lastEventId: 'x' } },
      { token, input: { accounts: 'alice' } },
      { token, query: 'input=%7B' },
      { token, input: 5 },
    ]) {
      const [trpc, lean] = await both(server, options);
      await expectSameAnswer(trpc, lean);
      expect(lean.body()).toContain('"code":"BAD_REQUEST"');
    }
  });

  it('streams the same frames: ready, a friend’s change in full, a stranger’s without email/tel, return on shutdown', async () => {
    // Its own server: the scenario ends with the server shutting down.
    const own = await startTestServer({ shutdownGraceMs: 2000 });
    try {
      const dave = await adminClient(own).admin.createAccount.mutate({
        account: 'dave',
        profile: { email: 'dave@example.com' },
      });
      const [trpc, lean] = await both(own, {
        token: own.tokens.alice,
        input: { accounts: ['dave'] },
      });
      await Promise.all([trpc.until(hasReady, 'ready'), lean.until(hasReady, 'ready')]);
      await demoClient(own, 'bob').user.updateMyInfo.mutate({ sign: 'from bob' });
      const daveClient = liveClientFor(own.url, dave.token);
      await daveClient.user.updateMyInfo.mutate({ sign: 'from dave' });
      for (const s of [trpc, lean]) await s.until((b) => b.includes('from dave'), 'dave');
      await own.close();
      await expectSameAnswer(trpc, lean);
      const frames = lean.frames().split('\n\n\n');
      expect(frames[0]).toBe('event: connected\ndata: {"reconnectAfterInactivityMs":40000}');
      expect(frames[1]).toMatch(/^data: \{"type":"ready"\}\nid: n24_[0-9a-z_.]+$/);
      expect(frames[2]).toMatch(/^data: \{"type":"profile","account":"bob",.*"sign":"from bob"/);
      expect(frames[2]).toContain('"email":"bob@');
      expect(frames[3]).toMatch(/"account":"dave"/);
      expect(frames[3]).not.toContain('email');
      expect(frames.slice(4)).toEqual(['event: return\ndata: ', '']);
    } finally {
      await own.close();
    }
  });

  it('resumes from the Last-Event-ID header or the lastEventId / Last-Event-Id parameter as tRPC does', async () => {
    const dave = liveClientFor(server.url, daveToken);
    const first = await dave.user.updateMyInfo.mutate({ sign: 'resume 1' });
    await dave.user.updateMyInfo.mutate({ sign: 'resume 2' });
    // The id of the first change, as a subscriber would have seen it.
    const watcher = subscribeLive(server.url, {
      token: server.tokens.alice,
      accounts: ['dave'],
      lastEventId: '0',
    });
    const seen = await watcher.waitForProfile('dave', (p) => p.updateTime === first.updateTime);
    watcher.unsubscribe();
    const token = server.tokens.alice;
    for (const options of [
      { token, input: { accounts: ['dave'] }, headers: { 'last-event-id': seen.id } },
      { token, input: { accounts: ['dave'] }, query: `lastEventId=${seen.id}` },
      { token, query: `Last-Event-Id=${seen.id}` },
    ]) {
      const [trpc, lean] = await both(server, options);
      for (const s of [trpc, lean]) await s.until(hasReady, 'ready');
      trpc.close();
      lean.close();
      expect(lean.frames()).toBe(trpc.frames());
      expect(lean.headers()).toEqual(trpc.headers());
      if (options.input) {
        expect(lean.body()).toContain('resume 2');
        expect(lean.body()).not.toContain('resume 1');
      }
    }
    await waitFor(async () => (await countSubscriptions(server.db, 'alice')) === 0, 10_000);
  });

  it('refuses a subscription past the per-account limit as tRPC does (TOO_MANY_REQUESTS)', async () => {
    const token = server.tokens.carol;
    const held = await Promise.all([1, 2, 3].map(() => rawGet(server, LEAN, { token, input: {} })));
    for (const s of held) await s.until(hasReady, 'ready');
    const [trpc, lean] = await both(server, { token, input: {} });
    await expectSameAnswer(trpc, lean);
    expect(lean.body()).toContain('"code":"TOO_MANY_REQUESTS"');
    for (const s of held) s.close();
    await waitFor(async () => (await countSubscriptions(server.db, 'carol')) === 0, 10_000);
  });

  it('gives the official client the same errors through both paths', async () => {
    type Client = ReturnType<typeof liveClientFor>;
    const firstError = (client: Client, input: { accounts?: string[] }) =>
      new Promise<{ message: string; data: unknown }>((resolve) => {
        const sub = client.user.onChange.subscribe(input, {
          onError: (error) => {
            sub.unsubscribe();
            resolve({ message: error.message, data: error.data });
          },
        });
      });
    const viaTrpc = (token?: string) =>
      liveClientFor(server.url, token, { rewritePath: (url) => url.replace(LEAN, TRPC) });
    const cases: [string | undefined, { accounts?: string[] }, object][] = [
      [undefined, {}, { code: 'UNAUTHORIZED', httpStatus: 401 }],
      [
        server.tokens.alice,
        { accounts: ['not valid!'] },
        { code: 'BAD_REQUEST', fieldErrors: { 'accounts.0': [expect.any(String)] } },
      ],
    ];
    for (const [token, input, expected] of cases) {
      const lean = await firstError(liveClientFor(server.url, token), input);
      const trpc = await firstError(viaTrpc(token), input);
      expect(lean).toEqual(trpc);
      expect(lean.data).toMatchObject({ ...expected, path: 'user.onChange' });
    }
  });

  it('leaves no lease behind for a client that left while its subscription was starting', () =>
    leaveWhileStarting(server));

  it('gives the lease back when the client leaves', async () => {
    const token = server.tokens.bob;
    const s = await rawGet(server, LEAN, { token, input: {} });
    await s.until(hasReady, 'ready');
    expect(await countSubscriptions(server.db, 'bob')).toBe(1);
    s.close();
    await waitFor(
      async () => (await countSubscriptions(server.db, 'bob')) === 0,
      10_000,
      'the lease to be released',
    );
    expect(server.feed.stats.listeners).toBe(0);
  });
});

describe('many subscribers on one server', () => {
  const SUBSCRIBERS = 500;
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      subscriptionsPerAccount: SUBSCRIBERS,
      shutdownGraceMs: 2000,
    });
  });
  afterAll(() => server.close());

  it(`delivers changes to ${SUBSCRIBERS} subscribers exactly once each, in order`, async () => {
    const streams: RawStream[] = [];
    for (let i = 0; i < SUBSCRIBERS; i += 50) {
      const batch = Array.from({ length: Math.min(50, SUBSCRIBERS - i) }, () =>
        rawGet(server, LEAN, { token: server.tokens.alice, input: { accounts: ['bob'] } }),
      );
      for (const s of await Promise.all(batch)) {
        await s.until(hasReady, 'ready', 30_000);
        streams.push(s);
      }
    }
    // Three changes at once: the feed hands each out in slices (500 listeners), and every
    // subscriber must still get all three, once each, in the same order and the same bytes.
    const bob = demoClient(server, 'bob');
    const signs = ['to all of you 1', 'to all of you 2', 'to all of you 3'];
    await Promise.all(signs.map((sign) => bob.user.updateMyInfo.mutate({ sign })));
    const received = (s: RawStream) => signs.every((sign) => s.body().includes(sign));
    await waitFor(
      () => streams.every(received),
      60_000,
      () => `every subscriber to get the changes (${streams.filter(received).length} did)`,
    );
    // A little longer: nothing else (no second copy) may follow.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const frames = new Set<string>();
    for (const s of streams) {
      const got = [...s.body().matchAll(/"sign":"(to all of you \d)"/g)].map((m) => m[1]);
      expect([...got].sort()).toEqual(signs);
      frames.add(s.frames().split('\n\n\n').slice(2, 5).join('|'));
    }
    // One change, one frame, and the same order: every subscriber got the very same bytes.
    expect(frames.size).toBe(1);
    // Everyone leaves while one more change is being handed out: every lease and listener is
    // still given back (none waits forever on a socket that is gone).
    const leaving = bob.user.updateMyInfo.mutate({ sign: 'as you leave' });
    await waitFor(() => streams.some((s) => s.body().includes('as you leave')), 30_000);
    for (const s of streams) s.close();
    await leaving;
    await waitFor(
      async () => (await countSubscriptions(server.db, 'alice')) === 0,
      30_000,
      'every lease to be released',
    );
    await waitFor(() => server.feed.stats.listeners === 0, 30_000, 'every listener to be gone');
  });
});

describeRealRedis('the lean SSE path on Redis', await liveRedis(LEAN_SSE_DB), (url) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ redisUrl: url, shutdownGraceMs: 2000 });
  });
  afterAll(() => server.close());

  it('leaves no lease behind for a client that left while its subscription was starting', () =>
    leaveWhileStarting(server));
});
