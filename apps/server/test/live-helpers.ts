/**
 * Helpers for the live-subscription tests (test/live*.test.ts): a subscription client that
 * collects what `user.onChange` delivers and waits for it with bounded timeouts, a raw SSE
 * connection that never reads, a TCP proxy whose connections can be cut, and a redis-server
 * process of the test's own (spare port, AOF in a temporary directory) that can be restarted.
 *
 * Every wait here is bounded and fails with a message saying what was awaited and what was seen.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type AppRouter } from '@namecard/api';
import { compareCursors, type Profile } from '@namecard/db';
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { closeDb, createDb, type Db } from '@namecard/db';
import { redisServerAvailable, spareTcpPort, urlWithDb } from '@namecard/db/testing';
import {
  realRedisUrl,
  startTestServer,
  type RealRedis,
  type TestServer,
  type TestServerOptions,
} from './helpers';

// ---------------------------------------------------------------------------------------------
// Waiting

/** Polls `predicate` (every few ms) until it holds; throws after `timeoutMs` with `what()`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string | (() => string) = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

let gcFunction: (() => void) | undefined;

/** A full garbage collection (exposed at run time, so no `--expose-gc` is needed). */
export function forceGc(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
}

/** `heapUsed` after a full garbage collection. */
export function heapAfterGc(): number {
  forceGc();
  return process.memoryUsage().heapUsed;
}

// ---------------------------------------------------------------------------------------------
// Real Redis databases of the live tests

/**
 * A real Redis database for one live test file: the server of NAMECARD_TEST_REDIS_URL (else the
 * redis-server this test run started) with database `db` (the other test files use 8 and 9; each live file its own,
 * so files running in parallel never flush each other's data). Use with `describeRealRedis()`:
 * skipped loudly when unreachable, failing under CI=true.
 */
export async function liveRedis(db: number): Promise<RealRedis> {
  const base = await realRedisUrl();
  return { ...base, url: urlWithDb(base.url, db) };
}

// ---------------------------------------------------------------------------------------------
// Subscription client

export type LiveData =
  { type: 'ready' } | { type: 'resync' } | { type: 'profile'; account: string; profile: Profile };

/** One item as `onData` delivers it: the tracked event id and the item. */
export interface LiveEnvelope {
  id: string;
  data: LiveData;
}

export interface SubscribeOptions {
  /** A user's token (omit to subscribe without one). */
  token?: string;
  accounts?: string[];
  lastEventId?: string | null;
  /** See `LiveClientOptions`. */
  subscriptionUrl?: string;
  retryMs?: number;
}

