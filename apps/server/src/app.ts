/**
 * Starting and stopping one Namecard server: the store, demo data (memory mode), the HTTP server.
 * index.ts runs it from the environment; tests run it on port 0.
 */
import {
  ChangeFeed,
  checkLayout,
  isRedisUnavailableError,
  closeDb,
  createDb,
  createRateLimits,
  type RateRules,
  seedDemoAccounts,
  seedGeneratedUsers,
  type Db,
  type SeedResult,
} from '@namecard/db';
import { type AccessLogOptions } from './access-log';
import { createHttpServer, listen } from './http';
import { type Logger } from './logger';

export interface StartOptions {
  port: number;
  host?: string;
  /** Unset (and no cluster nodes): memory mode. */
  redisUrl?: string | undefined;
  /** Redis Cluster seed nodes (`host:port`, REDIS_CLUSTER_NODES); takes precedence over redisUrl. */
  redisClusterNodes?: readonly string[] | undefined;
  /** Prepended to every key and channel (test suites sharing a cluster keep apart this way). */
  keyPrefix?: string | undefined;
  /** Memory mode: the in-memory data set to use (tests give each server its own). */
  memoryName?: string;
  adminSecret: string;
  webOrigins?: readonly string[];
  /** Memory mode: generated users to seed (0 seeds only the demo accounts). */
  seedUsers?: number;
  logMaxLen?: number;
  /** Live subscriptions one account may hold at once, across instances (default 20). */
  subscriptionsPerAccount?: number;
  /** Default: true in Redis mode, false in memory mode. */
  secureCookies?: boolean;
  /** Request limits (defaults in config.ts / README "Limits"). */
  maxBodyBytes?: number;
  maxBatch?: number;
  /** How long a client may take to send one request (NAMECARD_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  redisTimeoutMs?: number;
  /** Proxies whose X-Forwarded-For names the client (NAMECARD_TRUST_PROXY). */
  trustProxy?: readonly string[];
  rateRules?: Partial<RateRules>;
  logger: Logger;
  /** Plain JSON calls without tRPC's Fetch adapter (default true; see json-calls.ts). */
  jsonCallsPath?: boolean;
  /** Which requests get a log line (NAMECARD_LOG_SAMPLE, NAMECARD_LOG_SLOW_MS; access-log.ts). */
  accessLog?: AccessLogOptions;
  /** How long in-flight requests get to finish on close before connections are cut. */
  shutdownGraceMs?: number;
}

export interface RunningServer {
  db: Db;
  feed: ChangeFeed;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Memory mode: what was seeded (null in Redis mode or when the data set was seeded before). */
  seed: SeedResult | null;
  /** Settles when the generated demo users are all written. */
  seeding: Promise<void>;
  close(): Promise<void>;
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const { logger } = options;
  const db = createDb({
    url: options.redisUrl,
    ...(options.redisClusterNodes?.length ? { clusterNodes: options.redisClusterNodes } : {}),
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...(options.memoryName ? { memoryName: options.memoryName } : {}),
    ...(options.logMaxLen ? { logMaxLen: options.logMaxLen } : {}),
    ...(options.subscriptionsPerAccount
      ? { subscriptionsPerAccount: options.subscriptionsPerAccount }
      : {}),
    ...(options.redisTimeoutMs ? { commandTimeoutMs: options.redisTimeoutMs } : {}),
    onRedisError: (error) =>
      logger.warn({ err: error.message }, 'Redis connection error; retrying'),
  });
  // Memory mode: the demo accounts now, the generated users in the background (the mock's Lua
  // VM makes each write take milliseconds; the server answers meanwhile).
  // A data set in another key layout is refused with a message (LayoutError), not misread. With
  // Redis not answering yet the server starts anyway (degraded health) and checks once it does.
  let layoutCheck: NodeJS.Timeout | undefined;
  try {
    await checkLayout(db);
  } catch (error) {
    if (!isRedisUnavailableError(error)) {
      await closeDb(db);
      throw error;
    }
    const retry = () => {
      layoutCheck = setTimeout(() => {
        checkLayout(db).catch((later: unknown) => {
          if (isRedisUnavailableError(later)) retry();
          else logger.error({ err: later }, 'the data set is in another key layout');
        });
      }, 2000);
      layoutCheck.unref();
    };
    retry();
  }
  const demo = db.mode === 'memory' ? await seedDemoAccounts(db) : null;
  const seed = demo ? { users: options.seedUsers ?? 0, demo } : null;
  const stopSeeding = new AbortController();
  const seeding =
    seed && seed.users > 0
      ? seedGeneratedUsers(db, seed.users, stopSeeding.signal).then(
          () => logger.info({ users: seed.users }, 'demo users seeded'),
          (error: unknown) => logger.warn({ err: error }, 'seeding stopped'),
        )
      : Promise.resolve();
  const feed = ChangeFeed.forDb(db);
  const http = createHttpServer({
    deps: {
      db,
      feed,
      adminSecret: options.adminSecret,
      secureCookies: options.secureCookies ?? db.mode === 'redis',
      rateLimits: createRateLimits(db, options.rateRules),
      demoSignIn: db.mode === 'memory',
    },
    logger,
    webOrigins: options.webOrigins ?? [],
    ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}),
    ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    trustProxy: options.trustProxy ?? [],
    ...(options.accessLog ? { accessLog: options.accessLog } : {}),
    ...(options.jsonCallsPath === false ? { jsonCallsPath: false } : {}),
  });
  const { server } = http;
  const port = await listen(server, options.port, options.host);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const graceMs = options.shutdownGraceMs ?? 10_000;
      stopSeeding.abort();
      clearTimeout(layoutCheck);
      const drained = http.close();
      // Live subscriptions are requests that never finish by themselves: end them first.
      await feed.close();
      // Their responses (and other in-flight ones) finish later and leave keep-alive connections
      // behind, which server.close() waits for: keep closing idle connections until drained.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 20);
      const timer = setTimeout(() => {
        logger.warn({ graceMs }, 'requests still open after the grace period; closing them');
        server.closeAllConnections();
      }, graceMs);
      await drained;
      clearInterval(sweep);
      clearTimeout(timer);
      await seeding;
      await closeDb(db);
    })());

  return { db, feed, port, url: `http://127.0.0.1:${port}`, seed, seeding, close };
}
