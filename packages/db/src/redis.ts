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

export function createRedis(options: CreateRedisOptions = {}): Redis {
  if (options.url) {
    return new Redis(options.url, {
      // Commands issued while Redis is away wait in the offline queue and go out on reconnect.
      maxRetriesPerRequest: 20,
      retryStrategy: (times) => Math.min(50 * times, 2000),
      connectionName: 'namecard',
    });
  }
  const name = options.memoryName ?? 'namecard-memory';
  return new RedisMock({ host: 'namecard.memory', port: memoryPort(name), lazyConnect: false });
}

/** A second connection to the same server or in-memory set, for SUBSCRIBE. */
export function duplicateRedis(redis: Redis): Redis {
  return redis.duplicate();
}
