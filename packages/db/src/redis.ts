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
  /**
   * Redis mode: a command with no reply after this long fails (default 1500 ms), so a request
   * fails fast (503) while Redis does not answer instead of waiting for it.
   */
  commandTimeoutMs?: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 1500;

/**
 * Whether an error means Redis is not answering (timed out, connection closed or refused,
 * reconnecting), as opposed to a bug or a refused command: such a request is answered 503.
 */
export function isRedisUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  return /^(Command timed out|Connection is closed|Stream isn't writeable|connect E|read E|write E)/.test(
    error.message,
  );
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
      // Fail fast while Redis does not answer: a command without a reply within commandTimeout
      // is rejected (the request answers 503), and commands waiting in the offline queue while
      // disconnected are rejected after 2 reconnection attempts (about 150 ms) instead of piling
      // up. A short blip still goes unnoticed: queued commands go out on reconnect. Reconnecting
      // goes on by itself, so requests succeed again as soon as Redis answers.
      commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 2,
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
  // Not for the subscriber connection: a SUBSCRIBE waiting for a reconnect must not time out
  // (ioredis resubscribes by itself), and its reconnect attempts must not flush anything.
  const copy = redis.duplicate({ commandTimeout: undefined, maxRetriesPerRequest: null });
  reportErrors(copy, options);
  return copy;
}