/** A live `user.onChange` subscription whose items are collected in `items`. */
export interface LiveSubscription {
  readonly items: LiveEnvelope[];
  readonly errors: unknown[];
  /** Connection states seen ('connecting' | 'pending' | 'idle'), with their errors. */
  readonly states: { state: string; error: unknown }[];
  /** Times the server's `connected` event came (1 + reconnects). */
  readonly starts: number;
  /** The id of the last item received ('' before any). */
  lastId(): string;
  /** Profile items, optionally of one account. */
  profiles(account?: string): { id: string; account: string; profile: Profile }[];
  /** Waits until `predicate(items)` holds. */
  waitFor(
    predicate: (items: LiveEnvelope[]) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<void>;
  /** Waits for the `n`th `ready` item (1 = the first) and returns it. */
  waitForReady(n?: number, timeoutMs?: number): Promise<LiveEnvelope>;
  /** Waits for a profile item of `account` matching `match` and returns it. */
  waitForProfile(
    account: string,
    match: (profile: Profile) => boolean,
    timeoutMs?: number,
  ): Promise<{ id: string; account: string; profile: Profile }>;
  /** Waits for an error (`onError`). */
  waitForError(timeoutMs?: number): Promise<unknown>;
  unsubscribe(): void;
}

export interface LiveClientOptions {
  /** Base URL the subscriptions connect to (default: the server's; e.g. a proxy in front of it). */
  subscriptionUrl?: string;
  /**
   * The EventSource's reconnection delay, in ms (its default is 3 s): each SSE response is
   * prefixed with a `retry:` field, as if the server had sent one.
   */
  retryMs?: number;
  /** Rewrites each subscription request's URL (e.g. to reach tRPC's own handler). */
  rewritePath?: (url: string) => string;
}

/** A tRPC client whose subscriptions go over SSE (the `eventsource` package) with the Bearer header. */
export function liveClientFor(url: string, token?: string, options: LiveClientOptions = {}) {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const { retryMs, subscriptionUrl = url, rewritePath = (u: string) => u } = options;
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${subscriptionUrl}/trpc`,
          EventSource,
          eventSourceOptions: () => ({
            fetch: async (input, init) => {
              const target = rewritePath(input instanceof Request ? input.url : String(input));
              const response = await fetch(target, {
                ...init,
                headers: { ...(init?.headers as Record<string, string>), ...headers },
              });
              if (retryMs === undefined || !response.body) return response;
              const retry = new TextEncoder().encode(`retry: ${retryMs}\n\n`);
              const body = response.body.pipeThrough(
                new TransformStream<Uint8Array, Uint8Array>({
                  start: (controller) => controller.enqueue(retry),
                }),
              );
              return new Response(body, {
                status: response.status,
                statusText: response.statusText,
                headers: response.headers,
              });
            },
          }),
        }),
        false: httpLink({ url: `${url}/trpc`, headers }),
      }),
    ],
  });
}

const describeItem = (item: LiveEnvelope) =>
  item.data.type === 'profile'
    ? `${item.id}:${item.data.account}:${item.data.profile.sign}`
    : `${item.id}:${item.data.type}`;

/** `id:account:sign` / `id:ready` of each item, for failure messages. */
export const describeItems = (items: readonly LiveEnvelope[]) =>
  `[${items.map(describeItem).join(', ')}]`;

/**
 * Every profile item's id is greater than the one before it (so none came twice or out of
 * order); `ready` and `resync` carry the newest id, which the last replayed event may share.
 */
export function expectStrictlyIncreasingIds(items: readonly LiveEnvelope[]): void {
  for (let i = 1; i < items.length; i++) {
    // Cursors: a profile item is ahead of the one before in its partition and behind in none.
    const order = compareCursors(items[i]!.id, items[i - 1]!.id);
    if (items[i]!.data.type === 'profile' ? order !== 1 : !(order >= 0)) {
      throw new Error(
        `item ${i} (id ${items[i]!.id}) does not follow id ${items[i - 1]!.id}: ${describeItems(items)}`,
      );
    }
  }
}

/** Subscribes to `user.onChange` on `url` and collects what arrives. */
export function subscribeLive(url: string, options: SubscribeOptions = {}): LiveSubscription {
  const items: LiveEnvelope[] = [];
  const errors: unknown[] = [];
  const states: { state: string; error: unknown }[] = [];
  let starts = 0;
  const client = liveClientFor(url, options.token, {
    ...(options.subscriptionUrl ? { subscriptionUrl: options.subscriptionUrl } : {}),
    ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
  });
  const input: { accounts?: string[]; lastEventId?: string | null } = {};
  if (options.accounts) input.accounts = options.accounts;
  if (options.lastEventId !== undefined) input.lastEventId = options.lastEventId;
  const subscription = client.user.onChange.subscribe(input, {
    onData: (envelope) => items.push(envelope),
    onError: (error) => errors.push(error),
    onStarted: () => starts++,
    onConnectionStateChange: (state) => states.push({ state: state.state, error: state.error }),
  });
  const seen = () =>
    `; got ${describeItems(items)}${errors.length ? `, errors ${errors.map(String).join(' | ')}` : ''}`;

  const live: LiveSubscription = {
    items,
    errors,
    states,
    get starts() {
      return starts;
    },
    lastId: () => items[items.length - 1]?.id ?? '',
    profiles: (account) =>
      items.flatMap((i) =>
        i.data.type === 'profile' && (account === undefined || i.data.account === account)
          ? [{ id: i.id, account: i.data.account, profile: i.data.profile }]
          : [],
      ),
    async waitFor(predicate, timeoutMs = 5000, what = 'items') {
      await waitFor(
        () => predicate(items),
        timeoutMs,
        () => `${what}${seen()}`,
      );
    },
    async waitForReady(n = 1, timeoutMs = 5000) {
      const readies = () => items.filter((i) => i.data.type === 'ready');
      await waitFor(
        () => readies().length >= n,
        timeoutMs,
        () => `ready #${n}${seen()}`,
      );
      return readies()[n - 1]!;
    },
    async waitForProfile(account, match, timeoutMs = 5000) {
      const find = () => live.profiles(account).find((p) => match(p.profile));
      await waitFor(
        () => find() !== undefined,
        timeoutMs,
        () => `a matching profile of ${account}${seen()}`,
      );
      return find()!;
    },
    async waitForError(timeoutMs = 5000) {
      await waitFor(
        () => errors.length > 0,
        timeoutMs,
        () => `an error${seen()}`,
      );
      return errors[0];
    },
    unsubscribe: () => subscription.unsubscribe(),
  };
  return live;
}

