/**
 * Test helpers for apps/server: a real server on a free port (memory mode or a real Redis), typed
 * tRPC clients that talk to it over real HTTP, and the real-Redis switch shared by every test file.
 *
 * Nothing here registers global hooks except `useTestServer()` and `describeRealRedis()`, which
 * are meant to be called inside a test file (or a `describe` block).
 */
import { type AppRouter } from '@namecard/api';
import { seedDemoData, newMemoryName } from '@namecard/db';
import { testDbNumber, type RealRedisProbe } from '@namecard/db/testing';
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject } from 'vitest';
import { startServer, type RunningServer, type StartOptions } from '../src/app';
import { createLogger, type Logger } from '../src/logger';

export const DEMO_ACCOUNTS = ['alice', 'bob', 'carol'] as const;
export type DemoAccount = (typeof DEMO_ACCOUNTS)[number];
export type DemoTokens = Record<DemoAccount, string>;

export interface TestServerOptions {
  /** Redis mode against this URL (see `realRedisUrl()`); unset: memory mode. */
  redisUrl?: string;
  /**
   * Redis Cluster mode against these nodes (see `testCluster()`): the server gets a key prefix
   * of its own (nothing is flushed: a cluster has only database 0).
   */
  clusterNodes?: readonly string[];
  /** Generated users to seed besides alice, bob and carol (default 0). */
  seedUsers?: number;
  logMaxLen?: number;
  subscriptionsPerAccount?: number;
  webOrigins?: string[];
  shutdownGraceMs?: number;
  /** Limits and other settings passed through to startServer (rate rules, body size...). */
  settings?: Partial<
    Pick<
      StartOptions,
      | 'maxBodyBytes'
      | 'maxBatch'
      | 'requestTimeoutMs'
      | 'redisTimeoutMs'
      | 'trustProxy'
      | 'rateRules'
      | 'secureCookies'
      | 'jsonCallsPath'
      | 'accessLog'
    >
  >;
  /** Where the server logs (default: silent, or NAMECARD_TEST_LOG_LEVEL). */
  logger?: Logger;
  /**
   * Start a second server on the same data set as this one (same memory set or the same Redis),
   * as a second instance behind a load balancer: nothing is flushed or seeded, and the demo
   * tokens and admin secret are those of `shareWith`.
   */
  shareWith?: TestServer;
}

export interface TestServer extends RunningServer {
  /** The X-Namecard-Admin secret this server accepts. */
  adminSecret: string;
  /** Tokens of the demo accounts alice, bob and carol (friends of each other). */
  tokens: DemoTokens;
  /** The memory data set's name (memory mode) or the Redis URL (Redis mode). */
  dataSet: string;
  /** Cluster mode: the nodes and this data set's key prefix. */
  cluster?: { nodes: readonly string[]; keyPrefix: string };
}

let clusterDataSets = 0;

/** A random secret of the length NAMECARD_ADMIN_SECRET needs. */
const newAdminSecret = () => `test-admin-${crypto.randomUUID()}`;

