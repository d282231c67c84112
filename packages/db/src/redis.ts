/**
 * createRedis(): a real ioredis client when REDIS_URL is set (Redis mode), or an ioredis-mock one
 * (memory mode). Both are `Redis` from ioredis as far as the store is concerned; the store only
 * uses what behaves the same on both (see DESIGN.md, "Modes").
 */
import { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';

export type { Redis } from 'ioredis';

export type RedisMode = 'memory' | 'redis';

export interface CreateRedisOptions {
  /** `redis://...`; unset means memory mode. */
  url?: string | undefined;
  /**
   * Memory mode only: clients made with the same name share one in-memory data set (and
   * pub/sub), as clients of one Redis server do. Defaults to one shared set per process.
   */
  memoryName?: string;
  /**
   * Connection errors (Redis away, refused, reset). ioredis retries by itself; this hears of it
   * at most once per `errorIntervalMs` (10 s). Defaults to a one-line warning on stderr.
   */
  onError?: (error: Error) => void;
  errorIntervalMs?: number;
}

let memoryNames = 0;
/** A fresh in-memory data set name: for tests that each want their own "server". */
export const newMemoryName = () => `namecard-memory-${process.pid}-${++memoryNames}`;

const memoryPorts = new Map<string, number>();
// ioredis-mock shares data between clients with the same host and port; a name maps to a port
// that no real server is asked for.
function memoryPort(name: string): number {
  let port = memoryPorts.get(name);
  if (port === undefined) {
    port = 40000 + memoryPorts.size;
    memoryPorts.set(name, port);
  }
  return port;
}

export function redisMode(url: string | undefined): RedisMode {
  return url ? 'redis' : 'memory';
}

/** With no options: Redis mode when REDIS_URL is set, memory mode otherwise. */
export function createRedis(options: CreateRedisOptions = { url: process.env.REDIS_URL }): Redis {
  if (options.url) {
    const redis = new Redis(options.url, {
      // Commands issued while Redis is away wait in the offline queue and go out on reconnect.
      maxRetriesPerRequest: 20,
      retryStrategy: (times) => Math.min(50 * times, 2000),
      connectionName: 'namecard',
    });
    reportErrors(redis, options);
    return redis;
  }
  const name = options.memoryName ?? 'namecard-memory';
  return new RedisMock({ host: 'namecard.memory', port: memoryPort(name), lazyConnect: false });
}

/** Listens for connection errors (an unheard 'error' event floods stderr), rate-limited. */
export function reportErrors(
  redis: Redis,
  options: Pick<CreateRedisOptions, 'onError' | 'errorIntervalMs'>,
) {
  const report =
    options.onError ??
    ((error: Error) => console.warn(`namecard: Redis connection error: ${error.message}`));
  const interval = options.errorIntervalMs ?? 10_000;
  let last = -Infinity;
  redis.on('error', (error: Error) => {
    const now = Date.now();
    if (now - last < interval) return;
    last = now;
    report(error);
  });
}

/** A second connection to the same server or in-memory set (for SUBSCRIBE), reporting errors alike. */
export function duplicateRedis(
  redis: Redis,
  options: Pick<CreateRedisOptions, 'onError' | 'errorIntervalMs'> = {},
): Redis {
  const copy = redis.duplicate();
  reportErrors(copy, options);
  return copy;
}