// ---------------------------------------------------------------------------------------------
// Raw SSE connection (a subscriber that stops reading)

export interface RawSse {
  /** The SSE text read so far. */
  text(): string;
  /** Ids of the SSE events read so far (complete lines). */
  ids(): string[];
  /** Stops reading: the response is paused, so the socket's buffers fill up and stay full. */
  pause(): void;
  /** Reads again. */
  resume(): void;
  /** Resolves when the response is over (ended, or cut) and the socket closed. */
  closed: Promise<void>;
  isClosed(): boolean;
  /** Whether the whole response arrived (false when the connection was cut in the middle). */
  complete(): boolean;
  destroy(): void;
}

/**
 * Opens `GET ${url}/trpc/user.onChange?input=...` as an EventSource would (Bearer token,
 * `Accept: text/event-stream`) and resolves once the response headers are in.
 */
export function openRawSse(url: string, token: string, input: unknown): Promise<RawSse> {
  const target = new URL(`${url}/trpc/user.onChange`);
  target.searchParams.set('input', JSON.stringify(input));
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(target, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    req.on('error', reject);
    req.on('response', (response: IncomingMessage) => {
      if (response.statusCode !== 200) {
        reject(new Error(`raw SSE: HTTP ${response.statusCode}`));
        response.resume();
        return;
      }
      req.off('error', reject);
      req.on('error', () => undefined);
      response.on('error', () => undefined);
      let text = '';
      let closed = false;
      let complete = false;
      const closedPromise = new Promise<void>((done) =>
        response.once('close', () => {
          complete = response.complete;
          closed = true;
          done();
        }),
      );
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      resolve({
        text: () => text,
        // Complete `id:` lines only (a cut response may end in the middle of one).
        ids: () => [...text.matchAll(/^id: ?(.*)\n/gm)].map((m) => m[1]!).filter((id) => id !== ''),
        pause: () => response.pause(),
        resume: () => response.resume(),
        closed: closedPromise,
        isClosed: () => closed,
        complete: () => complete,
        destroy: () => req.destroy(),
      });
    });
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// TCP proxy (to cut a client's connections and watch it reconnect by itself)

export interface TcpProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Connections open right now. */
  open(): number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Destroys every open connection (both sides); new ones are still accepted. */
  dropAll(): void;
  /** While blocked, new connections are closed at once (the server looks unreachable). */
  setBlocked(blocked: boolean): void;
  /** Connections closed at once because the proxy was blocked. */
  rejected(): number;
  /**
   * While set, what the target answers is read and thrown away (requests still reach it): a
   * client sees its commands applied but never gets their replies.
   */
  setSwallowReplies(swallow: boolean): void;
  /** New connections go to this port from now on (as a failover moves an address). */
  setTarget(port: number): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;
  let rejected = 0;
  let blocked = false;
  let swallow = false;
  let target = targetPort;
  const server: Server = createServer((client) => {
    if (blocked) {
      rejected++;
      client.destroy();
      return;
    }
    accepted++;
    const upstream = connect(target, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (!swallow) client.write(chunk);
    });
  });
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
  const dropAll = () => {
    for (const [a, b] of [...pairs]) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    open: () => pairs.size,
    accepted: () => accepted,
    setBlocked: (value) => {
      blocked = value;
    },
    rejected: () => rejected,
    setSwallowReplies: (value) => {
      swallow = value;
    },
    setTarget: (port) => {
      target = port;
    },
    dropAll,
    close: () =>
      new Promise<void>((resolve) => {
        dropAll();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// A redis-server of the test's own

/**
 * The `describeRealRedis` target of a test file that starts redis-server processes of its own:
 * reachable when the binary is on PATH; without it the file is skipped with a warning naming
 * `what`, or fails under CI=true.
 */
export function redisServerBinary(what: string) {
  const binary = redisServerAvailable();
  const target = {
    url: 'a redis-server of its own',
    reachable: binary.available,
    reason: binary.available ? '' : binary.detail,
  };
  if (!target.reachable && process.env.CI !== 'true') {
    console.warn(
      `\n[namecard/server] WARNING: ${what} SKIPPED: no redis-server on PATH (${target.reason}).\n`,
    );
  }
  return target;
}

/** Whether a PING to 127.0.0.1:`port` is answered within `timeoutMs`. */
export async function redisAnswers(port: number, timeoutMs = 500): Promise<boolean> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

export interface RedisProcess {
  port: number;
  /** `redis://127.0.0.1:<port>/1` (not database 0, which the shared test helpers refuse to flush). */
  url: string;
  dir: string;
  pid(): number | undefined;
  running(): boolean;
  /** Starts (again) on the same port and directory and waits until it answers PING. */
  start(): Promise<void>;
  /** SIGTERM (Redis shuts down cleanly, AOF fsynced) and waits for the process to exit. */
  stop(): Promise<void>;
  /** Stops, then removes the data directory. */
  dispose(): Promise<void>;
  /** kill -9: no shutdown, nothing saved or fsynced on the way out; waits for the exit. */
  kill9(): Promise<void>;
}

export interface RedisServerOptions {
  timeoutMs?: number;
  /**
   * `always` (default): AOF fsynced on every write, so every acknowledged write survives a
   * restart; `everysec`: AOF fsynced once a second; `no`: no AOF, only the RDB snapshots the
   * test makes (SAVE): a restart after kill -9 goes back to the last one.
   */
  persistence?: 'always' | 'everysec' | 'no';
  /** More redis-server arguments (e.g. `['--replicaof', '127.0.0.1', '6400']`). */
  args?: string[];
}

/**
 * A redis-server on a spare port, with no automatic RDB saves and (by default) `appendonly yes`,
 * `appendfsync always`, its data in a new temporary directory: every acknowledged write survives
 * a restart.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisProcess> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const persistence = options.persistence ?? 'always';
  const port = await spareTcpPort();
  const dir = mkdtempSync(join(tmpdir(), 'namecard-live-redis-'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const start = async () => {
    if (child) throw new Error('redis-server is already running');
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        ...(persistence === 'no'
          ? ['--appendonly', 'no']
          : ['--appendonly', 'yes', '--appendfsync', persistence]),
        '--dir',
        dir,
        ...(options.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    proc.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
    proc.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
    exited = new Promise<void>((resolve) =>
      proc.once('exit', () => {
        if (child === proc) child = undefined;
        resolve();
      }),
    );
    const spawnError = new Promise<never>((_, reject) => proc.once('error', reject));
    await Promise.race([
      spawnError,
      waitFor(
        async () => {
          if (!child) throw new Error(`redis-server exited at start: ${output}`);
          return redisAnswers(port);
        },
        timeoutMs,
        () => `redis-server on port ${port} to answer PING (output: ${output})`,
      ),
    ]);
  };

  const stop = async () => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/1`,
    dir,
    pid: () => child?.pid,
    running: () => child !== undefined,
    start,
    stop,
    kill9: async () => {
      const proc = child;
      if (!proc) return;
      proc.kill('SIGKILL');
      await exited;
    },
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * For one describe block: a redis-server of its own, an API server on it and a store client on
 * its own connection (as another instance would write), started before the tests and stopped
 * (by PID) after them.
 */
export function useOwnRedisStack(
  options: RedisServerOptions & { server?: Omit<TestServerOptions, 'redisUrl'> } = {},
) {
  const state = {} as { redis: RedisProcess; server: TestServer; store: Db };
  beforeAll(async () => {
    state.redis = await startRedisServer(options);
    state.server = await startTestServer({
      redisUrl: state.redis.url,
      shutdownGraceMs: 300,
      ...options.server,
    });
    state.store = createDb({ url: state.redis.url });
  });
  afterAll(async () => {
    await state.server?.close();
    if (state.store) await closeDb(state.store);
    await state.redis?.dispose();
  });
  return state;
}