/**
 * Starts a real server on a free port with a silent logger.
 *
 * Memory mode gets its own fresh in-memory data set with the demo accounts seeded. Redis mode
 * FLUSHES the database of `redisUrl` (never database 0) and seeds the same demo accounts, unless
 * `shareWith` is given. The caller closes the server (`await server.close()`), or use
 * `useTestServer()` in a test file.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const shared = options.shareWith;
  const redisUrl = shared
    ? shared.db.mode === 'redis' && !shared.cluster
      ? shared.dataSet
      : undefined
    : options.redisUrl;
  const cluster =
    shared?.cluster ??
    (options.clusterNodes && !shared
      ? { nodes: options.clusterNodes, keyPrefix: `s${process.pid}-${++clusterDataSets}:` }
      : undefined);
  const memoryName = redisUrl || cluster ? undefined : shared ? shared.dataSet : newMemoryName();
  const adminSecret = shared?.adminSecret ?? newAdminSecret();
  if (redisUrl && !shared) await flushTestRedis(redisUrl);

  const running = await startServer({
    port: 0,
    host: '127.0.0.1',
    redisUrl,
    ...(cluster ? { redisClusterNodes: cluster.nodes, keyPrefix: cluster.keyPrefix } : {}),
    ...(memoryName ? { memoryName } : {}),
    adminSecret,
    seedUsers: options.seedUsers ?? 0,
    ...(options.logMaxLen ? { logMaxLen: options.logMaxLen } : {}),
    ...(options.subscriptionsPerAccount
      ? { subscriptionsPerAccount: options.subscriptionsPerAccount }
      : {}),
    ...(options.webOrigins ? { webOrigins: options.webOrigins } : {}),
    ...(options.shutdownGraceMs !== undefined ? { shutdownGraceMs: options.shutdownGraceMs } : {}),
    ...options.settings,
    logger: options.logger ?? createLogger(process.env.NAMECARD_TEST_LOG_LEVEL ?? 'silent'),
  });
  try {
    // Memory mode writes the generated users in the background: tests want them all there.
    await running.seeding;
    // Redis mode does not seed by itself; seed the flushed database the same way memory mode does.
    const seed =
      running.seed ??
      ((redisUrl || cluster) && !shared
        ? await seedDemoData(running.db, options.seedUsers ?? 0)
        : null);
    let tokens: DemoTokens;
    if (shared) tokens = shared.tokens;
    else if (seed) tokens = demoTokens(seed.demo);
    else
      throw new Error(
        'startTestServer: the data set was seeded before, so the demo tokens are unknown',
      );
    return {
      ...running,
      adminSecret,
      tokens,
      dataSet: redisUrl ?? (cluster ? `cluster ${cluster.keyPrefix}` : memoryName!),
      ...(cluster ? { cluster } : {}),
    };
  } catch (error) {
    await running.close();
    throw error;
  }
}

function demoTokens(demo: readonly { account: string; token: string }[]): DemoTokens {
  const tokens: Partial<DemoTokens> = {};
  for (const d of demo)
    if ((DEMO_ACCOUNTS as readonly string[]).includes(d.account))
      tokens[d.account as DemoAccount] = d.token;
  for (const name of DEMO_ACCOUNTS)
    if (!tokens[name]) throw new Error(`the seed made no demo account ${name}`);
  return tokens as DemoTokens;
}

/**
 * Starts a server before the tests of the enclosing file/describe and closes it after them.
 * Read `.current` inside tests and hooks only.
 */
export function useTestServer(options: TestServerOptions | (() => TestServerOptions) = {}): {
  readonly current: TestServer;
} {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startTestServer(typeof options === 'function' ? options() : options);
  });
  afterAll(async () => {
    await server?.close();
    server = undefined;
  });
  return {
    get current(): TestServer {
      if (!server)
        throw new Error('useTestServer(): the server is only available inside tests and hooks');
      return server;
    },
  };
}

export interface ClientOptions {
  /** A user's token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Sent as the raw `Authorization` header instead of `Bearer <token>` (for malformed headers). */
  authorization?: string;
  /** Sent in `X-Namecard-Admin`. */
  adminSecret?: string;
  /** The raw `Cookie` header, e.g. `nc_session=...`. */
  cookie?: string;
  /** Called with every HTTP response (e.g. to read `Set-Cookie`). */
  onResponse?: (response: Response) => void;
}

