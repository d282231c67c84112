/**
 * Where the real-Redis half of the suite runs, and the one-time reachability probe
 * (run by global-setup.ts, read by backends.ts through vitest's provide/inject).
 */
import { type RealRedisProbe } from '../src/testing';

export const DEFAULT_TEST_REDIS_URL = 'redis://127.0.0.1:6379/9';

declare module 'vitest' {
  export interface ProvidedContext {
    namecardRealRedis: RealRedisProbe;
  }
}

export function testRedisUrl(): string {
  return process.env.NAMECARD_TEST_REDIS_URL || DEFAULT_TEST_REDIS_URL;
}

export { probeRealRedis, testDbNumber } from '../src/testing';
