/**
 * The handle every store function takes: the Redis client plus the few settings the store needs.
 */
import { createRedis, redisMode, type Redis, type RedisMode } from './redis';

export interface Db {
  redis: Redis;
  mode: RedisMode;
  /**
   * The change log keeps at least the newest this many events (up to 1% more between trims).
   * Subscribers away for longer get `resync`.
   */
  logMaxLen: number;
  /** Hears of Redis connection errors (rate-limited); also used for connections made later. */
  onRedisError?: ((error: Error) => void) | undefined;
}

export interface CreateDbOptions {
  url?: string | undefined;
  memoryName?: string;
  logMaxLen?: number;
  onRedisError?: (error: Error) => void;
  /** Redis mode: how long a command may go unanswered before it fails (see createRedis). */
  commandTimeoutMs?: number;
}

export const DEFAULT_LOG_MAXLEN = 100_000;
/**
 * Memory mode's default: ioredis-mock re-sorts a sorted set on every write to it, so a write's
 * cost grows with the log (about 1 ms per 4,000 entries); a laptop needs no longer window.
 */
export const MEMORY_LOG_MAXLEN = 5_000;

/** With no options: Redis mode when REDIS_URL is set, memory mode otherwise. */
export function createDb(options: CreateDbOptions = { url: process.env.REDIS_URL }): Db {
  const redis = createRedis({
    url: options.url,
    ...(options.memoryName ? { memoryName: options.memoryName } : {}),
    ...(options.onRedisError ? { onError: options.onRedisError } : {}),
    ...(options.commandTimeoutMs ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
  });
  return {
    redis,
    mode: redisMode(options.url),
    logMaxLen: options.logMaxLen ?? (options.url ? DEFAULT_LOG_MAXLEN : MEMORY_LOG_MAXLEN),
    onRedisError: options.onRedisError,
  };
}

/** Whether Redis answers a PING within `timeoutMs`. */
export async function pingDb(db: Db, timeoutMs = 1000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([db.redis.ping().then((r) => r === 'PONG'), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
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
