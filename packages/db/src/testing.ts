/**
 * Helpers for test suites that need a real Redis (`@namecard/db/testing`; not part of the main
 * entry point): the guard that keeps tests off database 0, and a one-shot reachability probe.
 */
import { Redis } from 'ioredis';

export interface RealRedisProbe {
  url: string;
  reachable: boolean;
  /** Why it is not reachable ('' when it is). */
  reason: string;
}

/**
 * The database number a Redis URL selects. Test suites FLUSHDB it, so this refuses a URL that
 * does not name a database explicitly, or names database 0.
 */
export function testDbNumber(url: string): number {
  const parsed = new URL(url);
  const text = parsed.pathname.replace(/^\//, '') || (parsed.searchParams.get('db') ?? '');
  if (!/^\d+$/.test(text) || Number(text) === 0) {
    throw new Error(`the test Redis URL must name a database other than 0 (got ${url})`);
  }
  return Number(text);
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
