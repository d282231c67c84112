/**
 * The handle every store function takes: the Redis client plus the few settings the store needs.
 */
import { type Cluster } from 'ioredis';
import { keys, LAYOUT, LEGACY_KEYS } from './keys';
import { createRedis, isCluster, redisMode, type Redis, type RedisMode } from './redis';

export interface Db {
  /** The client: a `Redis`, an ioredis `Cluster` (typed as `Redis`), or ioredis-mock. */
  redis: Redis;
  mode: RedisMode;
  /** True on a Redis Cluster: publishes are sharded (SPUBLISH/SSUBSCRIBE). */
  cluster?: boolean | undefined;
  /**
   * Prepended to every key by the client and to every channel name by the store (test suites
   * sharing a Redis or a cluster keep apart this way). '' by default.
   */
  keyPrefix?: string | undefined;
  /**
   * The change log keeps at least the newest this many events (up to 1% more between trims).
   * Subscribers away for longer get `resync`.
   */
  logMaxLen: number;
  /** Events each account's own change log keeps at most (default ACCOUNT_LOG_MAX, 10000). */
  accountLogMax?: number | undefined;
  /** Live subscriptions one account may hold at once, across every instance (default 20). */
  subscriptionsPerAccount?: number | undefined;
  /** Hears of Redis connection errors (rate-limited); also used for connections made later. */
  onRedisError?: ((error: Error) => void) | undefined;
}

export interface CreateDbOptions {
  url?: string | undefined;
  /** Redis Cluster seed nodes (`host:port`); see createRedis. */
  clusterNodes?: readonly string[] | undefined;
  keyPrefix?: string | undefined;
  memoryName?: string;
  logMaxLen?: number;
  subscriptionsPerAccount?: number;
  accountLogMax?: number;
  onRedisError?: (error: Error) => void;
  /** Redis mode: how long a command may go unanswered before it fails (see createRedis). */
  commandTimeoutMs?: number;
}

/** Events each partition's change log keeps (24 partitions: 240,000 in all). */
export const DEFAULT_LOG_MAXLEN = 10_000;
/**
 * Memory mode's default: ioredis-mock re-sorts a sorted set on every write to it, so a write's
 * cost grows with the log (about 1 ms per 4,000 entries); a laptop needs no longer window.
 */
export const MEMORY_LOG_MAXLEN = 1_000;

/** With no options: Redis mode when REDIS_URL is set, memory mode otherwise. */
export function createDb(options: CreateDbOptions = { url: process.env.REDIS_URL }): Db {
  const redis = createRedis({
    url: options.url,
    ...(options.clusterNodes?.length ? { clusterNodes: options.clusterNodes } : {}),
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...(options.memoryName ? { memoryName: options.memoryName } : {}),
    ...(options.onRedisError ? { onError: options.onRedisError } : {}),
    ...(options.commandTimeoutMs ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
  });
  const mode = redisMode(options.url, options.clusterNodes);
  return {
    redis,
    mode,
    cluster: isCluster(redis),
    keyPrefix: options.keyPrefix ?? '',
    logMaxLen: options.logMaxLen ?? (mode === 'redis' ? DEFAULT_LOG_MAXLEN : MEMORY_LOG_MAXLEN),
    onRedisError: options.onRedisError,
    subscriptionsPerAccount: options.subscriptionsPerAccount,
    accountLogMax: options.accountLogMax,
  };
}

/**
 * Whether Redis answers a PING within `timeoutMs`. On a cluster: whether `CLUSTER INFO` says
 * `cluster_state:ok` and every master (every shard the partitions live on) answers a PING.
 */
export async function pingDb(db: Db, timeoutMs = 1000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    const check = db.cluster
      ? clusterHealthy(db.redis as unknown as Cluster)
      : db.redis.ping().then((r) => r === 'PONG');
    return await Promise.race([check, timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function clusterHealthy(cluster: Cluster): Promise<boolean> {
  if (cluster.status !== 'ready') {
    await new Promise<void>((resolve) => cluster.once('ready', () => resolve()));
  }
  const masters = cluster.nodes('master');
  if (masters.length === 0) return false;
  const answers = await Promise.all(
    masters.map(async (node) => {
      const info = String(await node.cluster('INFO'));
      return /cluster_state:ok/.test(info) && (await node.ping()) === 'PONG';
    }),
  );
  // Every slot must be served by a master the client knows.
  return (
    answers.every(Boolean) &&
    cluster.slots.length === 16384 &&
    cluster.slots.every((s) => s?.length)
  );
}

/** The data set is in a key layout this version does not read. */
export class LayoutError extends Error {}

/**
 * Claims the data set for this key layout on first start (`nc:layout`), or checks it holds this
 * layout. Refuses, with a message saying what to do, a data set written by Namecard before
 * partitions (its global `nc:log` / `nc:directory`) or in another layout: reading it as this
 * one would show no accounts and hand out tokens that already exist.
 */
export async function checkLayout(db: Db): Promise<void> {
  const legacy = await Promise.all(LEGACY_KEYS.map((key) => db.redis.exists(key)));
  if (legacy.some((n) => n > 0)) {
    throw new LayoutError(
      `this Redis holds Namecard data in the layout before partitions (${LEGACY_KEYS.join(', ')}); ` +
        `this version uses ${LAYOUT} (see README, "Running on Redis Cluster"): point it at an ` +
        'empty Redis or database, or keep running the previous version on this one',
    );
  }
  const claimed = await db.redis.set(keys.layout, LAYOUT, 'NX');
  if (claimed === 'OK') return;
  const found = await db.redis.get(keys.layout);
  if (found !== LAYOUT) {
    throw new LayoutError(
      `this Redis holds Namecard data in layout ${found ?? '(none)'}; this version uses ${LAYOUT}`,
    );
  }
}

export async function closeDb(db: Db): Promise<void> {
  // QUIT waits for queued commands, which wait for a Redis that may be away: only when connected.
  if (db.mode === 'redis' && db.redis.status === 'ready') {
    await db.redis.quit().catch(() => db.redis.disconnect());
  } else {
    db.redis.disconnect();
  }
}