/** A typed tRPC client over real HTTP; one request per call (`httpLink`, no batching). */
export function clientFor(url: string, options: ClientOptions = {}) {
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  else if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.adminSecret !== undefined) headers['x-namecard-admin'] = options.adminSecret;
  if (options.cookie !== undefined) headers.cookie = options.cookie;
  const { onResponse } = options;
  const recordingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    onResponse?.(response);
    return response;
  };
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${url}/trpc`, headers, fetch: recordingFetch })],
  });
}

export type Client = ReturnType<typeof clientFor>;

/** The admin client of a test server. */
export const adminClient = (server: TestServer) =>
  clientFor(server.url, { adminSecret: server.adminSecret });

/** A client signed in as one of the demo accounts. */
export const demoClient = (server: TestServer, account: DemoAccount) =>
  clientFor(server.url, { token: server.tokens[account] });

export type ApiErrorCode = NonNullable<TRPCClientError<AppRouter>['data']>['code'];

/**
 * Awaits a call that must fail with the given tRPC error code; with `fields`, the error must be a
 * validation error whose `data.fieldErrors` names exactly those fields. Returns the error.
 */
export async function expectTRPCError(
  call: Promise<unknown>,
  code: ApiErrorCode,
  fields?: readonly string[],
): Promise<TRPCClientError<AppRouter>> {
  let result: unknown;
  try {
    result = await call;
  } catch (error) {
    if (!(error instanceof TRPCClientError)) throw error;
    const e = error as TRPCClientError<AppRouter>;
    expect(e.data?.code, `error code (message: ${e.message})`).toBe(code);
    if (fields) {
      expect(e.data?.fieldErrors, `fieldErrors (message: ${e.message})`).toBeTruthy();
      expect(Object.keys(e.data?.fieldErrors ?? {}).sort()).toEqual([...fields].sort());
      for (const field of fields) expect(e.message).toContain(`${field}:`);
    }
    return e;
  }
  throw new Error(
    `expected a ${code} error, but the call succeeded with ${JSON.stringify(result)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Real Redis

export type RealRedis = RealRedisProbe;
export { testDbNumber };

/**
 * The real Redis for tests, as decided once per run by test/global-setup.ts: the server of
 * NAMECARD_TEST_REDIS_URL when set, otherwise a redis-server the run started on a spare port
 * (database 8; never database 0: tests FLUSH it). Never throws; use `describeRealRedis()` to
 * run or skip tests by the result.
 */
export function realRedisUrl(): Promise<RealRedis> {
  return Promise.resolve(inject('namecardServerRedis'));
}

/**
 * `describe` for tests that need a real Redis; `fn` gets its URL. Skipped (with a warning) when
 * Redis is unreachable, and failing instead when CI=true. Call it at the top level of a test file
 * after `const redis = await realRedisUrl()`.
 */
export function describeRealRedis(name: string, redis: RealRedis, fn: (url: string) => void): void {
  const fail = !redis.reachable && process.env.CI === 'true';
  describe.skipIf(!redis.reachable && !fail)(`${name} [real Redis ${redis.url}]`, () => {
    if (fail) {
      beforeAll(() => {
        throw new Error(
          `real Redis at ${redis.url} is unreachable (${redis.reason}) and CI=true: these tests must run`,
        );
      });
    }
    fn(redis.url);
  });
}

/** The suite's Redis Cluster (nodes; empty with a reason when there is none). */
export function testCluster(): { nodes: string[]; reason: string } {
  return inject('namecardServerCluster');
}

/**
 * `describe` for tests that need a Redis Cluster; `fn` gets its nodes. Skipped (with a warning)
 * when there is none, and failing instead when CI=true.
 */
export function describeCluster(name: string, fn: (nodes: string[]) => void): void {
  const cluster = testCluster();
  const none = cluster.nodes.length === 0;
  const fail = none && process.env.CI === 'true';
  describe.skipIf(none && !fail)(`${name} [Redis Cluster ${cluster.nodes[0] ?? '(none)'}]`, () => {
    if (fail) {
      beforeAll(() => {
        throw new Error(`no Redis Cluster (${cluster.reason}) and CI=true: these tests must run`);
      });
    }
    fn(cluster.nodes);
  });
}

/** Empties the test database (refuses database 0). */
export async function flushTestRedis(url: string): Promise<void> {
  testDbNumber(url);
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
}
