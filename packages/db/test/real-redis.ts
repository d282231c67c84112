/**
 * The real Redis of the store's suite, as decided once per run by global-setup.ts (read by
 * backends.ts through vitest's provide/inject).
 */
import { type RealRedisProbe } from '../src/testing';

/** The database number the suite uses on a Redis it owns or was pointed at. */
export const TEST_REDIS_DB = 9;

declare module 'vitest' {
  export interface ProvidedContext {
    namecardRealRedis: RealRedisProbe;
    /** The suite's Redis Cluster nodes (empty when there is none, with the reason). */
    namecardCluster: { nodes: string[]; reason: string };
  }
}

export { probeRealRedis, testDbNumber } from '../src/testing';
