/**
 * Where the real-Redis half of the suite runs, and the one-time reachability probe
 * (run by global-setup.ts, read by backends.ts through vitest's provide/inject).
 */
import { Redis } from 'ioredis';

export const DEFAULT_TEST_REDIS_URL = 'redis://127.0.0.1:6379/9';

export interface RealRedisProbe {
  url: string;
  reachable: boolean;
  /** Why it is not reachable ('' when it is). */
  reason: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    namecardRealRedis: RealRedisProbe;
  }
}

export function testRedisUrl(): string {
  return process.env.NAMECARD_TEST_REDIS_URL || DEFAULT_TEST_REDIS_URL;
}

/**
 * The database number a URL selects. The suite FLUSHDBs it before every test, so it refuses a
 * URL that does not name a database explicitly, or names database 0.
 */
export function testDbNumber(url: string): number {
  const parsed = new URL(url);
  const fromPath = parsed.pathname.replace(/^\//, '');
  const fromQuery = parsed.searchParams.get('db') ?? '';
  const text = fromPath || fromQuery;
  if (!/^\d+$/.test(text)) {
    throw new Error(`NAMECARD_TEST_REDIS_URL must name a database other than 0 (got ${url})`);
  }
  const db = Number(text);
  if (db === 0) throw new Error(`NAMECARD_TEST_REDIS_URL must not use database 0 (got ${url})`);
  return db;
}

/** Connects once with a short timeout and no retries; never throws. */
export async function probeRealRedis(url: string, timeoutMs = 1500): Promise<RealRedisProbe> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let socketError = ''; // the underlying cause (ECONNREFUSED...), which connect() does not name
  redis.on('error', (error: Error) => {
    socketError ||= error.message;
  });
  try {
    await redis.connect();
    const pong = await redis.ping();
    if (pong !== 'PONG') return { url, reachable: false, reason: 'PING got an unexpected reply' };
    return { url, reachable: true, reason: '' };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { url, reachable: false, reason: socketError ? `${socketError}; ${message}` : message };
  } finally {
    redis.disconnect();
  }
}
