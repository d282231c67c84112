/**
 * The handle every store function takes: the Redis client plus the few settings the store needs.
 */
import { createRedis, redisMode, type Redis, type RedisMode } from './redis';

export interface Db {
  redis: Redis;
  mode: RedisMode;
  /** The change log keeps the newest this many events. */
  logMaxLen: number;
  /** Hears of Redis connection errors (rate-limited); also used for connections made later. */
  onRedisError?: ((error: Error) => void) | undefined;
}

export interface CreateDbOptions {
  url?: string | undefined;
  memoryName?: string;
  logMaxLen?: number;
  onRedisError?: (error: Error) => void;
}

export const DEFAULT_LOG_MAXLEN = 100_000;

export function createDb(options: CreateDbOptions = {}): Db {
  const redis = createRedis({
    url: options.url,
    ...(options.memoryName ? { memoryName: options.memoryName } : {}),
    ...(options.onRedisError ? { onError: options.onRedisError } : {}),
  });
  return {
    redis,
    mode: redisMode(options.url),
    logMaxLen: options.logMaxLen ?? DEFAULT_LOG_MAXLEN,
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
